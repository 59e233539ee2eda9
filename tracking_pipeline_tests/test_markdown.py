"""The markdown tables shown as asset metadata (previews, KPI table)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tracking_pipeline.defs.common import preview
from tracking_pipeline.reporting.markdown import markdown_table


def test_markdown_table_cells():
    frame = pd.DataFrame({"day": pd.to_datetime(["2024-01-02", None]), "x": [0.5, np.nan],
                          "name": ["a|b", None], "n": [1, 2]})
    assert markdown_table(frame).splitlines() == [
        "| day | x | name | n |",
        "|---|---|---|---|",
        "| 2024-01-02 | 0.5 | a\\|b | 1 |",
        "|  |  |  | 2 |",
    ]


def test_preview_shows_last_rows_rounded():
    frame = pd.DataFrame({"trade_date": pd.bdate_range("2024-01-01", periods=12), "value": np.arange(12) / 7})
    lines = preview(frame, rows=3).value.splitlines()
    assert lines[2:] == ["| 2024-01-12 | 1.285714 |", "| 2024-01-15 | 1.428571 |", "| 2024-01-16 | 1.571429 |"]
    assert preview(frame.iloc[:0]).value == "_no rows_"
