"""The nightly schedule: Mon-Fri after the close, the day's trading-day partition, nothing on NYSE holidays."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from dagster._utils.schedules import cron_string_iterator

from tracking_pipeline.definitions import defs
from tracking_pipeline.defs.automation.schedules import nightly_daily_assets

NEW_YORK = ZoneInfo("America/New_York")
# NYSE full-day closures in the windows below (published exchange holidays, not computed by the project).
HOLIDAYS_2023 = {dt.date(2023, 7, 4), dt.date(2023, 11, 23)}


def _evaluate(instance: dg.DagsterInstance, when: dt.datetime) -> dg.ScheduleExecutionData:
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when,
                                        repository_def=defs.get_repository_def())
    return nightly_daily_assets.evaluate_tick(context)


def _ticks(start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """The schedule's tick times in [start, end), as the daemon computes them from the cron string."""
    out = []
    for tick in cron_string_iterator(start.timestamp(), nightly_daily_assets.cron_schedule,
                                     nightly_daily_assets.execution_timezone):
        if tick >= end:
            return out
        out.append(tick)
    return out


@pytest.mark.parametrize("first,last", [("2023-06-30", "2023-07-07"), ("2023-11-20", "2023-11-28")])
def test_ticks_request_each_trading_day_and_skip_weekends_and_holidays(first, last):
    start = dt.datetime.fromisoformat(first).replace(tzinfo=NEW_YORK)
    end = dt.datetime.fromisoformat(last).replace(tzinfo=NEW_YORK) + dt.timedelta(days=1)
    ticks = _ticks(start, end)
    assert all(t.astimezone(NEW_YORK).hour == 18 and t.astimezone(NEW_YORK).minute == 0 for t in ticks)
    tick_days = [t.astimezone(NEW_YORK).date() for t in ticks]
    calendar_days = [start.date() + dt.timedelta(days=i) for i in range((end.date() - start.date()).days)]
    assert tick_days == [d for d in calendar_days if d.weekday() < 5]  # no Saturday or Sunday tick

    requested, skipped = [], []
    with dg.instance_for_test() as instance:
        for tick in ticks:
            data = _evaluate(instance, tick)
            if data.run_requests:
                assert len(data.run_requests) == 1
                requested.append(data.run_requests[0].partition_key)
            else:
                assert data.skip_message and "holiday" in data.skip_message
                skipped.append(tick.astimezone(NEW_YORK).date())
    expected_sessions = [d.isoformat() for d in tick_days if d not in HOLIDAYS_2023]
    assert requested == expected_sessions
    assert skipped == sorted(d for d in HOLIDAYS_2023 if start.date() <= d < end.date())


def test_run_request_targets_the_job_partition_with_the_day_in_new_york():
    # 18:00 New York on a Wednesday is 22:00 UTC; the partition is New York's date, not UTC's next day.
    with dg.instance_for_test() as instance:
        data = _evaluate(instance, dt.datetime(2023, 7, 5, 22, 0, tzinfo=dt.UTC))
    (request,) = data.run_requests
    assert request.partition_key == "2023-07-05"
    assert request.tags["dagster/partition"] == "2023-07-05"
    assert nightly_daily_assets.job_name == "daily_assets_job"
    assert nightly_daily_assets.execution_timezone == "America/New_York"


def test_a_weekend_evaluation_requests_nothing():
    with dg.instance_for_test() as instance:
        data = _evaluate(instance, dt.datetime(2023, 7, 8, 18, 0, tzinfo=NEW_YORK))
    assert data.run_requests == [] and "2023-07-08" in data.skip_message
