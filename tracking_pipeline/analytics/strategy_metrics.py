"""Performance by strategy x stock type over trailing windows (seed 001's strategy_metrics), and top performers.

Pure functions of the closed trades (profit_loss, profit_loss_pct, hold_days, routing_confidence, ...); each
group's figures for every as-of day of a range come from one pass of prefix sums (trade_windows.py).
docs/strategies.md gives every formula.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tracking_pipeline.analytics.outcomes import OutcomeConfig, status
from tracking_pipeline.analytics.trade_windows import (
    PERIODS, max_drawdown, predictions, ratio, sample_std, windows,
)

ALL = "(all)"
"""The strategy / stock_type label of the aggregate rows (every stock type of a strategy, every strategy)."""
METRIC_COLUMNS = ("total_trades", "winning_trades", "losing_trades", "win_rate", "avg_profit", "avg_profit_winners",
                  "avg_loss_losers", "total_return", "total_profit_loss", "max_drawdown", "avg_hold_days",
                  "sharpe_ratio", "profit_factor", "confidence_accuracy")
LOWER_IS_BETTER = frozenset({"losing_trades", "avg_hold_days"})


def _group_metrics(t: pd.DataFrame, as_of: pd.DatetimeIndex, periods: dict[str, int | None]) -> pd.DataFrame:
    t = t.sort_values(["exit_date", "trade_id"], kind="mergesort", ignore_index=True)
    w = windows(t["exit_date"].to_numpy(), t["entry_date"].to_numpy(), as_of, periods)
    pct, pnl = t["profit_loss_pct"].to_numpy(float), t["profit_loss"].to_numpy(float)
    win, loss = pnl > 0, pnl < 0
    is_pred, correct = predictions(t["routing_confidence"].to_numpy(float), win)
    n = w.n
    out = w.frame()
    out["total_trades"] = n
    out["winning_trades"] = w.count(win)
    out["losing_trades"] = w.count(loss)
    out["win_rate"] = ratio(out["winning_trades"], n)
    out["avg_profit"] = ratio(w.total(pct), n)
    out["avg_profit_winners"] = ratio(w.total(np.where(win, pct, 0.0)), out["winning_trades"])
    out["avg_loss_losers"] = ratio(w.total(np.where(loss, pct, 0.0)), out["losing_trades"])
    out["total_return"] = w.total(pct)
    out["total_profit_loss"] = w.total(pnl)
    out["max_drawdown"] = max_drawdown(pct, w)
    out["avg_hold_days"] = ratio(w.total(t["hold_days"].to_numpy(float)), n)
    out["sharpe_ratio"] = out["avg_profit"] / sample_std(pct, w)
    gross_loss = -w.total(np.where(loss, pnl, 0.0))
    out["profit_factor"] = ratio(w.total(np.where(win, pnl, 0.0)), gross_loss)
    out["confidence_accuracy"] = ratio(w.count(correct), w.count(is_pred))
    return out


def strategy_metrics(trades: pd.DataFrame, as_of: pd.DatetimeIndex, config: OutcomeConfig | None = None,
                     periods: dict[str, int | None] = PERIODS) -> pd.DataFrame:
    """Metrics of the closed `trades` per (strategy, stock type) and per strategy and overall (label ALL), for each
    as-of day and period in which the group has a trade closed by that day; with seed 004's status per row."""
    config = config or OutcomeConfig()
    columns = ["strategy", "stock_type", "period_type", "period_start", "period_end", *METRIC_COLUMNS, "status"]
    if trades.empty or len(as_of) == 0:
        return pd.DataFrame(columns=columns)
    t = trades.assign(stock_type=trades["classification"])
    levels = [t, t.assign(stock_type=ALL), t.assign(strategy=ALL, stock_type=ALL)]
    parts = []
    for (strategy, stock_type), group in pd.concat(levels, ignore_index=True).groupby(
            ["strategy", "stock_type"], sort=True):
        part = _group_metrics(group, as_of, periods)
        part.insert(0, "stock_type", stock_type)
        part.insert(0, "strategy", strategy)
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    out["status"], _ = status(out["total_trades"].to_numpy(), out["win_rate"].to_numpy(float),
                              out["avg_profit"].to_numpy(float), out["confidence_accuracy"].to_numpy(float),
                              None, config)
    return out[columns]


def top_performers(metrics: pd.DataFrame, metric: str = "win_rate", period_type: str = "30d", limit: int = 5,
                   min_trades: int = 1, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """The best (strategy, stock type) pairs by `metric` in one period on one as-of day (the latest by default):
    highest first (lowest for losing_trades and avg_hold_days); pairs with fewer than `min_trades` trades or a
    NULL figure are left out; ties broken by trade count, then names."""
    if metric not in METRIC_COLUMNS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRIC_COLUMNS)}")
    rows = metrics[(metrics["period_type"] == period_type) & (metrics["strategy"] != ALL)
                   & (metrics["stock_type"] != ALL)]
    if rows.empty:
        return rows.assign(rank=pd.Series(dtype=int))
    day = pd.Timestamp(as_of) if as_of is not None else pd.Timestamp(rows["period_end"].max())
    rows = rows[(pd.to_datetime(rows["period_end"]) == day) & (rows["total_trades"] >= min_trades)
                & rows[metric].notna()]
    ascending = metric in LOWER_IS_BETTER
    rows = rows.sort_values([metric, "total_trades", "strategy", "stock_type"],
                            ascending=[ascending, False, True, True], kind="mergesort").head(limit)
    return rows.assign(rank=np.arange(1, len(rows) + 1))
