"""A `python -m tracking_pipeline backfill` killed (SIGKILL) in the middle and started again skips the chunks
already materialized and ends with the same tables as an uninterrupted backfill."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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
               TRACKING_REPORTS=str(root / "reports"))
    return env, warehouse


def test_killed_backfill_resumes_to_the_uninterrupted_result(tracking_env):
    """Reference: one uninterrupted backfill (default chunking: one range run). Then a backfill in chunks of 20
    trading days is SIGKILLed right after its first chunk reports ok (inside the second chunk's run), and
    started again: chunk 1 is skipped, the rest completes, the tables equal the reference."""
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
            time.sleep(1.0)
            first.send_signal(signal.SIGKILL)
            break
    first.wait(timeout=60)
    assert first.returncode == -signal.SIGKILL, "".join(seen)
    assert not any("backfill complete" in line for line in seen)

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
