"""The code location loads through Dagster's own CLI in each of its configurations (module, workspace.yaml,
pyproject's [tool.dagster]) under the same location name, and the daily partitions are exactly the NYSE sessions."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import exchange_calendars as xc
import pandas as pd
import pytest

PROJECT = Path(__file__).resolve().parent.parent
DAGSTER = Path(sys.executable).parent / "dagster"
LOCATION = "tracking_pipeline"


def validate(args: list[str], tmp_path: Path) -> str:
    """`dagster definitions validate ARGS` from the project root in a clean environment; returns its output."""
    env = dict(os.environ, DAGSTER_HOME=str(tmp_path / "home"), TRACKING_WAREHOUSE=str(tmp_path / "w.duckdb"),
               TRACKING_LAKE_CACHE=str(tmp_path / "cache"), NO_COLOR="1")
    (tmp_path / "home").mkdir()
    done = subprocess.run([str(DAGSTER), "definitions", "validate", *args], cwd=PROJECT, env=env,
                          capture_output=True, text=True, timeout=180)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "All code locations passed validation" in output, output[-3000:]
    return output


def validated_locations(output: str) -> list[str]:
    return re.findall(r"Validation successful for code location (\S+?)\.?\s*$", output, flags=re.M)


def test_module_validates(tmp_path):
    validated = validated_locations(validate(["-m", "tracking_pipeline.definitions"], tmp_path))
    assert validated == ["tracking_pipeline.definitions"]  # -m names the location after the module


@pytest.mark.parametrize("args", [["-w", "workspace.yaml"], []], ids=["workspace.yaml", "pyproject"])
def test_workspace_and_pyproject_load_the_same_location(args, tmp_path):
    assert validated_locations(validate(args, tmp_path)) == [LOCATION]


def test_both_configs_name_the_same_module_and_location():
    import tomllib

    import yaml

    workspace = yaml.safe_load((PROJECT / "workspace.yaml").read_text())["load_from"]
    pyproject = tomllib.loads((PROJECT / "pyproject.toml").read_text())["tool"]["dagster"]
    assert workspace == [{"python_module": {"module_name": pyproject["module_name"],
                                            "location_name": pyproject["code_location_name"]}}]
    assert pyproject["code_location_name"] == LOCATION


def test_partitions_are_exactly_the_nyse_sessions():
    from tracking_pipeline.defs.partitions import trading_day_partitions

    partitions = trading_day_partitions("2018-01-02")
    keys = partitions.get_partition_keys()
    assert keys[0] == "2018-01-02"
    window = [k for k in keys if "2018-01-02" <= k <= "2023-12-29"]
    sessions = xc.get_calendar("XNYS", start="2018-01-02").sessions_in_range("2018-01-02", "2023-12-29")
    assert window == [d.strftime("%Y-%m-%d") for d in sessions]
    assert "2023-07-03" in keys and "2023-07-05" in keys
    for closed in ("2023-07-04", "2023-07-01", "2023-07-02", "2022-12-26", "2018-12-05", "2020-04-10"):
        assert closed not in keys, closed  # holiday, weekend, observed Christmas, Bush funeral, Good Friday
    assert all(pd.Timestamp(k).day_of_week < 5 for k in keys)


def test_daily_job_uses_the_trading_day_partitions(tracking_env):
    defs = tracking_env.defs()
    job = defs.resolve_job_def("daily_assets_job")
    keys = job.partitions_def.get_partition_keys()
    assert "2019-07-04" not in keys and "2019-07-05" in keys
    for asset in ("price_data", "market_features", "overlay_signals", "portfolio_daily_nav"):
        spec = defs.resolve_assets_def(asset)
        assert spec.partitions_def.get_partition_keys() == keys, asset
