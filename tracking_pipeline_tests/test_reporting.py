"""The dashboard's pure renderers against pandas references (the browser test checks the pages as a whole)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from tracking_pipeline.reporting.html import line_chart, monthly_table, pct
from tracking_pipeline.trading_calendar import nyse_sessions


def nav_series(seed: int, start: str, count: int) -> pd.Series:
    sessions = nyse_sessions()
    days = sessions[sessions >= start][:count]
    steps = np.random.default_rng(seed).normal(0.0004, 0.012, len(days))
    return pd.Series(100 * np.exp(np.cumsum(steps)), index=days)


def test_monthly_table_matches_pandas_month_end_returns():
    nav = nav_series(1, "2019-03-14", 700)
    month_end = nav.resample("ME").last()
    want = month_end.pct_change()
    want.iloc[0] = month_end.iloc[0] / nav.iloc[0] - 1  # the first (partial) month from the first NAV
    cells = re.findall(r"<tr><td>(\d{4})</td>(.*?)</tr>", monthly_table(nav))
    got = {}
    for year, row in cells:
        for month, cell in enumerate(re.findall(r"<td[^>]*>(.*?)</td>", row), start=1):
            if cell:
                got[(int(year), month)] = cell
    assert got == {(d.year, d.month): pct(v, 1) for d, v in want.items()}
    assert "<td></td>" in monthly_table(nav)  # months before the start and after the end are blank


def test_line_chart_points_are_the_scaled_values():
    nav = nav_series(2, "2020-01-02", 300)
    svg = line_chart({"raw": nav}, width=1100, height=300)
    points = re.search(r'points="([^"]+)"', svg).group(1).split(" ")
    assert len(points) == len(nav)
    x, y = np.array([[float(v) for v in p.split(",")] for p in points]).T
    days = (nav.index - nav.index[0]).days.to_numpy(float)
    want_x = np.round(40 + days / days[-1] * 1020, 1)
    want_y = np.round(300 - 40 - (nav.to_numpy() - nav.min()) * 220 / (nav.max() - nav.min()), 1)
    assert np.array_equal(x, want_x) and np.array_equal(y, want_y)
    assert all(re.fullmatch(r"-?\d+\.\d,-?\d+\.\d", p) for p in points)
