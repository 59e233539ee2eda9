"""Shared fixtures: an isolated environment per test (lake, DuckDB warehouse, Dagster instance) and PostgreSQL.

PostgreSQL tests use TRACKING_TEST_POSTGRES_URL (default postgresql://postgres@localhost/postgres) and get a fresh
database each. When the server is unreachable they fail under CI (CI=true) and skip with the reason elsewhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from tracking_pipeline.warehouse.postgres_backend import scratch_database
from tracking_pipeline_tests.helpers import make_lake

POSTGRES_ADMIN_URL = os.environ.get("TRACKING_TEST_POSTGRES_URL", "postgresql://postgres@localhost/postgres")


@dataclass
class TrackingEnv:
    root: Path
    lake: Path
    warehouse: str
    instance: dg.DagsterInstance

    def defs(self) -> dg.Definitions:
        """Definitions built from the current environment variables."""
        from tracking_pipeline.definitions import build_definitions

        return build_definitions()

    def warehouse_handle(self):  # noqa: ANN201
        from tracking_pipeline.warehouse import open_warehouse

        return open_warehouse(self.warehouse)


@pytest.fixture
def tracking_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TrackingEnv:
    """A small lake (demo data 2018-01-02..2019-06-28), a DuckDB warehouse and a temporary Dagster instance; the
    partitions begin on the lake's first day (2018-01-02) and are open-ended."""
    lake = make_lake(tmp_path / "lake")
    warehouse = str(tmp_path / "warehouse.duckdb")
    monkeypatch.setenv("TRACKING_LAKE", str(lake))
    monkeypatch.setenv("TRACKING_WAREHOUSE", warehouse)
    monkeypatch.setenv("TRACKING_REPORTS", str(tmp_path / "reports"))
    monkeypatch.setenv("TRACKING_LAKE_CACHE", str(tmp_path / "lake_cache"))
    monkeypatch.delenv("TRACKING_PARTITIONS_START", raising=False)  # partitions from the lake's first day
    monkeypatch.delenv("TRACKING_PARTITIONS_END", raising=False)
    monkeypatch.delenv("TRACKING_RISK_FREE_RATE", raising=False)
    monkeypatch.delenv("TRACKING_MARKET_TICKER", raising=False)
    (tmp_path / "dagster_home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster_home")) as instance:
        yield TrackingEnv(tmp_path, lake, warehouse, instance)


def _postgres_available() -> str | None:
    import psycopg2

    try:
        psycopg2.connect(POSTGRES_ADMIN_URL, connect_timeout=3).close()
        return None
    except psycopg2.OperationalError as exc:
        return str(exc).strip()


@pytest.fixture
def postgres_url() -> str:
    """A fresh, empty PostgreSQL database for this test (dropped afterwards)."""
    problem = _postgres_available()
    if problem:
        message = f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {problem}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with scratch_database(POSTGRES_ADMIN_URL, "tp_test") as url:
        yield url


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty warehouse: a DuckDB file, then a fresh PostgreSQL database (a test runs on both)."""
    if request.param == "duckdb":
        return str(tmp_path / "w.duckdb")
    return request.getfixturevalue("postgres_url")


DEPLOY_INSTANCE_YAML = Path(__file__).resolve().parent.parent / "deploy" / "dagster.yaml"


@pytest.fixture
def postgres_instance(postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dg.DagsterInstance:
    """The production Dagster instance: deploy/dagster.yaml (dagster-postgres) as DAGSTER_HOME, with its
    DAGSTER_PG_* variables pointing at the test's fresh database (shared with a Postgres warehouse, if any)."""
    import shutil

    from tracking_pipeline_tests.helpers import postgres_instance_env

    home = tmp_path / "dagster_home_pg"
    home.mkdir()
    shutil.copy(DEPLOY_INSTANCE_YAML, home / "dagster.yaml")
    for name, value in postgres_instance_env(postgres_url).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        yield instance
    finally:
        instance.dispose()


@pytest.fixture
def s3_server(monkeypatch: pytest.MonkeyPatch):
    """moto's S3 server over HTTP on 127.0.0.1 (a free port), with AWS_ENDPOINT_URL, dummy credentials and a
    region in the environment. Yields the server (tests may `.stop()` it to simulate an outage)."""
    import socket

    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    try:
        yield server
    finally:
        server.stop()

