"""Figure 2: the nightly update (one more trading day through the whole chain) vs the no-op floor.

The demo lake ends on 2023-10-27, so "one more day" is measured as re-running its last partition after a full
backfill: `python -m tracking_pipeline backfill --start 2023-10-27 --end 2023-10-27 --force`, i.e. the portfolio
registry, every daily asset for that partition (reading the history they need from the warehouse) and the
unpartitioned downstream assets. Each graph (real, no-op built from the live Definitions) first gets its own full
backfill in a fresh DAGSTER_HOME; the nightly command then runs `--repeat` times per graph in fresh child
processes, the two graphs alternating (real, noop, noop, real, ...) so that a change in the host's speed during the
measurement reaches both alike. Reported: medians per graph and the median of the per-round ratios.

    python benchmarks/bench_nightly.py [--quick] [--repeat N] [--no-postgres]
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
GOAL = 1.3


def backfilled(graph: str, end: str, postgres_url: str | None, root: Path) -> dict[str, str]:
    """A fresh instance and warehouse for `graph` under `root`, fully backfilled up to `end`; returns its env."""
    root.mkdir()
    env = clean_env(DAGSTER_HOME=str(dagster_home(root, postgres_url)),
                    TRACKING_WAREHOUSE=str(root / "warehouse.duckdb"), TRACKING_REPORTS=str(root / "reports"),
                    TRACKING_LAKE_CACHE=str(root / "lake_cache"))
    run_child([PYTHON, str(CHILD), graph, "backfill", "--start", DEMO_START, "--end", end], env=env)
    return env


def alternate(envs: dict[str, dict[str, str]], end: str, repeat: int) -> dict[str, list[ChildResult]]:
    """`repeat` re-runs of the `end` partition plus downstream per graph, alternating the graphs (and which one
    goes first in each round)."""
    results: dict[str, list[ChildResult]] = {graph: [] for graph in envs}
    graphs = list(envs)
    for round_ in range(repeat):
        for graph in graphs if round_ % 2 == 0 else graphs[::-1]:
            results[graph].append(run_child([PYTHON, str(CHILD), graph, "backfill", "--start", end, "--end", end,
                                             "--force"], env=envs[graph]))
    return results


def measure(end: str, repeat: int, instance: str) -> dict[str, list[ChildResult]]:
    with workdir("bench_nightly_") as root:
        if instance == "postgres":
            with postgres_database() as url_real, postgres_database() as url_noop:
                envs = {"real": backfilled("real", end, url_real, root / "real"),
                        "noop": backfilled("noop", end, url_noop, root / "noop")}
                return alternate(envs, end, repeat)
        envs = {graph: backfilled(graph, end, None, root / graph) for graph in ("real", "noop")}
        return alternate(envs, end, repeat)


def in_process(result: ChildResult) -> float:
    """Seconds spent in the three job runs (without interpreter start-up and imports)."""
    return sum(job_seconds(result.stdout).values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"backfill {DEMO_START}..{QUICK_END}, SQLite only (smoke test)")
    parser.add_argument("--repeat", type=int, default=3, help="nightly runs per graph (median reported)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite instance only")
    args = parser.parse_args(argv)
    end = QUICK_END if args.quick else DEMO_END
    repeat = 1 if args.quick else args.repeat
    header(f"nightly: re-run partition {end} + downstream after a full backfill from {DEMO_START}")
    print(graph_summary())
    instances = ["sqlite"]
    skip_postgres = args.no_postgres or args.quick
    problem = None if skip_postgres else postgres_problem()
    if not skip_postgres and problem is None:
        instances.append("postgres")
    elif problem:
        print(f"postgres instance skipped: {problem}")
    for instance in instances:
        print(f"load average before {instance}: {load_average()}", flush=True)
        results = measure(end, repeat, instance)
        print(f"load average after {instance}: {load_average()}", flush=True)
        wall = {g: statistics.median(r.wall_s for r in rs) for g, rs in results.items()}
        jobs = {g: statistics.median(in_process(r) for r in rs) for g, rs in results.items()}
        for graph in ("real", "noop"):
            rss = max(r.peak_rss_mib for r in results[graph])
            per_job = job_seconds(results[graph][-1].stdout)
            cpu = statistics.median(r.cpu_s for r in results[graph])
            figure(f"nightly {instance} {graph}",
                   f"wall {wall[graph]:.1f} s, CPU {cpu:.1f} s (jobs {jobs[graph]:.1f} s: "
                   + ", ".join(f"{k} {v:.1f} s" for k, v in per_job.items())
                   + f"), peak RSS {rss:.0f} MiB, median of {len(results[graph])}")
            steps = sorted(step_seconds(results[graph][-1].stdout).items(), key=lambda kv: -kv[1])
            print(f"  {graph} steps: "
                  + ", ".join(f"{k} {v:.1f} s" for k, v in steps))
        ratio = wall["real"] / wall["noop"]
        cpu_ratio = (statistics.median(r.cpu_s for r in results["real"])
                     / statistics.median(r.cpu_s for r in results["noop"]))
        rounds = [r.wall_s / z.wall_s for r, z in zip(results["real"], results["noop"])]
        figure(f"nightly {instance} ratio", f"{ratio:.2f}x the floor by process wall time "
                                            f"({'met' if ratio <= GOAL else 'MISSED'}), "
                                            f"{jobs['real'] / jobs['noop']:.2f}x by job time, {cpu_ratio:.2f}x by "
                                            f"CPU time ({'met' if cpu_ratio <= GOAL else 'MISSED'}); goal <= {GOAL}x")
        print(f"  per-round wall ratios: {', '.join(f'{x:.2f}' for x in rounds)} "
              f"(median {statistics.median(rounds):.2f}, range {min(rounds):.2f}-{max(rounds):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
