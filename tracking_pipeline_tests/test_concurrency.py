"""Concurrent writers: several daily runs at once on different partition ranges lose no row and deadlock nowhere
(PostgreSQL, multiprocess executor); on DuckDB concurrent writers queue on the warehouse file lock instead of
failing with DuckDB's "could not set lock" error."""

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest
import pandas as pd
import psycopg2

from tracking_pipeline.warehouse import Write, open_warehouse
from tracking_pipeline_tests.helpers import (
    RANGE_END_TAG, RANGE_START_TAG, assert_same_tables, run_chain, table_snapshot,
)

START, END = "2018-06-25", "2018-08-31"
SUB_RANGES = [("2018-06-25", "2018-07-16"), ("2018-07-17", "2018-08-06"), ("2018-08-07", "2018-08-31")]
REPO = Path(__file__).resolve().parent.parent
RUN_TIMEOUT_S = 900


@pytest.fixture(autouse=True)
def history_from_start(tracking_env, monkeypatch):
    """The runs here begin at START: so do the partitions (a day's history never reaches before them)."""
    monkeypatch.setenv("TRACKING_PARTITIONS_START", START)


def _launch_daily_runs(ranges: list[tuple[str, str]], logs: Path) -> list[tuple[subprocess.Popen, Path]]:
    """One `dagster job execute` process per range, started together (instance and warehouse from the env), each
    writing its output to a file: a pipe read only at the end fills up, and a step blocked writing its log holds
    its warehouse pool slot, so the other runs could never finish."""
    procs = []
    for lo, hi in ranges:
        tags = json.dumps({RANGE_START_TAG: lo, RANGE_END_TAG: hi})
        log = logs / f"run_{lo}_{hi}.log"
        with log.open("w") as out:
            procs.append((subprocess.Popen(
                [sys.executable, "-m", "dagster", "job", "execute", "-m", "tracking_pipeline.definitions",
                 "-j", "daily_assets_job", "--tags", tags],
                cwd=REPO, stdout=out, stderr=subprocess.STDOUT, text=True), log))
    return procs


def _wait_all(procs: list[tuple[subprocess.Popen, Path]]) -> list[str]:
    outputs = []
    deadline = time.monotonic() + RUN_TIMEOUT_S
    for proc, log in procs:
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            for other, _ in procs:
                other.kill()
            raise AssertionError(f"the runs did not finish in {RUN_TIMEOUT_S}s; {log}:\n{log.read_text()[-4000:]}")
        out = log.read_text()
        assert proc.returncode == 0, out[-4000:]
        outputs.append(out)
    return outputs


@contextmanager
def _gate(url: str, waiters: int):
    """Hold an exclusive lock on price_data until `waiters` other sessions are blocked on it: the runs launched
    inside the block are then all in flight at the same moment, on any machine speed."""
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("LOCK TABLE price_data IN ACCESS EXCLUSIVE MODE")
            yield
            deadline = time.monotonic() + RUN_TIMEOUT_S
            while True:
                cur.execute("SELECT COUNT(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                            "WHERE c.relname = 'price_data' AND NOT l.granted")
                if cur.fetchone()[0] >= waiters:
                    break
                assert time.monotonic() < deadline, "the runs never reached price_data"
                time.sleep(0.05)
        conn.rollback()  # releases the lock: the blocked writers go on together
    finally:
        conn.close()


def test_concurrent_runs_on_postgres_lose_no_row(tracking_env, postgres_url, postgres_instance, monkeypatch):
    """After a sequential run, three runs re-compute disjoint sub-ranges at the same time (held at a lock until
    all three wait on their first write, then released together), each with the multiprocess executor (one
    process per step) on the Postgres instance: all succeed, Postgres records no deadlock, and every table equals
    the sequential result (each range reads the committed neighbour rows)."""
    monkeypatch.setenv("TRACKING_WAREHOUSE", postgres_url)
    defs = tracking_env.defs()
    assert defs.resolve_job_def("daily_assets_job").executor_def.name == "multiprocess"
    run_chain(defs, postgres_instance, START, END)
    wh = open_warehouse(postgres_url)
    reference = table_snapshot(wh)
    sequential = {r.run_id for r in postgres_instance.get_runs()}

    t0 = time.monotonic()
    with _gate(postgres_url, len(SUB_RANGES)):  # all three runs are inside their first write at once
        procs = _launch_daily_runs(SUB_RANGES, tracking_env.root)
    _wait_all(procs)
    elapsed = time.monotonic() - t0
    counts = assert_same_tables(table_snapshot(wh), reference, tol=1e-12)
    print(f"postgres: {len(SUB_RANGES)} concurrent runs in {elapsed:.1f}s, rows compared {sum(counts.values())}")

    concurrent = [r for r in postgres_instance.get_runs() if r.run_id not in sequential]
    assert sorted((r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in concurrent) == SUB_RANGES
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in concurrent)
    for run in concurrent:
        workers = postgres_instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_WORKER_STARTED)
        assert len({w.step_key for w in workers}) >= 4, "steps did not run in their own processes"
    starts = [postgres_instance.get_run_record_by_id(r.run_id).start_time for r in concurrent]
    ends = [postgres_instance.get_run_record_by_id(r.run_id).end_time for r in concurrent]
    assert max(starts) < min(ends), "the runs did not overlap in time"
    database = postgres_url.rsplit("/", 1)[1]
    with psycopg2.connect(postgres_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = %s", [database])
        assert cur.fetchone()[0] == 0


def test_concurrent_runs_on_duckdb_are_serialised(tracking_env, monkeypatch):
    """The same three concurrent runs on the DuckDB warehouse (in-process executor, SQLite instance shared
    through DAGSTER_HOME): they queue on the lock, none fails, tables equal the sequential run."""
    home = tracking_env.root / "dagster_home_shared"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    defs = tracking_env.defs()
    assert defs.resolve_job_def("daily_assets_job").executor_def.name == "in_process"
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run_chain(defs, instance, START, END)
        wh = tracking_env.warehouse_handle()
        reference = table_snapshot(wh)
        t0 = time.monotonic()
        outputs = _wait_all(_launch_daily_runs(SUB_RANGES, tracking_env.root))
        elapsed = time.monotonic() - t0
        runs = instance.get_runs(filters=dg.RunsFilter(job_name="daily_assets_job"))
        assert sum(r.status == dg.DagsterRunStatus.SUCCESS for r in runs) == len(SUB_RANGES) + 1
    assert not any("Could not set lock" in out for out in outputs)
    counts = assert_same_tables(table_snapshot(wh), reference, tol=1e-12)
    print(f"duckdb: {len(SUB_RANGES)} concurrent runs in {elapsed:.1f}s, rows compared {sum(counts.values())}")


WRITERS, ROUNDS, ROWS = 4, 15, 400


def _hammer(path: str, writer: int, queue) -> None:  # noqa: ANN001 - multiprocessing queue
    """Replace this writer's ticker's rows ROUNDS times, reading the table count in between."""
    try:
        wh = open_warehouse(path)
        days = pd.bdate_range("2018-01-01", periods=ROWS)
        for round_ in range(ROUNDS):
            frame = pd.DataFrame({"trade_date": days, "ticker": f"W{writer}",
                                  "adj_close": float(round_ + 1) + 0.001 * writer})
            wh.replace(Write("price_data", frame, {"ticker": [f"W{writer}"]}))
            wh.scalar("SELECT COUNT(*) FROM price_data")
        queue.put((writer, "ok"))
    except Exception as exc:  # reported to the parent, which fails the test with it
        queue.put((writer, f"{type(exc).__name__}: {exc}"))


def test_concurrent_duckdb_writers_queue_on_the_file_lock(tmp_path):
    """Four processes each replace their own rows 15 times and read in between, on one DuckDB file: no
    "could not set lock" error, every final row present with each writer's last values."""
    path = str(tmp_path / "shared.duckdb")
    open_warehouse(path).ensure_schema()
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    t0 = time.monotonic()
    procs = [context.Process(target=_hammer, args=(path, i, queue)) for i in range(WRITERS)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=RUN_TIMEOUT_S)
    results = dict(queue.get(timeout=5) for _ in procs)
    print(f"duckdb: {WRITERS} writers x {ROUNDS} replaces in {time.monotonic() - t0:.1f}s")
    assert results == {i: "ok" for i in range(WRITERS)}
    table = open_warehouse(path).read_table("price_data")
    assert len(table) == WRITERS * ROWS
    last = table.groupby("ticker")["adj_close"].agg(["min", "max"])
    expected = pd.DataFrame({"min": [ROUNDS + 0.001 * i for i in range(WRITERS)],
                             "max": [ROUNDS + 0.001 * i for i in range(WRITERS)]},
                            index=pd.Index([f"W{i}" for i in range(WRITERS)], name="ticker"))
    pd.testing.assert_frame_equal(last, expected)
    assert os.path.exists(path + ".lock")
