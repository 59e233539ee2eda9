"""Markdown tables for Dagster metadata (asset previews, the KPI table): a few rows, no extra dependency."""

from __future__ import annotations

import pandas as pd


def markdown_table(frame: pd.DataFrame) -> str:
    """A pipe table of `frame` (no index): dates as days, missing values blank, pipes in text escaped."""
    columns = []
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_datetime64_any_dtype(column):
            column = column.dt.date
        columns.append([_cell(value) for value in column.tolist()])
    lines = ["| " + " | ".join(_cell(name) for name in frame.columns) + " |",
             "|" + "|".join("---" for _ in frame.columns) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in zip(*columns)]
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value):
        return ""
    return str(value).replace("|", "\\|").replace("\n", " ")
