"""A warehouse created by an earlier version gets the declared columns it lacks, on DuckDB and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracking_pipeline.warehouse import TABLES, open_warehouse

OLD_METRICS_COLUMNS = ("portfolio_id BIGINT, variant TEXT, period_type TEXT, period_start DATE, period_end DATE, "
                       "total_return DOUBLE PRECISION, PRIMARY KEY (portfolio_id, variant, period_type, period_start)")


def _old_warehouse(url: str) -> None:
    """portfolio_metrics as an earlier version created it (fewer columns), with one row."""
    wh = open_warehouse(url)
    with wh._open() as conn:  # noqa: SLF001 - raw DDL, before the current schema is ensured
        wh._execute(conn, f"CREATE TABLE portfolio_metrics ({OLD_METRICS_COLUMNS})", [])  # noqa: SLF001
        wh._execute(conn, "INSERT INTO portfolio_metrics VALUES (1, 'raw', 'all', DATE '2020-01-02', "  # noqa: SLF001
                          "DATE '2020-12-31', 0.25)", [])
        conn.commit()


def _check_migrated(url: str) -> None:
    wh = open_warehouse(url)
    frame = wh.read_table("portfolio_metrics")
    assert list(frame.columns) == TABLES["portfolio_metrics"].column_names
    assert len(frame) == 1 and frame.at[0, "total_return"] == 0.25
    assert frame.drop(columns=["portfolio_id", "variant", "period_type", "period_start", "period_end",
                               "total_return"]).isna().all(axis=None)
    for table in ("portfolio_rolling_metrics", "rebalancing_events"):
        assert wh.read_table(table).empty
    wh.replace()  # the new columns accept writes and a second open is a no-op
    again = open_warehouse(url)
    again.ensure_schema()
    assert list(again.read_table("portfolio_metrics").columns) == TABLES["portfolio_metrics"].column_names


def test_duckdb_warehouse_gains_missing_columns(tmp_path: Path) -> None:
    url = str(tmp_path / "old.duckdb")
    _old_warehouse(url)
    _check_migrated(url)


@pytest.mark.postgres
def test_postgres_warehouse_gains_missing_columns(postgres_url: str) -> None:
    _old_warehouse(postgres_url)
    _check_migrated(postgres_url)
