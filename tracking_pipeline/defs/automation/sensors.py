"""Sensors: portfolio registration (lake portfolios/*) and the downstream assets after the daily ones.

Portfolio registration (seed 000, phase 8). The cursor is JSON:
``{"files": {path: version}, "pending": {token: [portfolio, ...]}}`` where a path is relative to the lake root
and a version is the SHA-256 of the file's bytes locally and the ETag on S3 (`Lake.versions(content=True)`), so
a copy of the same lake registers nothing new. The first tick only records the listing (the portfolios already there
are covered by `make demo` / the CLI backfill). Afterwards, on a new, changed or removed file:

1. tick N requests `portfolio_registry_job` tagged ``tracking/registration=<token>`` (the registry upserts
   the files and marks removed or ``is_active: false`` portfolios inactive, keeping their history) and keeps
   the new or changed active portfolios under ``pending[token]`` (portfolios still waiting on an earlier
   registry run move to the new token: that run registers every file);
2. a later tick, once that registry run succeeded, requests one `daily_assets_job` run per pending portfolio
   over the partition range [its start_date, the latest materialized trading day], restricted to
   `portfolio_daily_nav` (and the daily assets downstream of it) and tagged ``tracking/portfolio=<id>`` so
   the NAV asset computes and replaces that portfolio's rows only. A failed registry run drops the pending
   entry (the failure sensor raises the alert; fixing the file triggers a new registration).

Unchanged files request nothing: the versions are in the cursor, which Dagster persists between ticks.
"""

from __future__ import annotations

import hashlib
import json
import time

import dagster as dg

from tracking_pipeline.analytics.overlays.registry import available_models
from tracking_pipeline.defs.automation.daily_runs import (
    PRIORITY_TAG, RANGE_END_TAG, RANGE_START_TAG, TRIGGER_TAG, daily_asset_keys, date_priority, runs_in_flight,
)
from tracking_pipeline.defs.jobs import daily_assets_job, daily_selection, downstream_job, registry_job
from tracking_pipeline.defs.portfolios.assets import PORTFOLIO_TAG
from tracking_pipeline.defs.resources import LakeResource, TrackingSettings
from tracking_pipeline.lake import Lake, LakeInputError
from tracking_pipeline.lake.portfolios import PORTFOLIO_PATTERNS, read_portfolio_file
from tracking_pipeline.trading_calendar import next_session_on_or_after

REGISTRATION_TAG = "tracking/registration"
NAV_KEY = dg.AssetKey("portfolio_daily_nav")
# Upstream of the NAV: the backfill can only reach the last day both are materialized for.
NAV_INPUTS = (dg.AssetKey("price_data"), dg.AssetKey("overlay_signals"))
FINISHED_BAD = {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


def read_cursor(text: str | None) -> dict | None:
    """The parsed cursor, or None before the first tick."""
    if not text:
        return None
    cursor = json.loads(text)
    return {"files": dict(cursor.get("files", {})), "pending": dict(cursor.get("pending", {}))}


def diff_files(old: dict[str, str], new: dict[str, str]) -> tuple[list[str], list[str], list[str]]:
    """(added, changed, removed) paths between two {path: version} listings."""
    added = sorted(set(new) - set(old))
    changed = sorted(p for p in set(new) & set(old) if new[p] != old[p])
    removed = sorted(set(old) - set(new))
    return added, changed, removed


def latest_materialized_day(instance: dg.DagsterInstance) -> str | None:
    """The last trading day for which every NAV input is materialized (None when one has none)."""
    lasts = []
    for key in NAV_INPUTS:
        keys = instance.get_materialized_partitions(key)
        if not keys:
            return None
        lasts.append(max(keys))
    return min(lasts)


def _backfill_request(portfolio: dict, end: str, token: str, assets: list[dg.AssetKey]) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=f"nav-history-{token}-{portfolio['portfolio_id']}", job_name=daily_assets_job.name,
        asset_selection=assets,
        tags={RANGE_START_TAG: portfolio["start"], RANGE_END_TAG: end, PRIORITY_TAG: date_priority(portfolio["start"]),
              PORTFOLIO_TAG: str(portfolio["portfolio_id"]), TRIGGER_TAG: "portfolio_registration"},
    )


def _nav_history_assets(context: dg.SensorEvaluationContext) -> list[dg.AssetKey]:
    """portfolio_daily_nav and the daily assets downstream of it."""
    selection = dg.AssetSelection.assets(NAV_KEY).downstream() & daily_selection
    if context.repository_def is None:
        return [NAV_KEY]
    return sorted(selection.resolve(context.repository_def.asset_graph), key=lambda k: k.to_user_string())


def _resolve_pending(context: dg.SensorEvaluationContext, pending: dict[str, list[dict]]) -> list[dg.RunRequest]:
    """Backfill requests for registrations whose registry run succeeded; drops failed ones from `pending`."""
    requests: list[dg.RunRequest] = []
    for token in sorted(pending):
        runs = context.instance.get_runs(filters=dg.RunsFilter(tags={REGISTRATION_TAG: token}), limit=1)
        if not runs:
            continue
        status = runs[0].status
        if status in FINISHED_BAD:
            context.log.error(f"registry run {runs[0].run_id} for registration {token} ended {status.value}: "
                              f"no history backfill for {[p['name'] for p in pending[token]]}")
            del pending[token]
            continue
        if status != dg.DagsterRunStatus.SUCCESS:
            continue
        portfolios = pending.pop(token)
        end = latest_materialized_day(context.instance)
        if end is None:
            context.log.info("no materialized price_data/overlay_signals yet: the next daily backfill covers "
                             f"{[p['name'] for p in portfolios]}")
            continue
        assets = _nav_history_assets(context)
        first_partition = context.repository_def.get_job(daily_assets_job.name).partitions_def \
            .get_first_partition_key()
        for portfolio in portfolios:
            if portfolio["start"] < first_partition:
                context.log.error(f"{portfolio['name']}: start_date {portfolio['start']} is before the first "
                                  f"partition {first_partition} (TRACKING_PARTITIONS_START): no history backfill")
                continue
            if portfolio["start"] > end:
                context.log.info(f"{portfolio['name']}: starts {portfolio['start']}, after the latest "
                                 f"materialized day {end}; the nightly run will start it")
                continue
            context.log.info(f"{portfolio['name']}: backfilling its NAV {portfolio['start']}..{end}")
            requests.append(_backfill_request(portfolio, end, token, assets))
    return requests


def _active_portfolio(lake: Lake, relative: str, benchmark: str,
                      context: dg.SensorEvaluationContext) -> dict | None:
    """The name, id and first NAV day of an active portfolio file (None when invalid or inactive)."""
    try:
        spec = read_portfolio_file(lake, relative, benchmark, available_models())
    except LakeInputError as exc:
        context.log.warning(f"{exc} (the registry run reports it; no backfill)")
        return None
    if not spec.is_active:
        context.log.info(f"{spec.name}: is_active is false; registry marks it inactive, history kept")
        return None
    start = next_session_on_or_after(spec.start_date).date().isoformat()
    return {"name": spec.name, "portfolio_id": spec.portfolio_id, "start": start, "file": relative}


@dg.sensor(
    name="portfolio_registration_sensor", jobs=[registry_job, daily_assets_job], minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Watches portfolios/* in the lake (local or S3): on a new, changed or removed file, runs the "
                "portfolio registry, then backfills a new or changed portfolio's NAV history from its "
                "start_date (its rows only).",
)
def portfolio_registration_sensor(context: dg.SensorEvaluationContext, lake: LakeResource,
                                  tracking: TrackingSettings) -> dg.SensorResult:
    source = lake.open()
    current = source.versions("portfolios", PORTFOLIO_PATTERNS, content=True)
    for warning in source.warnings:
        context.log.warning(warning)
    cursor = read_cursor(context.cursor)
    if cursor is None:
        context.log.info(f"first tick: recorded {len(current)} portfolio file(s) as the baseline")
        return dg.SensorResult(skip_reason=f"baseline of {len(current)} portfolio file(s) recorded",
                               cursor=json.dumps({"files": current, "pending": {}}, sort_keys=True))
    pending = cursor["pending"]
    requests = _resolve_pending(context, pending)
    added, changed, removed = diff_files(cursor["files"], current)
    if added or changed or removed:
        digest = hashlib.sha256(json.dumps(current, sort_keys=True).encode()).hexdigest()[:12]
        token = f"{digest}-{time.time_ns()}"
        context.log.info(f"portfolio files added {added}, changed {changed}, removed {removed}: registering")
        requests.append(dg.RunRequest(run_key=f"registry-{token}", job_name=registry_job.name,
                                      tags={REGISTRATION_TAG: token, "tracking/trigger": "portfolio_registration"}))
        touched = {*added, *changed, *removed}
        # The new registry run registers every file: portfolios still waiting on an earlier one move to it.
        carried = [p for ps in pending.values() for p in ps if p["file"] not in touched]
        fresh = [p for p in (_active_portfolio(source, f, tracking.market_ticker, context)
                             for f in [*added, *changed]) if p is not None]
        ids = {p["portfolio_id"] for p in fresh}
        pending.clear()
        portfolios = fresh + [p for p in carried if p["portfolio_id"] not in ids]
        if portfolios:
            pending[token] = portfolios
    new_cursor = json.dumps({"files": current, "pending": pending}, sort_keys=True)
    if not requests:
        waiting = f"; waiting for {len(pending)} registry run(s)" if pending else ""
        return dg.SensorResult(skip_reason=f"no portfolio file changed{waiting}", cursor=new_cursor)
    return dg.SensorResult(run_requests=requests, cursor=new_cursor)


@dg.sensor(
    name="downstream_after_daily_sensor", job=downstream_job, minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After new materializations of any daily asset, whatever launched them (nightly schedule, job or "
                "asset backfill from the UI, a portfolio's history run, the CLI), and once no run writing the "
                "daily assets is queued or running: one downstream_job run (metrics, reports) for the whole batch.",
)
def downstream_after_daily_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    """The cursor is the event-log id of the latest daily-asset materialization already followed."""
    keys = daily_asset_keys(context.repository_def)
    latest = max((r.asset_entry.last_materialization_record.storage_id
                  for r in context.instance.get_asset_records(keys)
                  if r.asset_entry.last_materialization_record is not None), default=0)
    seen = int(context.cursor or 0)
    if latest <= seen:
        return dg.SkipReason("no new materialization of the daily assets")
    busy = runs_in_flight(context.instance, keys)
    if busy:
        return dg.SkipReason(f"new daily materializations; waiting for {len(busy)} queued or running run(s) "
                             f"({', '.join(busy[:3])}) to finish the batch")
    context.log.info(f"daily assets materialized up to event {latest}: requesting {downstream_job.name}")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"downstream-{latest}",
                                    tags={"tracking/after_event": str(latest), TRIGGER_TAG: "daily_materialized"})],
        cursor=str(latest))
