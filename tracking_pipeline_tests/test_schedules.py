"""The nightly schedule: Mon-Fri after the close it requests range runs from the first missing day up to the day's
session, nothing on NYSE holidays, nothing while a daily run is in flight or when all is materialized."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from dagster._utils.schedules import cron_string_iterator

from tracking_pipeline.defs.automation.daily_runs import PRIORITY_TAG, RANGE_END_TAG, RANGE_START_TAG
from tracking_pipeline.defs.automation.schedules import nightly_daily_assets

NEW_YORK = ZoneInfo("America/New_York")
# NYSE full-day closures in the windows below (published exchange holidays, not computed by the project).
HOLIDAYS_2023 = {dt.date(2023, 7, 4), dt.date(2023, 11, 23)}
FIRST_PARTITION = "2023-06-01"


@pytest.fixture
def defs(tracking_env, monkeypatch) -> dg.Definitions:
    """Open-ended partitions from FIRST_PARTITION (the schedule only plans runs here; none is executed)."""
    monkeypatch.setenv("TRACKING_PARTITIONS_START", FIRST_PARTITION)
    return tracking_env.defs()


def _evaluate(defs: dg.Definitions, instance: dg.DagsterInstance, when: dt.datetime) -> dg.ScheduleExecutionData:
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when,
                                        repository_def=defs.get_repository_def())
    return defs.resolve_schedule_def("nightly_daily_assets").evaluate_tick(context)


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
def test_ticks_request_each_trading_day_and_skip_weekends_and_holidays(defs, first, last):
    start = dt.datetime.fromisoformat(first).replace(tzinfo=NEW_YORK)
    end = dt.datetime.fromisoformat(last).replace(tzinfo=NEW_YORK) + dt.timedelta(days=1)
    ticks = _ticks(start, end)
    assert all(t.astimezone(NEW_YORK).hour == 18 and t.astimezone(NEW_YORK).minute == 0 for t in ticks)
    tick_days = [t.astimezone(NEW_YORK).date() for t in ticks]
    calendar_days = [start.date() + dt.timedelta(days=i) for i in range((end.date() - start.date()).days)]
    assert tick_days == [d for d in calendar_days if d.weekday() < 5]  # no Saturday or Sunday tick

    requested, skipped = [], []
    with dg.instance_for_test() as instance:  # nothing materialized: every tick starts at the first partition
        for tick in ticks:
            data = _evaluate(defs, instance, tick)
            if data.run_requests:
                (request,) = data.run_requests
                assert request.tags[RANGE_START_TAG] == FIRST_PARTITION
                requested.append(request.tags[RANGE_END_TAG])
            else:
                assert data.skip_message and "holiday" in data.skip_message
                skipped.append(tick.astimezone(NEW_YORK).date())
    expected_sessions = [d.isoformat() for d in tick_days if d not in HOLIDAYS_2023]
    assert requested == expected_sessions
    assert skipped == sorted(d for d in HOLIDAYS_2023 if start.date() <= d < end.date())


def test_run_request_targets_the_day_in_new_york(defs):
    # 18:00 New York on a Wednesday is 22:00 UTC; the range ends on New York's date, not UTC's next day.
    with dg.instance_for_test() as instance:
        data = _evaluate(defs, instance, dt.datetime(2023, 7, 5, 22, 0, tzinfo=dt.UTC))
    (request,) = data.run_requests
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == (FIRST_PARTITION, "2023-07-05")
    assert request.job_name == "daily_assets_job" and request.tags["tracking/trigger"] == "nightly"
    assert int(request.tags[PRIORITY_TAG]) > 0
    assert nightly_daily_assets.job_name == "daily_assets_job"
    assert nightly_daily_assets.execution_timezone == "America/New_York"


def test_a_weekend_evaluation_requests_nothing(defs):
    with dg.instance_for_test() as instance:
        data = _evaluate(defs, instance, dt.datetime(2023, 7, 8, 18, 0, tzinfo=NEW_YORK))
    assert data.run_requests == [] and "2023-07-08" in data.skip_message


def test_a_tick_before_the_first_partition_requests_nothing(defs):
    with dg.instance_for_test() as instance:
        data = _evaluate(defs, instance, dt.datetime(2023, 5, 31, 18, 0, tzinfo=NEW_YORK))
    assert data.run_requests == [] and "before the first partition 2023-06-01" in data.skip_message


def test_on_the_frozen_demo_lake_every_tick_targets_its_last_day():
    """The packaged demo lake ends 2023-10-27 and so do its partitions: a tick today plans up to that day."""
    from tracking_pipeline.definitions import build_definitions
    from tracking_pipeline.settings import DEMO_LAKE, load_settings

    demo = build_definitions(dataclasses.replace(load_settings(), lake=str(DEMO_LAKE), partitions_start=None,
                                                 partitions_end=None))
    with dg.instance_for_test() as instance:
        data = _evaluate(demo, instance, dt.datetime(2026, 11, 24, 18, 0, tzinfo=NEW_YORK))
    (request,) = data.run_requests
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == ("2018-01-02", "2023-10-27")
