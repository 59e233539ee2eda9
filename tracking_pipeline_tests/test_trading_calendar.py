"""Calendar helpers against pandas references."""

from __future__ import annotations

import pandas as pd

from tracking_pipeline.trading_calendar import month_ends, nyse_sessions


def test_month_ends_are_each_months_last_day_plus_the_latest():
    sessions = nyse_sessions()
    for start, end in [("2018-01-02", "2023-10-27"), ("2019-05-31", "2019-05-31"), ("2020-02-03", "2020-02-14")]:
        days = sessions[(sessions >= start) & (sessions <= end)]
        want = pd.Series(days, index=days).groupby(days.to_period("M")).max()
        got = month_ends(days)
        assert list(got) == list(pd.DatetimeIndex(want.to_numpy()).union(days[-1:]))
    assert len(month_ends(sessions[:0])) == 0
