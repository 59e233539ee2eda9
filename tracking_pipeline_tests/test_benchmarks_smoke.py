"""Every benchmark script runs with --quick and prints its figure lines (a smoke test: no timing is checked)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p.name for p in BENCHMARKS.glob("bench_*.py"))

# The FIGURE lines each script must print; "{instance}" lines are expected once per Dagster instance measured.
EXPECTED = {
    "bench_backfill.py": ["backfill {instance} real", "backfill {instance} noop", "backfill {instance} ratio"],
    "bench_nightly.py": ["nightly sqlite real", "nightly sqlite noop", "nightly sqlite ratio"],
    "bench_betas.py": ["betas rows", "betas ours", "betas statsmodels", "betas speedup", "betas values"],
    "bench_metrics.py": ["metrics rows", "metrics ours", "metrics libraries", "metrics speedup", "metrics values"],
    "bench_scale.py": ["scale 1x", "scale 2x", "scale 4x", "scale 1x goal", "scale growth"],
    "bench_demo.py": ["demo install", "demo main job"],
    "bench_dashboard.py": ["dashboard report body", "dashboard page max", "dashboard report asset",
                           "dashboard app first render", "dashboard app warm"],
    "bench_trades.py": ["trades rows", "trades backfill", "trades nightly"],
    "bench_pipeline_scale.py": ["pipeline quick embedded backfill real", "pipeline quick embedded backfill noop",
                                "pipeline quick embedded backfill ratio", "pipeline quick embedded nightly ratio",
                                "pipeline peak RSS"],
}


def _postgres_reachable() -> bool:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from _common import postgres_problem
    finally:
        sys.path.remove(str(BENCHMARKS))
    return postgres_problem() is None


def test_every_script_has_expected_figures() -> None:
    assert SCRIPTS, f"no bench_*.py in {BENCHMARKS}"
    assert sorted(EXPECTED) == SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_quick(script: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKING_", "DAGSTER_"))}
    env["TRACKING_LAKE_CACHE"] = str(tmp_path / "lake_cache")
    proc = subprocess.run([sys.executable, str(BENCHMARKS / script), "--quick"], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, f"{script} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    figures = {line.split(":", 1)[0].removeprefix("FIGURE ").strip()
               for line in proc.stdout.splitlines() if line.startswith("FIGURE ")}
    instances = ["sqlite", "postgres"] if _postgres_reachable() else ["sqlite"]
    expected = {name.format(instance=i) for name in EXPECTED[script] for i in instances}
    assert expected <= figures, f"{script}: missing figure lines {sorted(expected - figures)}:\n{proc.stdout}"
    assert "date:" in proc.stdout and "machine:" in proc.stdout
