"""Small helpers shared by the asset modules: partition windows, metadata, history look-back."""

from __future__ import annotations

import datetime as dt

import dagster as dg
from dagster import AssetExecutionContext
import pandas as pd

from tracking_pipeline.reporting.markdown import markdown_table
from tracking_pipeline.trading_calendar import nyse_sessions, sessions_between

SINGLE_RUN = dg.BackfillPolicy.single_run()


def partition_window(context: AssetExecutionContext) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last trading day of the run's partition range."""
    key_range = context.partition_key_range
    return pd.Timestamp(key_range.start), pd.Timestamp(key_range.end)


def sessions_before(day: pd.Timestamp, count: int) -> pd.Timestamp:
    """The session `count` sessions before `day` (for indicator look-back)."""
    sessions = nyse_sessions()
    i = max(int(sessions.searchsorted(day)) - count, 0)
    return sessions[i]


def window_sessions(start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    return sessions_between(start, end)


def preview(frame: pd.DataFrame, rows: int = 8) -> dg.MetadataValue:
    """A small markdown preview of a frame's last rows for the UI (floats to 6 decimals)."""
    if frame.empty:
        return dg.MetadataValue.md("_no rows_")
    shown = frame.tail(rows)
    floats = [c for c in shown.columns if pd.api.types.is_float_dtype(shown[c])]
    return dg.MetadataValue.md(markdown_table(shown.round({c: 6 for c in floats})))


def table_metadata(frame: pd.DataFrame, date_column: str | None, warnings: list[str] | None = None,
                   **extra: object) -> dict[str, object]:
    """Row count, date range and preview (plus any lake warnings) for a MaterializeResult."""
    meta: dict[str, object] = {"dagster/row_count": len(frame), "preview": preview(frame)}
    if date_column and len(frame):
        meta["first_date"] = str(pd.Timestamp(frame[date_column].min()).date())
        meta["last_date"] = str(pd.Timestamp(frame[date_column].max()).date())
    if warnings:
        meta["lake_warnings"] = dg.MetadataValue.md("\n".join(f"- {w}" for w in warnings))
    meta.update(extra)
    return meta


def iso(day: dt.date | pd.Timestamp) -> str:
    return pd.Timestamp(day).date().isoformat()
