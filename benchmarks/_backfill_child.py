"""Child process of the backfill benchmarks: `python -m tracking_pipeline backfill ...` on the real or no-op graph.

Runs the CLI's own `main` (same chunking, event batching and job sequence) with the warehouse summary left out,
so both graphs do exactly the same orchestration work; `--graph noop` swaps in `noop_definitions(defs)`.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
warnings.filterwarnings("ignore")


def main(argv: list[str]) -> int:
    graph, cli_args = argv[0], argv[1:]
    import tracking_pipeline.cli as cli
    import tracking_pipeline.definitions as definitions

    if graph == "noop":
        from _common import noop_definitions

        real = definitions.build_definitions
        definitions.build_definitions = lambda settings=None: noop_definitions(real(settings))
    elif graph != "real":
        raise SystemExit(f"graph must be real or noop, got {graph!r}")
    cli.summary = lambda out=None: None
    started = time.time()
    code = cli.main(cli_args)
    print_step_times(started)
    return code


def print_step_times(since: float) -> None:
    """`STEP job step seconds` per step of the runs this process started (where a run's time goes)."""
    import dagster as dg

    instance = dg.DagsterInstance.get()
    for record in instance.get_run_records():
        if record.create_timestamp.timestamp() < since:
            continue
        run = record.dagster_run
        for stats in instance.get_run_step_stats(run.run_id):
            if stats.start_time and stats.end_time:
                print(f"STEP {run.job_name} {stats.step_key} {stats.end_time - stats.start_time:.2f}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
