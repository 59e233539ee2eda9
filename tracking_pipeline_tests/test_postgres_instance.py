"""The production path on PostgreSQL: the warehouse AND the Dagster instance (deploy/dagster.yaml via
dagster-postgres) on Postgres give the same tables as the embedded DuckDB run, and the runs are recorded there."""

import time

import dagster as dg
import pytest
import psycopg2
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from tracking_pipeline.trading_calendar import sessions_between
from tracking_pipeline.warehouse import open_warehouse
from tracking_pipeline_tests.helpers import assert_same_tables, run_chain, table_snapshot

START, END = "2018-06-01", "2018-10-31"


@pytest.fixture(autouse=True)
def history_from_start(tracking_env, monkeypatch):
    """The runs here begin at START: so do the partitions (a day's history never reaches before them)."""
    monkeypatch.setenv("TRACKING_PARTITIONS_START", START)


def test_postgres_chain_equals_duckdb(tracking_env, postgres_url, postgres_instance, monkeypatch):
    """Demo chain on DuckDB + SQLite instance, then on Postgres + Postgres instance: same rows, numbers to 1e-9."""
    run_chain(tracking_env.defs(), tracking_env.instance, START, END)
    duck = table_snapshot(tracking_env.warehouse_handle())

    monkeypatch.setenv("TRACKING_WAREHOUSE", postgres_url)
    t0 = time.monotonic()
    run_chain(tracking_env.defs(), postgres_instance, START, END)
    elapsed = time.monotonic() - t0
    pg = table_snapshot(open_warehouse(postgres_url))

    counts = assert_same_tables(pg, duck, tol=1e-9)
    print(f"postgres chain {elapsed:.1f}s; rows compared: {counts}")
    days = len(sessions_between(START, END))
    assert counts["market_features"] == days
    assert counts["price_data"] > days and counts["portfolio_daily_nav"] > 0

    assert isinstance(postgres_instance.run_storage, PostgresRunStorage)
    assert isinstance(postgres_instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(postgres_instance.schedule_storage, PostgresScheduleStorage)
    runs = postgres_instance.get_runs()
    assert len(runs) == 3 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    nav_partitions = postgres_instance.get_materialized_partitions(dg.AssetKey("portfolio_daily_nav"))
    assert nav_partitions == {d.date().isoformat() for d in sessions_between(START, END)}
    with psycopg2.connect(postgres_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM runs")
        assert cur.fetchone()[0] == 3
        cur.execute("SELECT COUNT(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'")
        assert cur.fetchone()[0] >= days * 4
