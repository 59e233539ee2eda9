"""Figure 8: the real pipeline at scale: `python -m tracking_pipeline backfill` over a generated 20-year lake
(scripts/build_scale_lake.py) vs the no-op floor at the same size, then the nightly update, on both paths.

Per size (a multiple of 2,000 stocks and 200 portfolios x 3 variants; 20 years of sessions always) and per path:

- **production**: PostgreSQL Dagster instance (fresh database, DAGSTER_EVENT_BATCH_SIZE as the CLI sets it) and
  PostgreSQL warehouse (another fresh database);
- **embedded**: SQLite instance (the project's dagster.yaml) and a DuckDB warehouse file;

each graph (real, and the no-op floor built from the live Definitions, _common.noop_definitions) gets a fresh
instance and warehouse and runs the CLI's own code (_backfill_child.py) over every session but the lake's last,
then the nightly update: that last session + downstream (`backfill --start LAST --end LAST`), reading its
look-backs from the warehouse. Printed: wall, CPU and peak RSS of every process (wait4; for the production path
also the CPU the PostgreSQL server spent, from the postmaster's reaped children), per-asset step times, the peak RSS
while each step ran, rows stored per table, the ratios to the floor with the goals' verdicts and, where one is
missed, the steps that hold it. With `--workers 1,2` the production backfill is also run on the Celery executor (TRACKING_EXECUTOR=celery,
Redis broker) with that many worker processes, each measured with wait4.

    python benchmarks/bench_pipeline_scale.py [--quick] [--sizes 0.25,0.5,1] [--paths production,embedded]
        [--chunk N] [--workers 1,2] [--repeat N] [--keep-lakes DIR]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (PYTHON, ROOT, ChildResult, clean_env, dagster_home, figure, graph_summary,  # noqa: E402
                     header, job_seconds, load_average, postgres_database, postgres_problem, run_child,
                     step_peak_rss, step_seconds, workdir)

CHILD = Path(__file__).resolve().parent / "_backfill_child.py"
BUILD = ROOT / "scripts" / "build_scale_lake.py"
QUICK = ["--tickers", "12", "--years", "0.25", "--portfolios", "2", "--trades-per-ticker-year", "8"]
BACKFILL_GOAL, NIGHTLY_GOAL, RSS_GOAL_MIB = 1.5, 1.3, 4096.0
REDIS_URL = os.environ.get("TRACKING_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


@dataclass
class Measured:
    """One graph on one path: the backfill and nightly child processes, and the rows stored after each."""

    backfill: ChildResult
    nightly: list[ChildResult]
    rows: dict[str, int]
    server_cpu_s: dict[str, float] = field(default_factory=dict)


def lake_days(lake: Path) -> tuple[str, str, str]:
    """First session, the one before the last, and the last session with prices (SPY's file)."""
    import pandas as pd

    dates = pd.read_parquet(lake / "prices" / "spy.parquet", columns=["date"])["date"]
    days = sorted(pd.to_datetime(dates).dt.date.astype(str))
    return days[0], days[-2], days[-1]


def postmaster_cpu() -> float | None:
    """CPU seconds of the local PostgreSQL server so far: the postmaster's own and its reaped backends' (the
    backends of a finished run have exited). None when its pid file is not readable."""
    try:
        import psycopg2

        from _common import POSTGRES_ADMIN_URL

        with psycopg2.connect(POSTGRES_ADMIN_URL) as conn, conn.cursor() as cur:
            cur.execute("SHOW data_directory")
            pid = int((Path(cur.fetchone()[0]) / "postmaster.pid").read_text().split()[0])
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, ImportError, Exception):  # noqa: BLE001 - an optional figure
        return None


def row_counts(warehouse: str) -> dict[str, int]:
    """Rows per declared table of the warehouse (the tables the run stored)."""
    from tracking_pipeline.warehouse import TABLES, open_warehouse

    wh = open_warehouse(warehouse)
    with wh.session():
        return {name: int(wh.scalar(f"SELECT COUNT(*) FROM {name}")) for name in TABLES}


def measure_graph(graph: str, path: str, lake: Path, days: tuple[str, str, str], chunk: int, repeat: int,
                  root: Path) -> Measured:
    """Backfill [first, second-last] and `repeat` nightly runs of the last session for one graph and path."""
    root.mkdir()
    if path == "production":
        with postgres_database() as instance_url, postgres_database() as warehouse_url:
            return _measure(graph, lake, days, chunk, repeat, root, dagster_home(root, instance_url), warehouse_url)
    return _measure(graph, lake, days, chunk, repeat, root, dagster_home(root), str(root / "warehouse.duckdb"))


def _env(lake: Path, root: Path, home: Path, warehouse: str, **extra: str) -> dict[str, str]:
    return clean_env(DAGSTER_HOME=str(home), TRACKING_LAKE=str(lake), TRACKING_WAREHOUSE=warehouse,
                     TRACKING_REPORTS=str(root / "reports"), TRACKING_LAKE_CACHE=str(root / "lake_cache"), **extra)


def _measure(graph: str, lake: Path, days: tuple[str, str, str], chunk: int, repeat: int, root: Path, home: Path,
             warehouse: str) -> Measured:
    env = _env(lake, root, home, warehouse)
    first, before_last, last = days
    server = {}
    cpu0 = postmaster_cpu() if warehouse.startswith("postgres") else None
    backfill = run_child([PYTHON, str(CHILD), graph, "backfill", "--start", first, "--end", before_last,
                          "--chunk", str(chunk)], env=env)
    cpu1 = postmaster_cpu() if cpu0 is not None else None
    nightly = []
    for _ in range(repeat):
        nightly.append(run_child([PYTHON, str(CHILD), graph, "backfill", "--start", last, "--end", last, "--force"],
                                 env=env))
    cpu2 = postmaster_cpu() if cpu1 is not None else None
    if cpu0 is not None and cpu1 is not None and cpu2 is not None:
        server = {"backfill": cpu1 - cpu0, "nightly": (cpu2 - cpu1) / max(repeat, 1)}
    return Measured(backfill, nightly, row_counts(warehouse), server)


def describe(result: ChildResult) -> str:
    jobs = ", ".join(f"{k} {v:.1f} s" for k, v in job_seconds(result.stdout).items())
    return (f"wall {result.wall_s:.1f} s, CPU {result.cpu_s:.1f} s, peak RSS {result.peak_rss_mib:.0f} MiB "
            f"({jobs})")


def steps_line(result: ChildResult) -> str:
    steps = sorted(step_seconds(result.stdout).items(), key=lambda kv: -kv[1])
    return ", ".join(f"{k} {v:.1f} s" for k, v in steps)


def memory_line(result: ChildResult, top: int = 6) -> str:
    """The steps during which the process's resident set was largest, and how much each grew it (which step holds
    the peak RSS; freed memory is often kept by the allocator, so a later step can inherit an earlier one's peak)."""
    steps = sorted(step_peak_rss(result.stdout).items(), key=lambda kv: -kv[1][0])[:top]
    return ", ".join(f"{k} {peak:,.0f} MiB (+{grew:,.0f})" for k, (peak, grew) in steps)


def holders(real: ChildResult, noop: ChildResult, top: int = 4) -> str:
    """The steps whose time exceeds the floor's most (where a missed ratio is held)."""
    r, n = step_seconds(real.stdout), step_seconds(noop.stdout)
    extra = sorted(((k, v - n.get(k, 0.0), v, n.get(k, 0.0)) for k, v in r.items()), key=lambda x: -x[1])[:top]
    return ", ".join(f"{k} +{d:.1f} s ({v:.1f} s vs floor {f:.1f} s)" for k, d, v, f in extra)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def report(label: str, path: str, runs: dict[str, Measured]) -> dict[str, float]:
    real, noop = runs["real"], runs["noop"]
    out: dict[str, float] = {}
    for graph in ("real", "noop"):
        m = runs[graph]
        server = f", PostgreSQL server CPU {m.server_cpu_s['backfill']:.1f} s" if m.server_cpu_s else ""
        figure(f"pipeline {label} {path} backfill {graph}", describe(m.backfill) + server)
        print(f"  {graph} steps: {steps_line(m.backfill)}")
        if graph == "real":
            print(f"  {graph} peak RSS while each step ran: {memory_line(m.backfill)}")
    print("  rows stored: " + ", ".join(f"{k} {v:,}" for k, v in sorted(real.rows.items(), key=lambda kv: -kv[1])
                                        if v))
    ratio = real.backfill.wall_s / noop.backfill.wall_s
    cpu_ratio = real.backfill.cpu_s / noop.backfill.cpu_s
    verdict = "met" if ratio <= BACKFILL_GOAL else f"MISSED, held by {holders(real.backfill, noop.backfill)}"
    figure(f"pipeline {label} {path} backfill ratio",
           f"{ratio:.2f}x the floor by wall time, {cpu_ratio:.2f}x by CPU time; goal <= {BACKFILL_GOAL}x {verdict}")
    if real.nightly and noop.nightly:
        for graph in ("real", "noop"):
            m = runs[graph]
            last = m.nightly[-1]
            server = f", PostgreSQL server CPU {m.server_cpu_s['nightly']:.1f} s" if m.server_cpu_s else ""
            figure(f"pipeline {label} {path} nightly {graph}",
                   f"median of {len(m.nightly)}: wall {median([r.wall_s for r in m.nightly]):.1f} s, CPU "
                   f"{median([r.cpu_s for r in m.nightly]):.1f} s, peak RSS {max(r.peak_rss_mib for r in m.nightly):.0f}"
                   f" MiB ({', '.join(f'{k} {v:.1f} s' for k, v in job_seconds(last.stdout).items())}){server}")
            print(f"  {graph} nightly steps: {steps_line(last)}")
            if graph == "real":
                print(f"  {graph} nightly peak RSS while each step ran: {memory_line(last)}")
        n_ratio = median([r.wall_s for r in real.nightly]) / median([r.wall_s for r in noop.nightly])
        n_verdict = "met" if n_ratio <= NIGHTLY_GOAL else \
            f"MISSED, held by {holders(real.nightly[-1], noop.nightly[-1])}"
        figure(f"pipeline {label} {path} nightly ratio",
               f"{n_ratio:.2f}x the floor by wall time; goal <= {NIGHTLY_GOAL}x {n_verdict}")
        out["nightly_ratio"] = n_ratio
    out.update(ratio=ratio, wall=real.backfill.wall_s, floor=noop.backfill.wall_s,
               rss=max([real.backfill.peak_rss_mib] + [r.peak_rss_mib for r in real.nightly]))
    return out


def celery_backfill(lake: Path, days: tuple[str, str, str], chunk: int, workers: int, root: Path) -> None:
    """The production backfill (real graph) on the Celery executor with `workers` worker processes."""
    root.mkdir()
    with postgres_database() as instance_url, postgres_database() as warehouse_url:
        home = dagster_home(root, instance_url)
        env = _env(lake, root, home, warehouse_url, TRACKING_EXECUTOR="celery", TRACKING_CELERY_BROKER=REDIS_URL)
        procs = [subprocess.Popen([PYTHON, "-m", "celery", "-A", "tracking_pipeline.celery_app", "worker", "-Q",
                                   "dagster", "--concurrency", "1", "--prefetch-multiplier", "1", "-n",
                                   f"bench{i}@%h", "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
                                  env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True) for i in range(workers)]
        try:
            _wait_for_workers(workers)
            result = run_child([PYTHON, str(CHILD), "real", "backfill", "--start", days[0], "--end", days[1],
                                "--chunk", str(chunk)], env=env)
        finally:
            usage = [_stop(p) for p in procs]
    figure(f"pipeline celery {workers} worker{'s' if workers > 1 else ''}",
           f"orchestrator {describe(result)}; workers: " + "; ".join(
               f"CPU {cpu:.1f} s, peak RSS {rss:.0f} MiB" for cpu, rss in usage))
    print(f"  celery steps: {steps_line(result)}")


def _wait_for_workers(count: int) -> None:
    from celery import Celery

    app = Celery(broker=REDIS_URL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if len(app.control.ping(timeout=1.0) or []) >= count:
            return
    raise RuntimeError(f"{count} Celery workers did not answer within 120 s (broker {REDIS_URL})")


def _stop(proc: subprocess.Popen) -> tuple[float, float]:
    """SIGTERM the worker's process group; (CPU seconds, peak RSS MiB) of the worker and its pool children."""
    os.killpg(proc.pid, signal.SIGTERM)
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0


def step_child(asset: str, start: str, end: str) -> int:
    """In a child: one daily asset of the CLI's daily job over [start, end] (one range run), on the env's
    instance, warehouse and lake."""
    import warnings

    warnings.filterwarnings("ignore")
    import dagster as dg

    from tracking_pipeline.cli import QUIET, RANGE_END_TAG, RANGE_START_TAG
    from tracking_pipeline.definitions import build_definitions

    job = build_definitions().resolve_job_def("daily_assets_job")
    result = job.execute_in_process(instance=dg.DagsterInstance.get(), asset_selection=[dg.AssetKey(asset)],
                                    tags={RANGE_START_TAG: start, RANGE_END_TAG: end}, run_config=QUIET,
                                    raise_on_error=False)
    return 0 if result.success else 1


def steps_at_scale(lake: Path, chunk: int, assets: list[str], root: Path) -> None:
    """The heaviest daily steps alone on a full-size lake (embedded path), each range run in its own measured
    process: price_data, then each of `assets`, over the whole history in CLI chunks (as the CLI runs them: a
    later chunk reads the stored history where the asset does)."""
    from tracking_pipeline.cli import _chunks
    from tracking_pipeline.trading_calendar import sessions_between

    first, before_last, _ = lake_days(lake)
    root.mkdir()
    env = _env(lake, root, dagster_home(root), str(root / "warehouse.duckdb"))
    chunks = _chunks(sessions_between(first, before_last), chunk)
    for asset in ["price_data", *assets]:
        for lo, hi in chunks:
            result = run_child([PYTHON, __file__, "--step-child", asset, lo, hi], env=env)
            figure(f"pipeline step {asset} {lo}..{hi}", f"wall {result.wall_s:.1f} s, CPU {result.cpu_s:.1f} s, "
                                                        f"peak RSS {result.peak_rss_mib:.0f} MiB")


def build_lake(args_: list[str], out: Path) -> None:
    result = run_child([PYTHON, str(BUILD), "--out", str(out), *args_])
    print(result.stdout.strip() + f" [builder: wall {result.wall_s:.1f} s, peak RSS {result.peak_rss_mib:.0f} MiB]")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny lake (12 stocks, 1 year), embedded path only")
    parser.add_argument("--sizes", default="0.25,0.5,1", help="multiples of 2,000 stocks and 200 portfolios")
    parser.add_argument("--paths", default="production,embedded")
    parser.add_argument("--chunk", type=int, default=1000, help="trading days per daily run (CLI --chunk)")
    parser.add_argument("--workers", default="", help="Celery worker counts to run the production backfill with")
    parser.add_argument("--repeat", type=int, default=1, help="nightly runs per graph (median reported)")
    parser.add_argument("--keep-lakes", type=Path, help="build (or reuse) the lakes under this folder")
    parser.add_argument("--years", type=float, default=20.0,
                        help="years of sessions (the goals are for 20; fewer only to measure within a time budget)")
    parser.add_argument("--steps-only", default="",
                        help="instead: price_data and these daily assets alone, in chunks, largest size")
    parser.add_argument("--step-child", nargs=3, metavar=("ASSET", "START", "END"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.step_child:
        return step_child(*args.step_child)
    paths = ["embedded"] if args.quick else args.paths.split(",")
    if "production" in paths and (problem := postgres_problem()):
        print(f"production path skipped: {problem}")
        paths.remove("production")
    sizes = [("quick", QUICK)] if args.quick else [
        (f"{float(s):g}x", ["--scale", s, "--years", f"{args.years:g}"]) for s in args.sizes.split(",")]
    header("pipeline at scale: CLI backfill of a generated 20-year lake and the nightly update vs the no-op floor")
    print(graph_summary())
    print(f"daily runs in chunks of {args.chunk} trading days (CLI --chunk); "
          f"{'quick lake' if args.quick else f'{args.years:g} years of sessions'}")
    summary: dict[tuple[str, str], dict[str, float]] = {}
    with workdir("bench_pipeline_scale_") as tmp:
        if args.steps_only:
            label, build_args = sizes[-1]
            lake = (args.keep_lakes or tmp) / f"lake_{label}_{args.years:g}y"
            if not (lake / "prices" / "spy.parquet").is_file():
                build_lake(build_args, lake)
            print(f"## {label}: daily steps alone, embedded path, load average {load_average()}")
            steps_at_scale(lake, args.chunk, args.steps_only.split(","), tmp / "steps")
            return 0
        for label, build_args in sizes:
            lake = (args.keep_lakes or tmp) / f"lake_{label}_{args.years:g}y"
            if not (lake / "prices" / "spy.parquet").is_file():
                build_lake(build_args, lake)
            days = lake_days(lake)
            print(f"## {label}: backfill {days[0]}..{days[1]}, nightly {days[2]}")
            for path in paths:
                runs = {}
                for graph in ("noop", "real"):
                    print(f"load average before {label} {path} {graph}: {load_average()}", flush=True)
                    runs[graph] = measure_graph(graph, path, lake, days, args.chunk, args.repeat,
                                                tmp / f"{label}_{path}_{graph}")
                summary[(label, path)] = report(label, path, runs)
            for workers in [int(w) for w in args.workers.split(",") if w]:
                print(f"load average before {label} celery {workers}: {load_average()}", flush=True)
                celery_backfill(lake, days, args.chunk, workers, tmp / f"{label}_celery_{workers}")
    rss = max(v["rss"] for v in summary.values())
    largest = sizes[-1][0]
    verdict = ("met" if rss < RSS_GOAL_MIB else "MISSED") if largest == "1x" else "not judged (1x not measured)"
    figure("pipeline peak RSS", f"{rss:.0f} MiB (largest of any real-graph process, largest size {largest}); goal < "
                                f"{RSS_GOAL_MIB:.0f} MiB at 1x: {verdict}")
    for path in paths:
        measured = [(float(label[:-1]), v) for (label, p), v in summary.items() if p == path and label != "quick"]
        if len(measured) > 1:
            (s0, a), *rest = sorted(measured, key=lambda x: x[0])
            figure(f"pipeline growth {path}", ", ".join(
                f"{s / s0:g}x size -> {v['wall'] / a['wall']:.2f}x wall ({(v['wall'] - v['floor']) / max(a['wall'] - a['floor'], 1e-9):.2f}x above the floor), "
                f"{v['rss'] / a['rss']:.2f}x RSS" for s, v in rest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
