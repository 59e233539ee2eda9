"""Figure 6: `make demo` as a newcomer meets it, in a fresh clone: package installation, then the main job.

`git clone` of this repository (committed files only) into a temporary folder, then with no TRACKING_*/DAGSTER_*
variable set: `make venv` (python3 -m venv + pip install -e '.[dev]', the first half of `make demo`) and `make demo`
(the venv is then up to date, so this is the backfill of the whole demo period on the embedded SQLite instance
and DuckDB warehouse, reports included). Each step is a child process timed with its peak RSS.

--quick skips the installation (it reuses this checkout's .venv, told to make with -o so nothing is installed
into it) and backfills 2018-01-02..2018-02-28 only.

    python benchmarks/bench_demo.py [--quick] [--source PATH]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, clean_env, figure, header, job_seconds, load_average, run_child, workdir  # noqa: E402

GOAL_SECONDS = 300.0
QUICK_END = "2018-01-31"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"no install, backfill to {QUICK_END} (smoke test)")
    parser.add_argument("--source", default=str(ROOT), help="repository to clone (default: this one)")
    args = parser.parse_args(argv)
    header("make demo in a fresh clone")
    env = clean_env()
    with workdir("bench_demo_") as root:
        clone = root / "clone"
        run_child(["git", "clone", "--quiet", args.source, str(clone)], env=env)
        commit = run_child(["git", "-C", str(clone), "log", "-1", "--format=%h %cd %s", "--date=iso"],
                           env=env).stdout.strip()
        print(f"clone of {args.source} at {commit}")
        print(f"load average before: {load_average()}", flush=True)
        if args.quick:
            venv_bin = ROOT / ".venv" / "bin"
            make = ["make", "demo", f"BIN={venv_bin}", "-o", str(venv_bin / ".installed"), f"DEMO_END={QUICK_END}"]
            figure("demo install", "skipped (--quick reuses this checkout's .venv)")
        else:
            install = run_child(["make", "venv"], env=env, cwd=clone)
            figure("demo install", f"make venv (venv + pip install -e '.[dev]'): wall {install.wall_s:.1f} s, "
                                   f"CPU {install.cpu_s:.1f} s, "
                                   f"peak RSS {install.peak_rss_mib:.0f} MiB")
            make = ["make", "demo"]
        demo = run_child(make, env=env, cwd=clone)
        jobs = ", ".join(f"{k} {v:.1f} s" for k, v in job_seconds(demo.stdout).items())
        figure("demo main job", f"{' '.join(make[:2])}: wall {demo.wall_s:.1f} s, CPU {demo.cpu_s:.1f} s "
                                f"({jobs}), "
                                f"peak RSS {demo.peak_rss_mib:.0f} MiB")
        if not args.quick:
            verdict = "met" if demo.wall_s < GOAL_SECONDS else "MISSED"
            figure("demo goal", f"main job {demo.wall_s:.1f} s < {GOAL_SECONDS:.0f} s: {verdict}")
        summary = [line for line in demo.stdout.splitlines() if line.startswith(("warehouse:", "  "))]
        print("\n".join(summary[:12]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
