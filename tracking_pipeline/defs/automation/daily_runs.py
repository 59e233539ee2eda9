"""What the schedule, the sensors and the CLI share about daily runs: which days are missing, the run requests
that fill them in date order, and which runs are still in flight."""

from __future__ import annotations

import datetime as dt

import dagster as dg
from dagster._core.execution.backfill import BulkActionStatus

DAILY_JOB = "daily_assets_job"
DOWNSTREAM_JOB = "downstream_job"
CHAIN_TAG = "tracking/chain"
"""Run tag of every daily_assets_job run (a job tag): the run queue admits one such run at a time
(`run_queue.tag_concurrency_limits` in dagster.yaml)."""
PRIORITY_TAG = "dagster/priority"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
TRIGGER_TAG = "tracking/trigger"
CHUNK_DAYS = 2000
"""Trading days per range run (as the CLI): bounded memory, few runs."""
IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
PRIORITY_EPOCH = dt.date(2100, 1, 1)


def daily_asset_keys(repository: dg.RepositoryDefinition) -> list[dg.AssetKey]:
    """The assets of daily_assets_job (every trading-day-partitioned asset)."""
    job = repository.get_job(DAILY_JOB)
    return sorted(job.asset_layer.executable_asset_keys, key=lambda k: k.to_user_string())


def date_priority(day: str) -> str:
    """The run-queue priority of a run starting on `day`: earlier days first (higher priority)."""
    return str((PRIORITY_EPOCH - dt.date.fromisoformat(day)).days)


def first_missing_day(instance: dg.DagsterInstance, keys: list[dg.AssetKey], partition_keys: list[str]) -> str | None:
    """The earliest of `partition_keys` (ordered) not materialized for one of `keys`, or None."""
    first = None
    for key in keys:
        done = instance.get_materialized_partitions(key)
        missing = next((k for k in partition_keys if k not in done), None)
        if missing is not None and (first is None or missing < first):
            first = missing
    return first


def range_requests(partition_keys: list[str], first: str, last: str, run_key: str, trigger: str,
                   tags: dict[str, str] | None = None, **request: object) -> list[dg.RunRequest]:
    """daily_assets_job range runs covering [first, last] in chunks of CHUNK_DAYS, earliest first, each tagged
    with its range and a priority that makes the run queue start them in date order."""
    days = [k for k in partition_keys if first <= k <= last]
    out = []
    for i in range(0, len(days), CHUNK_DAYS):
        lo, hi = days[i], days[min(i + CHUNK_DAYS, len(days)) - 1]
        out.append(dg.RunRequest(
            run_key=f"{run_key}-{lo}-{hi}", job_name=DAILY_JOB,
            tags={**(tags or {}), RANGE_START_TAG: lo, RANGE_END_TAG: hi, PRIORITY_TAG: date_priority(lo),
                  TRIGGER_TAG: trigger},
            **request,
        ))
    return out


def runs_in_flight(instance: dg.DagsterInstance, keys: list[dg.AssetKey] | None = None) -> list[str]:
    """Ids of what still writes daily or downstream assets: queued or running runs of daily_assets_job and
    downstream_job or selecting one of `keys` (e.g. a UI materialization), and backfills still in progress (an
    asset backfill launches its runs one after another)."""
    wanted = set(keys or [])
    out = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=IN_FLIGHT)):
        run = record.dagster_run
        if run.job_name in (DAILY_JOB, DOWNSTREAM_JOB) or (run.asset_selection and wanted & set(run.asset_selection)):
            out.append(run.run_id)
    out.extend(f"backfill {b.backfill_id}" for b in instance.get_backfills(status=BulkActionStatus.REQUESTED))
    return out
