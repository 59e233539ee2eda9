"""The nightly schedule: after the US close, every daily asset brought up to the day's NYSE session.

Monday to Friday at 18:00 New York time. A tick on day D finds, over the daily assets, the first partition that
is not materialized (a night that was missed or failed, a gap left by a manual run) and requests
`daily_assets_job` range runs from that day to D, earliest first: one or several bad nights are repaired by the
next good tick with nobody's help. On an exchange holiday, while a daily run is still queued or running, or
when everything up to D is materialized, it requests nothing and says why. Metrics and reports follow through
`downstream_after_daily_sensor`.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd

from tracking_pipeline.defs.automation.daily_runs import (
    DAILY_JOB, daily_asset_keys, first_missing_day, range_requests, runs_in_flight,
)
from tracking_pipeline.defs.jobs import daily_assets_job
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
    description="Mon-Fri 18:00 America/New_York: daily_assets_job range runs from the first day any daily asset "
                "is missing up to that day's NYSE session, in date order (a missed or failed night heals at the "
                "next tick); nothing on exchange holidays. Metrics and reports follow via "
                "downstream_after_daily_sensor.",
)
def nightly_daily_assets(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest] | dg.SkipReason:
    day = session_day(context.scheduled_execution_time)
    if day > nyse_sessions()[-1].date():
        return dg.SkipReason(f"{day.isoformat()} is beyond the NYSE calendar (last known session "
                             f"{nyse_sessions()[-1].date()}): update exchange_calendars")
    if not is_session(day):
        return dg.SkipReason(f"{day.isoformat()} is not an NYSE trading day (weekend or exchange holiday): "
                             "nothing to run")
    repository = context.repository_def
    partitions = repository.get_job(DAILY_JOB).partitions_def
    keys = [k for k in partitions.get_partition_keys(current_time=_after_close(day)) if k <= day.isoformat()]
    if not keys:
        return dg.SkipReason(f"{day.isoformat()} is before the first partition "
                             f"{partitions.get_first_partition_key()}")
    assets = daily_asset_keys(repository)
    busy = runs_in_flight(context.instance, assets)
    if busy:
        return dg.SkipReason(f"{len(busy)} run(s) writing the daily assets are still queued or running "
                             f"({', '.join(busy[:3])}): the next tick fills what they leave")
    first = first_missing_day(context.instance, assets, keys)
    if first is None:
        return dg.SkipReason(f"every daily asset is materialized up to {keys[-1]}: nothing to run")
    context.log.info(f"daily assets missing from {first}: requesting {first}..{keys[-1]}")
    return range_requests(keys, first, keys[-1], run_key=f"nightly-{day.isoformat()}", trigger="nightly")


def _after_close(day: dt.date) -> dt.datetime:
    """18:00 New York time on `day` (the tick time), as the partitions' "now"."""
    return pd.Timestamp(day.isoformat()).tz_localize(NIGHTLY_TIMEZONE).replace(hour=18).to_pydatetime()
