"""`portfolio_rolling_metrics` for a range of trading days: rolling 63- and 252-day Sharpe, Sortino, volatility,
beta and max drawdown of every active portfolio's variants and its benchmark (analytics/rolling.py).

The series are those of `portfolio_metrics` (`services/performance.load_series`: each variant's daily returns, the
benchmark ticker's returns between the portfolio's NAV days). A range reads only the look-back its windows need:
the returns from `max(ROLLING_WINDOWS)` sessions before the range's first day, so a nightly day costs a year of
returns, not the whole history, and a re-run of any range equals the full backfill.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import polars as pl

from tracking_pipeline.analytics.rolling import ROLLING_WINDOWS, rolling_columns, rolling_metrics
from tracking_pipeline.services.performance import KEYS, active_portfolios, load_series
from tracking_pipeline.trading_calendar import sessions_before
from tracking_pipeline.warehouse import Warehouse, Write

TABLE = "portfolio_rolling_metrics"
ROLLING_LOOKBACK = max(ROLLING_WINDOWS)
"""Sessions before a range that its first day's longest window reaches back to (the NAV day before its first
return)."""


@dataclass
class RollingRun:
    """The rows of the range and the portfolios they cover (the write replaces exactly those)."""

    rows: pd.DataFrame
    portfolio_ids: list[int] = field(default_factory=list)

    def write(self, start: pd.Timestamp, end: pd.Timestamp) -> Write:
        return Write(TABLE, self.rows, {"trade_date": (start.date(), end.date()), "portfolio_id": self.portfolio_ids})


def compute_rolling_metrics(wh: Warehouse, start: pd.Timestamp, end: pd.Timestamp, rf_annual: float) -> RollingRun:
    """Rows for every active portfolio, variant and benchmark and every day of [start, end] with a return."""
    portfolios = active_portfolios(wh).filter(pl.col("first_day") <= end.date())
    empty = RollingRun(rows=pd.DataFrame(columns=["portfolio_id", "trade_date", "variant", *rolling_columns()]))
    if portfolios.is_empty():
        return empty
    series = load_series(wh, portfolios, lo=sessions_before(start, ROLLING_LOOKBACK).date(), hi=end.date())
    if series.is_empty():  # e.g. only the portfolios' first NAV day: no return yet
        return empty
    long = series.to_pandas().assign(present=1.0)
    wide = long.pivot(index="trade_date", columns=KEYS, values=["r", "b", "present"])
    returns, bench = wide["r"], wide["b"]
    figures: dict[str, pd.DataFrame] = {}
    for window in ROLLING_WINDOWS:
        figures.update(rolling_metrics(returns, bench, window, rf_annual))
    in_range = (returns.index >= start) & (returns.index <= end)
    day, col = np.nonzero(wide["present"].notna().to_numpy() & in_range[:, None])
    keys = returns.columns
    rows = pd.DataFrame({
        "portfolio_id": keys.get_level_values("portfolio_id").to_numpy()[col],
        "trade_date": returns.index.to_numpy()[day],
        "variant": keys.get_level_values("variant").to_numpy()[col],
        **{name: figures[name].to_numpy(dtype=float)[day, col] for name in rolling_columns()},
    })
    return RollingRun(rows=rows.sort_values(["portfolio_id", "variant", "trade_date"], ignore_index=True),
                      portfolio_ids=sorted(int(i) for i in portfolios["portfolio_id"].to_list()))
