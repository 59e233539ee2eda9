"""Steps on Celery workers (dagster-celery, Redis broker): a CLI backfill with TRACKING_EXECUTOR=celery, its steps
executed by two worker processes started here, on a PostgreSQL instance, a PostgreSQL warehouse and an S3 lake
(moto's server over HTTP), gives the same tables as the in-process run; a DuckDB warehouse is refused."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tracking_pipeline.warehouse import open_warehouse
from tracking_pipeline.warehouse.postgres_backend import scratch_database
from tracking_pipeline_tests.conftest import DEPLOY_INSTANCE_YAML, POSTGRES_ADMIN_URL
from tracking_pipeline_tests.helpers import (assert_same_tables, make_lake, postgres_instance_env, table_snapshot,
                                             upload_folder)

START, END = "2018-06-25", "2018-08-31"
BUCKET = f"tracking-celery-{uuid.uuid4().hex[:8]}"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


@pytest.fixture
def redis_url() -> str:
    """A Redis database of the local server for this test's broker (emptied afterwards); fails under CI and skips
    elsewhere when the server is not running (.ci/run starts it)."""
    import redis

    db = random.randint(1, 15)
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        message = f"Redis not reachable at {REDIS_HOST}:{REDIS_PORT}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}"
    finally:
        client.flushdb()
        client.close()


def _env(root: Path, name: str, warehouse: str, instance_db: str, **extra: str) -> dict[str, str]:
    """The environment of one chain (CLI and its workers): PostgreSQL instance and warehouse, S3 lake and reports."""
    import shutil

    home = root / f"home_{name}"
    home.mkdir()
    shutil.copy(DEPLOY_INSTANCE_YAML, home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKING_", "DAGSTER_"))}
    env.update(postgres_instance_env(instance_db))
    env.update(DAGSTER_HOME=str(home), TRACKING_WAREHOUSE=warehouse, TRACKING_LAKE=f"s3://{BUCKET}/lake",
               TRACKING_REPORTS=f"s3://{BUCKET}/reports_{name}", TRACKING_LAKE_CACHE=str(root / f"cache_{name}"),
               TRACKING_PARTITIONS_START=START, PYTHONWARNINGS="ignore", **extra)
    return env


def _backfill(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "tracking_pipeline", "backfill", "--start", START, "--end", END],
                            env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"backfill failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


def _start_workers(env: dict[str, str], root: Path, count: int) -> list[subprocess.Popen]:
    """`count` Celery worker processes (one step at a time each), each in its own process group; returns once
    every one answers a ping."""
    workers = []
    for i in range(count):
        log = open(root / f"worker_{i}.log", "w")  # noqa: SIM115 - closed with the process
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tracking_pipeline.celery_app", "worker", "-Q", "dagster",
             "--concurrency", "1", "--prefetch-multiplier", "1", "-n", f"w{i}@%h", "--loglevel", "INFO",
             "--without-gossip", "--without-mingle"],
            env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    from celery import Celery

    app = Celery(broker=env["TRACKING_CELERY_BROKER"])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert all(w.poll() is None for w in workers), (root / "worker_0.log").read_text()[-3000:]
        answered = app.control.ping(timeout=1.0) or []
        if len(answered) >= count:
            return workers
    raise AssertionError(f"{count} Celery workers did not start: {(root / 'worker_0.log').read_text()[-3000:]}")


def _stop(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def _celery_workers_used(instance_db: str) -> set[str]:
    """Worker names of the 'Executing steps ... in celery worker' engine events of the instance's runs."""
    import psycopg2

    with psycopg2.connect(instance_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT event FROM event_logs WHERE dagster_event_type = 'ENGINE_EVENT' "
                    "AND event LIKE '%in celery worker%'")
        events = [row[0] for row in cur.fetchall()]
    return {name for text in events for name in ("w0", "w1") if f"{name}@" in text}


def test_backfill_on_celery_workers_equals_in_process(tmp_path, s3_server, redis_url, postgres_url):
    lake = make_lake(tmp_path / "lake", START, END)
    upload_folder(lake, BUCKET, "lake")
    with scratch_database(POSTGRES_ADMIN_URL, "tp_celery") as celery_wh, \
            scratch_database(POSTGRES_ADMIN_URL, "tp_celery_inst") as celery_inst:
        in_process = _env(tmp_path, "inprocess", postgres_url, postgres_url)
        t0 = time.monotonic()
        _backfill(in_process, tmp_path)
        in_process_s = time.monotonic() - t0

        distributed = _env(tmp_path, "celery", celery_wh, celery_inst, TRACKING_EXECUTOR="celery",
                           TRACKING_CELERY_BROKER=redis_url)
        workers = _start_workers(distributed, tmp_path, 2)
        try:
            t0 = time.monotonic()
            result = _backfill(distributed, tmp_path)
            celery_s = time.monotonic() - t0
        finally:
            _stop(workers)
        assert "daily assets 2018-06-25..2018-08-31" in result.stdout and "backfill complete" in result.stdout
        used = _celery_workers_used(celery_inst)
        assert used == {"w0", "w1"}, f"steps ran on workers {used}"

        counts = assert_same_tables(table_snapshot(open_warehouse(celery_wh)),
                                    table_snapshot(open_warehouse(postgres_url)), tol=0.0)
    assert counts["price_data"] > 0 and counts["portfolio_daily_nav"] > 0 and counts["portfolio_metrics"] > 0
    print(f"celery (2 workers) {celery_s:.1f}s vs in-process {in_process_s:.1f}s; "
          f"{sum(counts.values())} rows equal in {len(counts)} tables")


def test_distributed_executor_refuses_a_duckdb_warehouse(tmp_path, monkeypatch):
    from tracking_pipeline.definitions import build_definitions
    from tracking_pipeline.defs.executors import ExecutorConfigError

    monkeypatch.setenv("TRACKING_EXECUTOR", "celery")
    monkeypatch.setenv("TRACKING_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    with pytest.raises(ExecutorConfigError, match="DuckDB file .* postgresql:// URL shared by every worker"):
        build_definitions()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "PYTHONWARNINGS": "ignore"}
    result = subprocess.run([sys.executable, "-m", "tracking_pipeline", "backfill", "--start", START, "--end", END],
                            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.startswith("error: TRACKING_EXECUTOR=celery") and "DuckDB" in result.stderr, result.stderr
    monkeypatch.setenv("TRACKING_EXECUTOR", "threads")
    with pytest.raises(ExecutorConfigError, match="TRACKING_EXECUTOR must be one of auto, in_process"):
        build_definitions()
