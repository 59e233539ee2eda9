"""`python -m tracking_pipeline backfill --start --end`: the whole chain for a range, recorded in DAGSTER_HOME.

The daily assets run as single-run backfills (one run per chunk of trading days, tagged with the partition
range), then the unpartitioned downstream assets. Chunks already fully materialized are skipped, so a killed
backfill resumes where it stopped; `--force` recomputes them.

A range of more than one chunk runs each chunk, and then the downstream assets, in a process of its own: what a
chunk's steps leave allocated (DuckDB, Arrow and malloc pools do not return every page) is not carried into the
next, so the peak memory of a 20-year backfill is that of one chunk. A one-chunk range (the nightly update) runs
in this process.
"""

from __future__ import annotations

import argparse
import ctypes
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from tracking_pipeline.trading_calendar import sessions_between

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
DEFAULT_CHUNK = 2000
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _chunks(days: pd.DatetimeIndex, size: int) -> list[tuple[str, str]]:
    return [(days[i].date().isoformat(), days[min(i + size, len(days)) - 1].date().isoformat())
            for i in range(0, len(days), size)]


@dataclass(frozen=True)
class RunOutcome:
    """What the CLI reports of one run: whether it and its ERROR checks passed, and what failed."""

    success: bool
    run_id: str
    failures: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)


def _execute(defs: Any, job_name: str, tags: dict[str, str]) -> RunOutcome:
    import dagster as dg

    from tracking_pipeline.defs.executors import execute_job

    result = execute_job(defs, job_name, dg.DagsterInstance.get(), tags, QUIET)  # on the configured executor
    failures = []
    if not result.success:
        for event in result.all_events:
            if event.is_step_failure:
                error = event.step_failure_data.error
                failures.append(f"{event.step_key}: {error.message.strip() if error else 'failed'}")
    return RunOutcome(result.success, result.run_id, failures, _failed_error_checks(result))


def _child(build: Callable[[], Any], job_name: str, tags: dict[str, str], conn: Any) -> None:
    """Body of a chunk's process: dies with its parent (a killed backfill leaves no orphan writing), runs the job,
    sends the outcome back."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    conn.send(_execute(build(), job_name, tags))
    conn.close()


def _execute_in_child(build: Callable[[], Any], job_name: str, tags: dict[str, str]) -> RunOutcome:
    """Run the job in a fresh (spawned) process, so the memory its steps leave is returned when it exits."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(build, job_name, tags, sender), name=f"backfill {job_name}")
    process.start()
    sender.close()
    try:
        outcome = receiver.recv()
    except EOFError:
        outcome = None
    process.join()
    if outcome is None:
        return RunOutcome(False, "-", [f"{job_name}: its process exited with code {process.exitcode} before "
                                       "reporting (killed, e.g. out of memory?)"])
    return outcome


def backfill(start: str, end: str, chunk: int = DEFAULT_CHUNK, force: bool = False, out=sys.stdout,
             build: Callable[[], Any] | None = None) -> int:
    """Run the chain over [start, end]; returns a process exit code and prints progress. `build` makes the code
    location's Definitions (default `build_definitions`; a picklable function, as chunk processes call it too)."""
    import dagster as dg

    from tracking_pipeline.definitions import build_definitions

    build = build or build_definitions
    defs = build()
    instance = dg.DagsterInstance.get()
    days = sessions_between(start, end)
    if len(days) == 0:
        print(f"error: no NYSE trading days between {start} and {end}", file=sys.stderr)
        return 2
    partitions = defs.resolve_job_def("daily_assets_job").partitions_def
    valid = set(partitions.get_partition_keys(dynamic_partitions_store=instance))
    unknown = [d.date().isoformat() for d in days if d.date().isoformat() not in valid]
    if unknown:
        keys = sorted(valid)
        print(f"error: {unknown[0]} is not a daily partition: partitions run from {keys[0]} to {keys[-1]} "
              "(TRACKING_PARTITIONS_START / TRACKING_PARTITIONS_END; by default the lake's first day with prices to "
              "the latest NYSE session whose close has passed)", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    failures: list[str] = []
    chunks = _chunks(days, chunk)
    isolate = len(chunks) > 1

    def run(job_name: str, label: str, tags: dict[str, str] | None = None, own_process: bool = False) -> bool:
        t = time.monotonic()
        outcome = (_execute_in_child(build, job_name, tags or {}) if own_process
                   else _execute(defs, job_name, tags or {}))
        status = "ok" if outcome.success and not outcome.failed_checks else "FAILED"
        print(f"[{time.monotonic() - t0:7.1f}s] {label}: {status} ({time.monotonic() - t:.1f}s, run {outcome.run_id})",
              file=out, flush=True)
        failures.extend(outcome.failures + outcome.failed_checks)
        return outcome.success

    if not run("portfolio_registry_job", "register portfolios"):
        return _finish(failures, out)
    done = _materialized(instance, defs)
    for i, (lo, hi) in enumerate(chunks, 1):
        keys = {d.date().isoformat() for d in sessions_between(lo, hi)}
        if not force and keys <= done:
            print(f"[{time.monotonic() - t0:7.1f}s] daily assets {lo}..{hi}: already materialized, skipped",
                  file=out, flush=True)
            continue
        label = f"daily assets {lo}..{hi} ({len(keys)} trading days, chunk {i})"
        if not run("daily_assets_job", label, {RANGE_START_TAG: lo, RANGE_END_TAG: hi}, isolate):
            return _finish(failures, out)
    run("downstream_job", "metrics and reports", own_process=isolate)
    return _finish(failures, out)


def _materialized(instance, defs) -> set[str]:  # noqa: ANN001 - dagster types
    """Partitions materialized for every daily asset (the intersection)."""
    job = defs.resolve_job_def("daily_assets_job")
    keys = job.asset_layer.executable_asset_keys
    sets = [set(instance.get_materialized_partitions(key)) for key in keys]
    return set.intersection(*sets) if sets else set()


def _failed_error_checks(result) -> list[str]:  # noqa: ANN001
    out = []
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            evaluation = getattr(data, "evaluation", data)
            if not evaluation.passed and evaluation.severity.value == "ERROR":
                detail = {k: v.value for k, v in evaluation.metadata.items()}
                out.append(f"check {evaluation.check_name} on {evaluation.asset_key.to_user_string()}: {detail}")
    return out


def _finish(failures: list[str], out) -> int:  # noqa: ANN001
    if failures:
        print("backfill FAILED:", file=sys.stderr)
        for failure in failures:
            print(f"  - {failure}", file=sys.stderr)
        return 1
    print("backfill complete", file=out)
    return 0


def summary(out=sys.stdout) -> None:
    """Where the warehouse is and one line per portfolio (last NAV of each variant)."""
    from tracking_pipeline.settings import load_settings
    from tracking_pipeline.warehouse import open_warehouse

    wh = open_warehouse(load_settings().warehouse)
    print(f"warehouse: {wh.describe()}", file=out)
    frame = wh.query(
        "SELECT d.name, n.variant, MIN(n.trade_date) AS first_day, MAX(n.trade_date) AS last_day, "
        "ARG_MAX(n.nav, n.trade_date) AS last_nav, COUNT(*) AS days FROM portfolio_daily_nav n "
        "JOIN portfolio_definitions d ON d.portfolio_id = n.portfolio_id GROUP BY d.name, n.variant "
        "ORDER BY d.name, n.variant") if wh.dialect == "duckdb" else wh.query(
        "SELECT d.name, n.variant, MIN(n.trade_date) AS first_day, MAX(n.trade_date) AS last_day, "
        "(ARRAY_AGG(n.nav ORDER BY n.trade_date DESC))[1] AS last_nav, COUNT(*) AS days FROM portfolio_daily_nav n "
        "JOIN portfolio_definitions d ON d.portfolio_id = n.portfolio_id GROUP BY d.name, n.variant "
        "ORDER BY d.name, n.variant")
    for name, rows in frame.groupby("name", sort=True):
        parts = ", ".join(f"{r.variant} {r.last_nav:,.2f}" for r in rows.itertuples())
        first = rows["first_day"].min().date()
        last = rows["last_day"].max().date()
        print(f"  {name}: {first}..{last}, {int(rows['days'].max())} days, last NAV {parts}", file=out)
    from tracking_pipeline.reporting.performance import index_location
    print(f"performance report: {index_location(load_settings().reports)} (interactive: make dashboard)", file=out)


def main(argv: Sequence[str] | None = None, build: Callable[[], Any] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tracking_pipeline", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    bf = sub.add_parser("backfill", help="run the whole chain for a date range")
    bf.add_argument("--start", required=True, help="first day, YYYY-MM-DD")
    bf.add_argument("--end", required=True, help="last day, YYYY-MM-DD")
    bf.add_argument("--chunk", type=int, default=DEFAULT_CHUNK, help="trading days per run (default %(default)s)")
    bf.add_argument("--force", action="store_true", help="recompute chunks already materialized")
    sub.add_parser("summary", help="print the warehouse location and a line per portfolio")
    args = parser.parse_args(argv)
    os.environ.setdefault("DAGSTER_HOME", os.path.abspath(".dagster_home"))
    from tracking_pipeline.defs.executors import batch_events

    batch_events()
    os.makedirs(os.environ["DAGSTER_HOME"], exist_ok=True)
    if args.command == "backfill":
        for value in (args.start, args.end):
            try:
                pd.Timestamp(value)
            except ValueError:
                parser.error(f"not a date (YYYY-MM-DD): {value!r}")
        from tracking_pipeline.defs.executors import ExecutorConfigError

        try:
            code = backfill(args.start, args.end, args.chunk, args.force, build=build)
        except ExecutorConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if code == 0:
            summary()
        return code
    summary()
    return 0
