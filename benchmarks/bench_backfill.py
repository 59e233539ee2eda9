"""Figure 1: the whole demo period through every daily asset vs the same graph with no-op bodies.

Each run is `python -m tracking_pipeline backfill` (the CLI's own code, see _backfill_child.py) in a fresh
child process with a fresh DAGSTER_HOME and DuckDB warehouse; wall time and peak RSS are measured with wait4.
Instances: SQLite (the project's dagster.yaml; DAGSTER_EVENT_BATCH_SIZE as the CLI sets it) and Postgres
instance storage (dagster-postgres, a fresh database on localhost, same event batching). The no-op graph is
built from the live Definitions, so assets added later are measured without editing this script.

    python benchmarks/bench_backfill.py [--quick] [--repeat N] [--no-postgres]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (DEMO_END, DEMO_START, PYTHON, ChildResult, clean_env, dagster_home, figure,  # noqa: E402
                     graph_summary, header, job_seconds, load_average, postgres_database, postgres_problem,
                     run_child, step_seconds, workdir)

CHILD = Path(__file__).resolve().parent / "_backfill_child.py"
QUICK_END = "2018-01-31"
GOAL = 1.5


def backfill_once(graph: str, start: str, end: str, postgres: bool) -> ChildResult:
    """One full CLI backfill of `graph` ('real' or 'noop') in a fresh instance and warehouse."""
    with workdir("bench_backfill_") as root:
        if postgres:
            with postgres_database() as url:
                return _run(graph, start, end, root, dagster_home(root, url))
        return _run(graph, start, end, root, dagster_home(root))


def _run(graph: str, start: str, end: str, root: Path, home: Path) -> ChildResult:
    env = clean_env(DAGSTER_HOME=str(home), TRACKING_WAREHOUSE=str(root / "warehouse.duckdb"),
                    TRACKING_REPORTS=str(root / "reports"), TRACKING_LAKE_CACHE=str(root / "lake_cache"))
    return run_child([PYTHON, str(CHILD), graph, "backfill", "--start", start, "--end", end], env=env)


def describe(result: ChildResult) -> str:
    jobs = job_seconds(result.stdout)
    parts = ", ".join(f"{k} {v:.1f} s" for k, v in jobs.items())
    return f"wall {result.wall_s:.1f} s, CPU {result.cpu_s:.1f} s, peak RSS {result.peak_rss_mib:.0f} MiB ({parts})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{DEMO_START}..{QUICK_END} only (smoke test)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per graph and instance (median reported)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite instance only")
    args = parser.parse_args(argv)
    start, end = DEMO_START, QUICK_END if args.quick else DEMO_END
    header(f"backfill {start}..{end}: real graph vs no-op floor")
    print(graph_summary())
    instances = ["sqlite"]
    problem = None if args.no_postgres else postgres_problem()
    if not args.no_postgres and problem is None:
        instances.append("postgres")
    elif problem:
        print(f"postgres instance skipped: {problem}")
    for instance in instances:
        runs: dict[str, list[ChildResult]] = {"real": [], "noop": []}
        for _ in range(args.repeat):
            for graph in ("noop", "real"):  # interleaved, so load changes hit both
                print(f"load average before {instance} {graph}: {load_average()}", flush=True)
                runs[graph].append(backfill_once(graph, start, end, instance == "postgres"))
        best = {g: sorted(rs, key=lambda r: r.wall_s)[len(rs) // 2] for g, rs in runs.items()}
        for graph in ("real", "noop"):
            figure(f"backfill {instance} {graph}", describe(best[graph]))
            steps = sorted(step_seconds(best[graph].stdout).items(), key=lambda kv: -kv[1])
            print(f"  {graph} steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in steps))
        ratio = statistics.median(r.wall_s for r in runs["real"]) / statistics.median(
            r.wall_s for r in runs["noop"])
        real_daily = job_seconds(best["real"].stdout).get("daily", float("nan"))
        noop_daily = job_seconds(best["noop"].stdout).get("daily", float("nan"))
        cpu_ratio = statistics.median(r.cpu_s for r in runs["real"]) / statistics.median(
            r.cpu_s for r in runs["noop"])
        verdict = "met" if ratio <= GOAL else "MISSED"
        figure(f"backfill {instance} ratio", f"{ratio:.2f}x the floor by wall time (daily job alone "
                                             f"{real_daily / noop_daily:.2f}x, CPU time {cpu_ratio:.2f}x); "
                                             f"goal <= {GOAL}x {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
