"""What the daily report shows (seed 004's daily email), read from the warehouse for one day: each portfolio's
return by variant, the trades opened and closed, strategy alerts, the scan's candidates and system health."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from tracking_pipeline.analytics.outcomes import CRITICAL, GOOD, WARNING, OutcomeConfig, status, worst
from tracking_pipeline.warehouse import Warehouse

ALERT_STATUSES = (CRITICAL, WARNING)


def report_day(wh: Warehouse) -> pd.Timestamp | None:
    """The latest trading day with prices in the warehouse (the day a nightly run just updated)."""
    day = wh.scalar("SELECT MAX(trade_date) FROM price_data")
    return None if day is None or pd.isna(day) else pd.Timestamp(day)


def portfolio_returns(wh: Warehouse, day: pd.Timestamp) -> pd.DataFrame:
    """Active portfolios' NAV, day, year-to-date and since-start return per variant on `day`. Year to date is
    from the last NAV of the previous year (since start for a portfolio started this year)."""
    rows = wh.query(
        "SELECT d.name AS portfolio, n.portfolio_id, n.variant, n.nav, n.daily_return, n.cumulative_return "
        "FROM portfolio_daily_nav n JOIN portfolio_definitions d ON d.portfolio_id = n.portfolio_id "
        "WHERE n.trade_date = ? AND d.is_active ORDER BY d.name, n.variant", [day.date()])
    year_end = wh.query(
        "SELECT n.portfolio_id, n.variant, n.nav AS year_end_nav FROM portfolio_daily_nav n JOIN "
        "(SELECT portfolio_id, variant, MAX(trade_date) AS last_day FROM portfolio_daily_nav WHERE trade_date < ? "
        "GROUP BY portfolio_id, variant) m ON n.portfolio_id = m.portfolio_id AND n.variant = m.variant "
        "AND n.trade_date = m.last_day", [dt.date(day.year, 1, 1)])
    rows = rows.merge(year_end, on=["portfolio_id", "variant"], how="left")
    nav, base = rows["nav"].astype(float), rows["year_end_nav"].astype(float)
    rows["ytd_return"] = np.where(base.notna(), nav / base - 1.0, rows["cumulative_return"].astype(float))
    return rows[["portfolio", "variant", "nav", "daily_return", "ytd_return", "cumulative_return"]]


def trades_of_day(wh: Warehouse, day: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(opened on `day`, closed on `day`, open at `day`) from trade_tracking."""
    opened = wh.query("SELECT trade_id, symbol, strategy, classification, entry_price, quantity, routing_confidence "
                      "FROM trade_tracking WHERE entry_date = ? ORDER BY trade_id", [day.date()])
    closed = wh.query("SELECT trade_id, symbol, strategy, exit_reason, hold_days, profit_loss, profit_loss_pct "
                      "FROM trade_tracking WHERE exit_date = ? AND NOT is_open ORDER BY trade_id", [day.date()])
    still_open = wh.query("SELECT trade_id, symbol, strategy, profit_loss, profit_loss_pct FROM trade_tracking "
                          "WHERE is_open AND status_date = ? ORDER BY trade_id", [day.date()])
    return opened, closed, still_open


def strategy_alerts(wh: Warehouse, day: pd.Timestamp, config: OutcomeConfig) -> pd.DataFrame:
    """strategy_metrics rows of `day` in the status period that are WARNING or CRITICAL, with their reasons."""
    rows = wh.query(
        "SELECT strategy, stock_type, status, total_trades, win_rate, avg_profit, confidence_accuracy "
        "FROM strategy_metrics WHERE period_end = ? AND period_type = ? AND status IN (?, ?) "
        "ORDER BY status, strategy, stock_type", [day.date(), config.status_period, *ALERT_STATUSES])
    if rows.empty:
        return rows.assign(reasons=pd.Series(dtype=object))
    figures = {c: pd.to_numeric(rows[c]).to_numpy(float) for c in ("win_rate", "avg_profit", "confidence_accuracy")}
    _, reasons = status(rows["total_trades"].to_numpy(), figures["win_rate"], figures["avg_profit"],
                        figures["confidence_accuracy"], None, config)
    return rows.assign(reasons=reasons)


def daily_report_data(wh: Warehouse, health: pd.DataFrame, config: OutcomeConfig, day: pd.Timestamp | None = None,
                      generated: str | None = None) -> dict | None:
    """Everything the report shows for `day` (default: the report day) as plain values and lists of records
    (None when the warehouse has no prices yet)."""
    day = day if day is not None else report_day(wh)
    if day is None:
        return None
    opened, closed, still_open = trades_of_day(wh, day)
    outcome = wh.query("SELECT closed_trades, win_rate, avg_return, explosive_rate, recovery_progress, status, "
                       "status_reasons FROM trade_outcomes WHERE as_of_date = ? AND period_type = ?",
                       [day.date(), config.status_period])
    alerts = strategy_alerts(wh, day, config)
    candidates = wh.query("SELECT ticker, price, volume_multiple, best_pattern, similarity FROM "
                          "volume_spike_candidates WHERE trade_date = ? ORDER BY volume_multiple DESC, ticker",
                          [day.date()])
    health_status = health.loc[health["component"] == "overall", "status"].iloc[0] if len(health) else None
    shown_health = health[health["status"].notna() & ((health["status"] != GOOD)
                                                       | health["component"].isin(["overall", "failed_checks_7d",
                                                                                   "failed_runs_7d"]))]
    outcome_record = _records(outcome)[0] if len(outcome) else None
    overall = worst([health_status, outcome_record["status"] if outcome_record else None])
    return {
        "day": day.date().isoformat(), "generated": generated or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "status": overall, "status_period": config.status_period, "baseline": config.baseline.label,
        "portfolios": _records(portfolio_returns(wh, day)), "opened": _records(opened), "closed": _records(closed),
        "open_count": len(still_open),
        "open_profit_loss": float(pd.to_numeric(still_open["profit_loss"]).sum()) if len(still_open) else 0.0,
        "outcome": outcome_record, "alerts": _records(alerts), "candidates": _records(candidates),
        "health_status": health_status, "health": _records(shown_health),
    }


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as dicts of plain Python values (NULLs as None)."""
    return [{k: (None if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA or v is pd.NaT else
                 (v.item() if isinstance(v, np.generic) else v)) for k, v in row.items()}
            for row in frame.astype(object).to_dict("records")]
