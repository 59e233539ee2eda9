"""The nightly schedule: the daily assets for the day's NYSE session, after the US close.

Monday to Friday at 18:00 New York time it requests `daily_assets_job` for that day's trading-day partition
(the partitions include today's session, `end_offset=1`). On an exchange holiday it returns a SkipReason and
launches nothing. The unpartitioned downstream assets follow through `downstream_after_daily_sensor`.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd

from tracking_pipeline.defs.jobs import daily_assets_job
from tracking_pipeline.defs.partitions import trading_days
from tracking_pipeline.trading_calendar import is_session, nyse_sessions

NIGHTLY_TIMEZONE = "America/New_York"
NIGHTLY_CRON = "0 18 * * 1-5"


def session_day(scheduled: dt.datetime | None) -> dt.date:
    """The New York calendar day of a tick (a naive time is read as New York time)."""
    stamp = pd.Timestamp(scheduled) if scheduled is not None else pd.Timestamp.now(tz=NIGHTLY_TIMEZONE)
    stamp = stamp.tz_localize(NIGHTLY_TIMEZONE) if stamp.tzinfo is None else stamp.tz_convert(NIGHTLY_TIMEZONE)
    return stamp.date()


@dg.schedule(
    name="nightly_daily_assets", job=daily_assets_job, cron_schedule=NIGHTLY_CRON,
    execution_timezone=NIGHTLY_TIMEZONE, default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Mon-Fri 18:00 America/New_York: the daily assets for that day's NYSE session; nothing on "
                "exchange holidays. Metrics and reports follow via downstream_after_daily_sensor.",
)
def nightly_daily_assets(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """A run for the tick's trading day, or a SkipReason on a holiday or before the first partition."""
    day = session_day(context.scheduled_execution_time)
    if day > nyse_sessions()[-1].date():
        return dg.SkipReason(f"{day.isoformat()} is beyond the NYSE calendar (last known session "
                             f"{nyse_sessions()[-1].date()}): update exchange_calendars")
    if not is_session(day):
        return dg.SkipReason(f"{day.isoformat()} is not an NYSE trading day (weekend or exchange holiday): "
                             "nothing to run")
    if day < trading_days.start.date():
        return dg.SkipReason(f"{day.isoformat()} is before the first partition {trading_days.start.date()}")
    key = day.isoformat()
    return dg.RunRequest(run_key=f"nightly-{key}", partition_key=key, tags={"tracking/trigger": "nightly"})
