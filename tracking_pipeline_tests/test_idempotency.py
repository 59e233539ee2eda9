"""Re-running never duplicates or changes rows, and path-dependent tables do not depend on how a range was cut.

On DuckDB: one backfill [A, C], then a re-run of the whole range and of a single partition, must leave every table
as it was; a second warehouse filled as [A, B] then [B+1, C] must hold the same rows (floats to 1e-12). A book with
cash, a non-zero risk-free rate and rebalances on both sides of B makes the NAV restart non-trivial."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd
import pytest

from tracking_pipeline.services.registry import _same_holdings
from tracking_pipeline.warehouse import TABLES, open_warehouse
from tracking_pipeline_tests.helpers import assert_same_tables, run_job, table_snapshot, write_portfolio

A, B, B_NEXT, C = "2018-07-02", "2018-07-20", "2018-07-23", "2018-08-10"
BOOK = {
    "name": "Rebalancer",
    "start_date": A,
    "variants": ["raw", "conservative", "trend_regime_v2"],
    "holdings": [
        {"effective_date": A, "weights": {"AAPL": 0.3, "JNJ": 0.3, "AGG": 0.2}},
        {"effective_date": "2018-07-16", "weights": {"MSFT": 0.5, "XOM": 0.25}},
        {"effective_date": "2018-07-25", "weights": {"AAPL": 0.6, "GLD": 0.3}},
        {"effective_date": "2018-08-04", "weights": {"SPY": 0.9}},  # a Saturday -> 08-06
    ],
}


def keys_unique(wh) -> None:  # noqa: ANN001
    for name, table in TABLES.items():
        cols = ", ".join(table.key)
        dups = int(wh.scalar(f"SELECT COUNT(*) FROM (SELECT {cols} FROM {name} GROUP BY {cols} "
                             f"HAVING COUNT(*) > 1) d"))
        assert dups == 0, f"{name}: duplicate keys"


@pytest.fixture
def env(tracking_env, monkeypatch):
    monkeypatch.setenv("TRACKING_RISK_FREE_RATE", "0.04")
    monkeypatch.setenv("TRACKING_PARTITIONS_START", A)  # the history begins at A: no partition before it
    write_portfolio(tracking_env.lake, "rebalancer.yaml", BOOK)
    return tracking_env


def test_rerunning_a_range_and_a_partition_leaves_identical_rows(env):
    defs, instance, wh = env.defs(), env.instance, env.warehouse_handle()
    run_job(defs, "portfolio_registry_job", instance)
    registered = wh.read_table("portfolio_definitions")
    run_job(defs, "daily_assets_job", instance, A, C)
    first = table_snapshot(wh)
    assert len(first["portfolio_daily_nav"]) > 0 and len(first["price_data"]) > 0

    run_job(defs, "portfolio_registry_job", instance)
    assert wh.read_table("portfolio_definitions").equals(registered)  # updated_at too: nothing changed
    run_job(defs, "daily_assets_job", instance, A, C)
    assert_same_tables(table_snapshot(wh), first, 0.0)
    run_job(defs, "daily_assets_job", instance, B, B)
    after_partition = table_snapshot(wh)
    counts = assert_same_tables(after_partition, first, 1e-12)
    assert counts == {name: len(frame) for name, frame in first.items()}
    keys_unique(wh)


def test_backfill_in_two_ranges_equals_one_range(env, monkeypatch):
    defs, instance = env.defs(), env.instance
    run_job(defs, "portfolio_registry_job", instance)
    run_job(defs, "daily_assets_job", instance, A, C)
    whole = table_snapshot(env.warehouse_handle())

    split_path = str(env.root / "split.duckdb")
    monkeypatch.setenv("TRACKING_WAREHOUSE", split_path)
    (env.root / "home_split").mkdir()
    with dg.instance_for_test(temp_dir=str(env.root / "home_split")) as other:
        defs = env.defs()
        run_job(defs, "portfolio_registry_job", other)
        run_job(defs, "daily_assets_job", other, A, B)
        run_job(defs, "daily_assets_job", other, B_NEXT, C)
    split = table_snapshot(open_warehouse(split_path))
    counts = assert_same_tables(split, whole, 1e-12)
    book_rows = whole["portfolio_daily_nav"].merge(
        whole["portfolio_definitions"].query("name == 'Rebalancer'")[["portfolio_id"]])
    sessions = len(pd.bdate_range(A, C)) - 1  # weekdays less Independence Day
    assert len(book_rows) == sessions * 3 and counts["portfolio_daily_nav"] > len(book_rows)


def test_registry_rewrites_holdings_only_when_a_file_changed(env):
    """An unchanged lake leaves the registry as it is (the nightly skips the rewrite); an edited weight is stored."""
    defs, instance, wh = env.defs(), env.instance, env.warehouse_handle()
    run_job(defs, "portfolio_registry_job", instance)
    holdings = wh.read_table("portfolio_holdings")
    run_job(defs, "portfolio_registry_job", instance)
    assert wh.read_table("portfolio_holdings").equals(holdings)

    edited = {**BOOK, "holdings": [{**BOOK["holdings"][0], "weights": {"AAPL": 0.25, "JNJ": 0.3, "AGG": 0.2}},
                                   *BOOK["holdings"][1:]]}
    write_portfolio(env.lake, "rebalancer.yaml", edited)
    run_job(defs, "portfolio_registry_job", instance)
    stored = wh.query("SELECT h.weight FROM portfolio_holdings h JOIN portfolio_definitions d USING (portfolio_id) "
                      "WHERE d.name = 'Rebalancer' AND h.ticker = 'AAPL' ORDER BY h.effective_date")
    assert stored["weight"].tolist() == [0.25, 0.6]


def test_same_holdings_ignores_order_and_storage_types():
    new = pd.DataFrame({"portfolio_id": [1, 1, 2], "effective_date": [dt.date(2018, 7, 2)] * 3,
                        "ticker": ["A", "B", "A"], "weight": [0.5, 0.25, 1.0]})
    stored = pd.DataFrame({"portfolio_id": pd.array([2, 1, 1, 3], dtype="Int32"),
                           "effective_date": pd.to_datetime(["2018-07-02"] * 4).as_unit("us"),
                           "ticker": pd.array(["A", "B", "A", "Z"], dtype="string"), "weight": [1.0, 0.25, 0.5, 0.1]})
    assert _same_holdings(new, stored, {1, 2})  # portfolio 3 is not registered any more: its rows are kept
    assert not _same_holdings(new.assign(weight=[0.5, 0.25, 0.9]), stored, {1, 2})
    assert not _same_holdings(new.iloc[:2], stored, {1, 2})
    assert not _same_holdings(new, stored, {1, 2, 3})
