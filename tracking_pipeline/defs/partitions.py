"""Trading-day partitions: NYSE sessions from TRACKING_PARTITIONS_START."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from tracking_pipeline.trading_calendar import nyse_sessions, non_session_weekdays
from tracking_pipeline.settings import load_settings

WEEKENDS = "0 0 * * 6,0"


def trading_day_partitions(start: str | None = None) -> dg.DailyPartitionsDefinition:
    """Daily partitions excluding weekends and NYSE holidays; today's session is included (end_offset=1)
    so the nightly run after the close can target it."""
    start = start or load_settings().partitions_start
    holidays = non_session_weekdays(start, nyse_sessions()[-1])
    return dg.DailyPartitionsDefinition(
        start_date=start,
        end_offset=1,
        exclusions=[WEEKENDS, *[dt.datetime(d.year, d.month, d.day) for d in holidays]],
    )


trading_days = trading_day_partitions()
