"""The history a daily step needs, declared to Dagster and checked before anything is computed.

Every trading-day asset declares its time dependencies on its `AssetDep`s. A path-dependent asset (NAV, overlay
decisions, recursive indicators) depends on its own previous partition (`TimeWindowPartitionMapping(-1, -1)`):
Dagster draws it in the asset graph and the backfill daemon runs such partitions in order. A windowed input (betas
read the last 90 sessions of prices) is a same-day dependency, and the asset's metadata `tracking/lookback_sessions`
gives the window ({"price_data": 90}): a look-back *mapping* would make Dagster expand an asset backfill of a few
days from the UI to every downstream day whose window sees them (measured: a 3-day backfill became five years of
asset_performance_metrics partitions, most without prices yet), and Dagster refuses differing metadata on the
dependencies of one upstream asset, so the window lives on the downstream asset. `require_history` makes both binding for every
entry point (UI materialize, UI or CLI backfill, schedule, sensor): a step whose required partitions are not all
materialized fails before it computes, naming the missing days and how to fill them. A partition materialized by
this rule was therefore computed on a complete history, and so were the ones it depends on.
"""

from __future__ import annotations

import dagster as dg
import pandas as pd
from dagster import AssetExecutionContext

from tracking_pipeline.trading_calendar import nyse_sessions

PREVIOUS_DAY = dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)
LOOKBACK_KEY = "tracking/lookback_sessions"
MEMO_SIZE = 256
BACKFILL_HINT = ("Fill them first: `python -m tracking_pipeline backfill --start {first} --end {end}`, or in the UI "
                 "launch daily_assets_job (Jobs -> daily_assets_job -> Backfill) from {first}; the nightly schedule "
                 "fills missing days from the first one at its next tick.")


def lookbacks(**sessions: int) -> dict[str, dict[str, int]]:
    """Asset metadata declaring windowed inputs: upstream asset -> trading days before the range it reads (checked
    by `require_history`; the dependency itself maps the same days, see the module docstring)."""
    return {LOOKBACK_KEY: dict(sessions)}


def previous_day(asset: str | dg.AssetKey) -> dg.AssetDep:
    """A path-dependent asset's dependency on its own previous partition (D continues from D-1)."""
    return dg.AssetDep(asset, partition_mapping=PREVIOUS_DAY)


def contiguous_runs(keys: list[str], ordered: list[str]) -> list[tuple[str, str, int]]:
    """`keys` (a subset of the ordered partition keys) as (first, last, count) runs of consecutive partitions."""
    position = {key: i for i, key in enumerate(ordered)}
    runs: list[tuple[str, str, int]] = []
    for key in sorted(keys, key=position.__getitem__):
        if runs and position[key] == position[runs[-1][1]] + 1:
            runs[-1] = (runs[-1][0], key, runs[-1][2] + 1)
        else:
            runs.append((key, key, 1))
    return runs


def describe_runs(runs: list[tuple[str, str, int]], limit: int = 5) -> str:
    shown = [first if count == 1 else f"{first}..{last} ({count} trading days)" for first, last, count in runs]
    more = f" and {len(runs) - limit} more gap(s)" if len(runs) > limit else ""
    return ", ".join(shown[:limit]) + more


def missing_history(context: AssetExecutionContext) -> dict[dg.AssetKey, list[str]]:
    """Partitions the step's range depends on (its declared partitioned deps) that are not materialized; for the
    asset itself only those before the range (the range is what the step computes)."""
    key = context.asset_key
    partitions = context.assets_def.partitions_def
    key_range = context.partition_key_range
    subset = partitions.empty_subset().with_partition_key_range(partitions, key_range)
    graph = context.job_def.asset_layer.asset_graph
    windows = context.assets_def.metadata_by_key[key].get(LOOKBACK_KEY) or {}
    windows = getattr(windows, "value", windows)
    out: dict[dg.AssetKey, list[str]] = {}
    for dep in context.assets_def.specs_by_key[key].deps:
        upstream = dep.asset_key
        if not graph.has(upstream) or graph.get(upstream).partitions_def != partitions:
            continue
        sessions = windows.get(upstream.to_user_string())
        mapping = dg.TimeWindowPartitionMapping(start_offset=-int(sessions)) if sessions else \
            dep.partition_mapping or dg.IdentityPartitionMapping()
        required = mapped_keys(mapping, partitions, key_range) if _on_sessions(mapping, partitions) else \
            mapping.get_upstream_mapped_partitions_result_for_partitions(
                subset, partitions, partitions).partitions_subset.get_partition_keys()
        if upstream == key:
            required = [k for k in required if k < key_range.start]
        if not required:
            continue
        done = context.instance.get_materialized_partitions(upstream) if upstream == key \
            else _materialized(context, upstream)
        missing = [k for k in required if k not in done]
        if missing:
            out[upstream] = missing
    return out


def _on_sessions(mapping: dg.PartitionMapping, partitions: dg.PartitionsDefinition) -> bool:
    """Whether `mapped_keys` applies: an identity or plain offset mapping within daily YYYY-MM-DD partitions."""
    plain = isinstance(mapping, dg.IdentityPartitionMapping) or (
        isinstance(mapping, dg.TimeWindowPartitionMapping) and not mapping.allow_nonexistent_upstream_partitions)
    return plain and isinstance(partitions, dg.TimeWindowPartitionsDefinition) and partitions.fmt == "%Y-%m-%d"


def mapped_keys(mapping: dg.PartitionMapping, partitions: dg.TimeWindowPartitionsDefinition,
                key_range: dg.PartitionKeyRange) -> list[str]:
    """The partitions `mapping` maps the range to, counted on the NYSE sessions (the trading-day partitions are
    those sessions from the first one): what Dagster's mapping gives, which steps window by window over the
    excluded holidays (15 ms a step for a 252-session look-back, ~0.3 s of a nightly run)."""
    start, end = (getattr(mapping, "start_offset", 0), getattr(mapping, "end_offset", 0))
    sessions = nyse_sessions()
    keys = sessions[sessions >= pd.Timestamp(partitions.get_first_partition_key())]
    lo = int(keys.searchsorted(pd.Timestamp(key_range.start))) + start
    hi = int(keys.searchsorted(pd.Timestamp(key_range.end))) + end
    return list(keys[max(lo, 0):max(hi + 1, 0)].strftime("%Y-%m-%d"))


_MATERIALIZED: dict[tuple[str, dg.AssetKey], frozenset[str]] = {}


def _materialized(context: AssetExecutionContext, key: dg.AssetKey) -> frozenset[str]:
    """The materialized partitions of an upstream `key`, read once per run: the steps that ask for it all run
    after the one step of the run that writes it (the asset's own days are read afresh: its step writes them)."""
    cache_key = (context.run.run_id, key)
    if cache_key not in _MATERIALIZED:
        if len(_MATERIALIZED) > MEMO_SIZE:
            _MATERIALIZED.clear()
        _MATERIALIZED[cache_key] = frozenset(context.instance.get_materialized_partitions(key))
    return _MATERIALIZED[cache_key]


def require_history(context: AssetExecutionContext) -> None:
    """Fail the step, before it computes anything, when a partition it depends on is not materialized."""
    missing = missing_history(context)
    if not missing:
        return
    ordered = context.assets_def.partitions_def.get_partition_keys()
    parts = [f"{upstream.to_user_string()} {describe_runs(contiguous_runs(keys, ordered))}"
             for upstream, keys in sorted(missing.items(), key=lambda item: item[0].to_user_string())]
    first = min(k for keys in missing.values() for k in keys)
    raise dg.Failure(description=(
        f"{context.asset_key.to_user_string()} for {context.partition_key_range.start}.."
        f"{context.partition_key_range.end} needs history that is not materialized: {'; '.join(parts)}. Nothing "
        "was computed, so no partition holds values from an incomplete history. "
        + BACKFILL_HINT.format(first=first, end=context.partition_key_range.end)),
        metadata={"missing_partitions": dg.MetadataValue.json(
            {k.to_user_string(): [list(r[:2]) for r in contiguous_runs(v, ordered)] for k, v in missing.items()})},
    )
