"""Gathering the system-health facts from the Dagster instance and the warehouse (analytics/health.py judges them)."""

from __future__ import annotations

import datetime as dt

import dagster as dg
from dagster_shared.check import CheckError
import pandas as pd

from tracking_pipeline.analytics.health import WINDOW_DAYS, Freshness, health_rows
from tracking_pipeline.services.fingerprints import stored_summary
from tracking_pipeline.services.market_risk import CORRELATIONS
from tracking_pipeline.services.portfolio_risk import STRESS_TESTS
from tracking_pipeline.trading_calendar import sessions_between
from tracking_pipeline.warehouse import TABLES, Warehouse

REFRESHED = (CORRELATIONS, STRESS_TESTS)
"""Tables kept by input fingerprints: their row counts come from the fingerprints (one row per date with its count,
equal to the table after every refresh) instead of a scan (55.8 M correlation rows at 2,000 stocks x 20 years, seconds
on PostgreSQL)."""
CHECK_HISTORY = 100_000
"""At most this many check evaluations are read (a week of nightly runs and backfill chunks makes far fewer)."""


def asset_graph(context: dg.AssetExecutionContext) -> tuple[object, bool]:
    """(the code location's asset graph, True); an in-process run (tests) has no repository, so its job's graph
    stands in: (that graph, False)."""
    try:
        return context.repository_def.asset_graph, True
    except CheckError:
        return context.job_def.asset_layer.asset_graph, False


def materialized_partitions(graph, instance: dg.DagsterInstance,  # noqa: ANN001 - a dagster asset graph
                            complete: bool = True) -> dict[dg.AssetKey, set[str]]:
    """The materialized partitions of each asset of the graph partitioned by trading day (asked once per asset);
    unless `complete` (a partial graph), also of every asset the instance holds partition materializations of."""
    keys = {key for key in graph.get_all_asset_keys()
            if isinstance(graph.get(key).partitions_def, dg.TimeWindowPartitionsDefinition)}
    done = {key: set(instance.get_materialized_partitions(key)) for key in keys}
    if not complete:
        for key in set(instance.get_asset_keys()) - keys:
            if partitions := set(instance.get_materialized_partitions(key)):
                done[key] = partitions
    return dict(sorted(done.items(), key=lambda item: item[0].to_user_string()))


def freshness(done: dict[dg.AssetKey, set[str]], reference_day: str | None) -> list[Freshness]:
    """Each asset's latest materialized partition and its lag in sessions behind `reference_day`."""
    out = []
    for key, partitions in done.items():
        latest = max(partitions) if partitions else None
        lag = None
        if latest is not None:
            lag = 0 if reference_day is None or latest >= reference_day else len(sessions_between(
                pd.Timestamp(latest) + pd.Timedelta(days=1), reference_day))
        out.append(Freshness(key.to_user_string(), latest, lag))
    return out


def failed_checks(instance: dg.DagsterInstance, since: dt.datetime) -> pd.DataFrame:
    """Every failed asset-check evaluation recorded since `since` (of any job)."""
    records = instance.get_event_records(dg.EventRecordsFilter(
        event_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, after_timestamp=since.timestamp()), limit=CHECK_HISTORY)
    rows = []
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        if evaluation.passed:
            continue
        rows.append((f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}", evaluation.severity.value,
                     record.run_id))
    return pd.DataFrame(rows, columns=["check", "severity", "run_id"])


def failed_runs(instance: dg.DagsterInstance, since: dt.datetime) -> pd.DataFrame:
    records = instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE], created_after=since))
    return pd.DataFrame([(r.dagster_run.run_id, r.dagster_run.job_name) for r in records],
                        columns=["run_id", "job_name"])


def collect_health(instance: dg.DagsterInstance, graph, wh: Warehouse,  # noqa: ANN001 - a dagster asset graph
                   reference_day: str | None, now: dt.datetime | None = None, complete: bool = True) -> pd.DataFrame:
    """The health rows (analytics.health.health_rows) of the instance and the warehouse now; `complete`: whether
    `graph` holds every asset of the code location (else the instance's partitioned assets are added)."""
    now = now or dt.datetime.now(dt.UTC)
    since = now - dt.timedelta(days=WINDOW_DAYS)
    counts = {name: int(wh.scalar(f"SELECT COUNT(*) FROM {name}")) if name not in REFRESHED else
              int(stored_summary(wh, name)["dagster/row_count"]) for name in sorted(TABLES)}
    return health_rows(reference_day, freshness(materialized_partitions(graph, instance, complete), reference_day),
                       failed_checks(instance, since), failed_runs(instance, since), counts)
