"""One small warehouse for the Performance Tracker tests (the app and the report): the test lake (demo data
2018-01-02..2019-06-28) plus a portfolio whose name and description hold HTML and script, run through the whole
chain once per test process (session fixture) and only read afterwards."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import yaml

from tracking_pipeline.settings import DEMO_LAKE
from tracking_pipeline_tests.helpers import make_lake, run_chain, write_portfolio

START, END = "2018-01-02", "2019-06-28"
HOSTILE_NAME = '<script>alert("name")</script><img src=x onerror=alert(1)> & Co *bold* [x](javascript:alert(2))'
HOSTILE_DESCRIPTION = '<b onmouseover="alert(3)">60/40</b> <iframe src="javascript:alert(4)"></iframe>'
RESET = ("TRACKING_PARTITIONS_START", "TRACKING_PARTITIONS_END", "TRACKING_RISK_FREE_RATE", "TRACKING_MARKET_TICKER",
         "TRACKING_APP_URL")


@dataclass(frozen=True)
class TrackerEnv:
    root: Path
    lake: Path
    warehouse: str
    reports: Path

    def env(self) -> dict[str, str]:
        """The pipeline's settings for this warehouse (the app reads the same)."""
        return {"TRACKING_LAKE": str(self.lake), "TRACKING_WAREHOUSE": self.warehouse,
                "TRACKING_REPORTS": str(self.reports), "TRACKING_LAKE_CACHE": str(self.root / "lake_cache"),
                "TRACKING_APP_SNAPSHOTS": str(self.root / "app_snapshots")}

    def handle(self):  # noqa: ANN201 - a Warehouse
        from tracking_pipeline.warehouse import open_warehouse

        return open_warehouse(self.warehouse)


REUSE_ENV = "TRACKING_TEST_TRACKER_ENV"
"""A folder holding an environment built by an earlier run (its `tracker0` temp folder), reused as is: for
iterating on the app's tests without rebuilding the warehouse."""


@pytest.fixture(scope="session")
def tracker_env(tmp_path_factory: pytest.TempPathFactory) -> TrackerEnv:
    reuse = os.environ.get(REUSE_ENV, "").strip()
    if reuse:
        root = Path(reuse)
        return TrackerEnv(root, root / "lake", str(root / "warehouse.duckdb"), root / "reports")
    root = tmp_path_factory.mktemp("tracker")
    lake = make_lake(root / "lake", START, END)
    spec = yaml.safe_load((DEMO_LAKE / "portfolios" / "balanced_60_40.yaml").read_text())
    write_portfolio(lake, "hostile.yaml", {**spec, "name": HOSTILE_NAME, "description": HOSTILE_DESCRIPTION})
    env = TrackerEnv(root, lake, str(root / "warehouse.duckdb"), root / "reports")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.env().items():
            patch.setenv(name, value)
        for name in RESET:
            patch.delenv(name, raising=False)
        from tracking_pipeline.definitions import build_definitions

        (root / "dagster_home").mkdir()
        with dg.instance_for_test(temp_dir=str(root / "dagster_home")) as instance:
            run_chain(build_definitions(), instance, START, END)
    assert (env.reports / "index.html").is_file(), os.listdir(env.reports)
    return env


@pytest.fixture
def tracker_settings(tracker_env: TrackerEnv, monkeypatch: pytest.MonkeyPatch) -> TrackerEnv:
    """The environment of `tracker_env` set for one test (the app reads its settings from it)."""
    for name, value in tracker_env.env().items():
        monkeypatch.setenv(name, value)
    for name in RESET:
        monkeypatch.delenv(name, raising=False)
    return tracker_env
