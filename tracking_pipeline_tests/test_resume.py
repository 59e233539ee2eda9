"""A `python -m tracking_pipeline backfill` killed (SIGKILL) in the middle and started again skips the chunks
already materialized and ends with the same tables as an uninterrupted backfill."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg

from tracking_pipeline.warehouse import open_warehouse
from tracking_pipeline_tests.helpers import assert_same_tables, table_snapshot

START, END = "2018-06-25", "2018-09-28"
CHUNK = 20
REPO = Path(__file__).resolve().parent.parent
TIMEOUT_S = 900


def _backfill(env: dict[str, str], *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tracking_pipeline", "backfill", "--start", START, "--end", END,
                             *extra], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _env(tracking_env, name: str) -> tuple[dict[str, str], str]:
    root = tracking_env.root / name
    (root / "dagster_home").mkdir(parents=True)
    warehouse = str(root / "warehouse.duckdb")
    env = dict(os.environ, DAGSTER_HOME=str(root / "dagster_home"), TRACKING_WAREHOUSE=warehouse,
               TRACKING_REPORTS=str(root / "reports"), TRACKING_PARTITIONS_START=START)
    (root / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return env, warehouse


def _stop_inside_second_chunk(process: subprocess.Popen, home: Path) -> dg.DagsterRun:
    """Freeze the backfill (SIGSTOP) as soon as the second chunk's run has completed a step: the kill then
    lands inside that run whatever the machine's speed. Returns the run as it was when frozen."""
    deadline = time.monotonic() + TIMEOUT_S
    with dg.DagsterInstance.from_config(str(home)) as instance:
        while time.monotonic() < deadline:
            runs = instance.get_runs(dg.RunsFilter(job_name="daily_assets_job"))
            if len(runs) >= 2 and instance.all_logs(runs[0].run_id, of_type=dg.DagsterEventType.STEP_SUCCESS):
                process.send_signal(signal.SIGSTOP)
                return instance.get_run_by_id(runs[0].run_id)
            assert process.poll() is None, "the backfill ended before its second chunk could be interrupted"
            time.sleep(0.02)
    raise AssertionError("the second chunk never completed a step")


def test_killed_backfill_resumes_to_the_uninterrupted_result(tracking_env):
    """Reference: one uninterrupted backfill (default chunking: one range run). Then a backfill in chunks of 20
    trading days is SIGKILLed inside the second chunk's run (after one of its steps wrote), and started again:
    chunk 1 is skipped, the rest completes, the tables equal the reference."""
    ref_env, ref_wh = _env(tracking_env, "uninterrupted")
    t0 = time.monotonic()
    ref = _backfill(ref_env)
    out, _ = ref.communicate(timeout=TIMEOUT_S)
    assert ref.returncode == 0, out
    uninterrupted_s = time.monotonic() - t0

    env, wh = _env(tracking_env, "resumed")
    first = _backfill(env, "--chunk", str(CHUNK))
    seen = []
    for line in first.stdout:
        seen.append(line)
        if "chunk 1)" in line:
            assert ": ok" in line, "".join(seen)
            break
    second_chunk = _stop_inside_second_chunk(first, Path(env["DAGSTER_HOME"]))
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=60)
    assert first.returncode == -signal.SIGKILL, "".join(seen)
    assert second_chunk.status == dg.DagsterRunStatus.STARTED  # killed inside chunk 2, after some of its steps

    t0 = time.monotonic()
    second = _backfill(env, "--chunk", str(CHUNK))
    out2, _ = second.communicate(timeout=TIMEOUT_S)
    resumed_s = time.monotonic() - t0
    assert second.returncode == 0, out2
    skipped = [line for line in out2.splitlines() if "already materialized, skipped" in line]
    assert len(skipped) == 1 and skipped[0].split("daily assets ")[1].startswith(START), out2
    assert "chunk 2)" in out2 and "backfill complete" in out2

    counts = assert_same_tables(table_snapshot(open_warehouse(wh)), table_snapshot(open_warehouse(ref_wh)), tol=1e-12)
    print(f"uninterrupted {uninterrupted_s:.1f}s, resumed {resumed_s:.1f}s; rows compared {sum(counts.values())}")


def _dies_at_start():  # noqa: ANN202 - a chunk process's Definitions factory that kills its process
    os._exit(3)


def test_a_chunk_process_that_dies_is_a_failed_run_not_a_hang():
    """A chunk's process killed before reporting (out of memory, a signal) ends the CLI's run as FAILED with the
    exit code, instead of waiting for an outcome that never comes."""
    from tracking_pipeline.cli import _execute_in_child

    outcome = _execute_in_child(_dies_at_start, "daily_assets_job", {})
    assert not outcome.success
    assert outcome.failures == ["daily_assets_job: its process exited with code 3 before reporting (killed, e.g. "
                                "out of memory?)"]
