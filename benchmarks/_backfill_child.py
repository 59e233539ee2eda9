"""Child process of the backfill benchmarks: `python -m tracking_pipeline backfill ...` on the real or no-op graph.

Runs the CLI's own `main` (same chunking, event batching and job sequence) with the warehouse summary left out,
so both graphs do exactly the same orchestration work; `--graph noop` passes `noop_build` (the graph of
`noop_definitions`). A thread samples the resident set of this process and of its descendants (the CLI runs each
chunk of a multi-chunk range in a process of its own) every 0.2 s, so each step line also gives the largest RSS of
any one process while that step ran (the CLI's runs execute one step at a time: which step holds the memory).
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

    if graph not in ("real", "noop"):
        raise SystemExit(f"graph must be real or noop, got {graph!r}")
    from _common import noop_build

    cli.summary = lambda out=None: None
    started = time.time()
    samples = RssSampler()
    code = cli.main(cli_args, build=noop_build if graph == "noop" else None)
    samples.stop()
    print_step_times(started, samples)
    return code


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants (Linux /proc)."""
    pids, out = [pid], []
    while pids:
        current = pids.pop()
        out.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    pids.extend(int(child) for child in handle.read().split())
        except OSError:
            continue
    return out


class RssSampler:
    """(time, resident MiB of the largest process: this one or a descendant) every `interval` seconds, on a daemon
    thread."""

    def __init__(self, interval: float = 0.2) -> None:
        self.samples: list[tuple[float, float]] = []
        self._page_mib = os.sysconf("SC_PAGE_SIZE") / 2**20
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._done.is_set():
            largest = 0
            for pid in _tree(os.getpid()):
                try:
                    with open(f"/proc/{pid}/statm") as statm:
                        largest = max(largest, int(statm.read().split()[1]))
                except OSError:
                    continue
            self.samples.append((time.time(), largest * self._page_mib))
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
