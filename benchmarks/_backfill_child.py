"""Child process of the backfill benchmarks: `python -m tracking_pipeline backfill ...` on the real or no-op graph.

Runs the CLI's own `main` (same chunking, event batching and job sequence) with the warehouse summary left out,
so both graphs do exactly the same orchestration work; `--graph noop` swaps in `noop_definitions(defs)`. A thread
samples the process's resident set every 0.2 s, so each step line also gives the peak RSS while that step ran (the
in-process executor runs one step at a time: which step holds the process's memory).
"""

from __future__ import annotations

import os
import sys
import threading
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
    samples = RssSampler()
    code = cli.main(cli_args)
    samples.stop()
    print_step_times(started, samples)
    return code


class RssSampler:
    """(time, resident MiB) of this process every `interval` seconds, on a daemon thread."""

    def __init__(self, interval: float = 0.2) -> None:
        self.samples: list[tuple[float, float]] = []
        self._page_mib = os.sysconf("SC_PAGE_SIZE") / 2**20
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _run(self, interval: float) -> None:
        with open("/proc/self/statm") as statm:
            while not self._done.is_set():
                statm.seek(0)
                self.samples.append((time.time(), int(statm.read().split()[1]) * self._page_mib))
                self._done.wait(interval)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def peak(self, start: float, end: float) -> tuple[float, float]:
        """(largest sample in [start, end], the last sample before `start`): a step's peak and what it began with."""
        before = ([mib for t, mib in self.samples if t < start][-1:] or [0.0])[0]
        return max([mib for t, mib in self.samples if start <= t <= end] + [before]), before


def print_step_times(since: float, rss: RssSampler) -> None:
    """`STEP job step seconds peak-MiB start-MiB` per step of the runs this process started (where a run's time
    and memory go)."""
    import dagster as dg

    instance = dg.DagsterInstance.get()
    for record in instance.get_run_records():
        if record.create_timestamp.timestamp() < since:
            continue
        run = record.dagster_run
        for stats in instance.get_run_step_stats(run.run_id):
            if stats.start_time and stats.end_time:
                peak, before = rss.peak(stats.start_time, stats.end_time)
                print(f"STEP {run.job_name} {stats.step_key} {stats.end_time - stats.start_time:.2f} {peak:.0f} "
                      f"{before:.0f}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
