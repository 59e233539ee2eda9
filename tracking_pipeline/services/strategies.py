"""Everything the dashboard's Strategies page shows, as frames read from the warehouse (Dagster-free): the
strategy x stock type table, top performers, confidence calibration, outcome status, open trades, volume-spike
candidates and system health."""

from __future__ import annotations

import pandas as pd

from tracking_pipeline.analytics.strategy_metrics import top_performers
from tracking_pipeline.warehouse import TABLES, Warehouse

RECENT_CANDIDATE_SESSIONS = 20


def _columns(table: str) -> str:
    return ", ".join(TABLES[table].column_names)


def strategies_page(wh: Warehouse, period_type: str = "90d", as_of: pd.Timestamp | None = None,
                    metric: str = "win_rate", limit: int = 5, min_trades: int = 5) -> dict[str, pd.DataFrame]:
    """The page's tables for one as-of day (default: the latest with strategy metrics) and period:
    `strategy_table` (every strategy_metrics row of that day and period, aggregates included), `top_performers`
    (the best `limit` pairs by `metric` with at least `min_trades` trades), `calibration` (one row per confidence
    band), `outcomes` (every period's outcome row of that day), `open_trades` (marked to market), `candidates`
    (the scan's candidates of the last 20 sessions up to that day) and `health` (the latest system_health
    snapshot). Frames are empty where the tables are."""
    day = pd.Timestamp(as_of) if as_of is not None else wh.scalar("SELECT MAX(period_end) FROM strategy_metrics")
    if day is None or pd.isna(day):
        empty = {name: pd.DataFrame(columns=TABLES[table].column_names) for name, table in (
            ("strategy_table", "strategy_metrics"), ("calibration", "confidence_calibration"),
            ("outcomes", "trade_outcomes"), ("open_trades", "trade_tracking"),
            ("candidates", "volume_spike_candidates"), ("health", "system_health"))}
        return {**empty, "top_performers": pd.DataFrame(columns=[*TABLES["strategy_metrics"].column_names, "rank"])}
    day = pd.Timestamp(day).date()
    table = wh.query(f"SELECT {_columns('strategy_metrics')} FROM strategy_metrics WHERE period_end = ? AND "
                     "period_type = ? ORDER BY strategy, stock_type", [day, period_type])
    recent = wh.query("SELECT DISTINCT trade_date FROM volume_spike_candidates WHERE trade_date <= ? "
                      f"ORDER BY trade_date DESC LIMIT {RECENT_CANDIDATE_SESSIONS}", [day])
    first = recent["trade_date"].min() if len(recent) else day
    return {
        "strategy_table": table,
        "top_performers": top_performers(table, metric, period_type, limit, min_trades).reset_index(drop=True),
        "calibration": wh.query(
            f"SELECT {_columns('confidence_calibration')} FROM confidence_calibration WHERE as_of_date = ? AND "
            "period_type = ? ORDER BY CASE band WHEN 'high' THEN 0 WHEN 'medium' THEN 1 WHEN 'low' THEN 2 ELSE 3 END",
            [day, period_type]),
        "outcomes": wh.query(f"SELECT {_columns('trade_outcomes')} FROM trade_outcomes WHERE as_of_date = ? "
                             "ORDER BY CASE period_type WHEN '30d' THEN 0 WHEN '90d' THEN 1 WHEN '365d' THEN 2 "
                             "ELSE 3 END", [day]),
        "open_trades": wh.query(f"SELECT {_columns('trade_tracking')} FROM trade_tracking WHERE is_open "
                                "ORDER BY entry_date, trade_id"),
        "candidates": wh.query(f"SELECT {_columns('volume_spike_candidates')} FROM volume_spike_candidates "
                               "WHERE trade_date BETWEEN ? AND ? ORDER BY trade_date DESC, volume_multiple DESC, "
                               "ticker", [pd.Timestamp(first).date(), day]),
        "health": wh.query(f"SELECT {_columns('system_health')} FROM system_health WHERE checked_at = "
                           "(SELECT MAX(checked_at) FROM system_health) ORDER BY component"),
    }
