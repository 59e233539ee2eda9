"""Reliability on both backends: re-runs are idempotent, and a failure between deleting a scope's old rows and
committing the new ones leaves the old rows in place (directly and inside a real asset run)."""

import datetime as dt

import dagster as dg
import numpy as np
import pandas as pd
import psycopg2
import pytest

from tracking_pipeline.warehouse import Write, open_warehouse
from tracking_pipeline.warehouse.duckdb_backend import DuckDBWarehouse
from tracking_pipeline_tests.helpers import (
    QUIET, RANGE_END_TAG, RANGE_START_TAG, assert_same_tables, run_assets, run_chain, run_job, step_failure_messages,
    table_snapshot,
)

START, END = "2018-06-25", "2018-08-31"
MIDDLE = ("2018-07-23", "2018-08-10")


@pytest.fixture(autouse=True)
def history_from_start(tracking_env, monkeypatch):
    """The runs here begin at START: so do the partitions (a day's history never reaches before them)."""
    monkeypatch.setenv("TRACKING_PARTITIONS_START", START)


@pytest.fixture(params=["duckdb", "postgres"])
def backend(request, tracking_env, monkeypatch):
    """(Dagster instance, warehouse URL): DuckDB + SQLite instance, or Postgres warehouse + deploy/dagster.yaml."""
    if request.param == "duckdb":
        return tracking_env.instance, tracking_env.warehouse
    url = request.getfixturevalue("postgres_url")
    instance = request.getfixturevalue("postgres_instance")
    monkeypatch.setenv("TRACKING_WAREHOUSE", url)
    return instance, url


def test_rerunning_each_daily_asset_gives_identical_tables(tracking_env, backend):
    """Each daily asset re-run alone over a middle sub-range (continuing from the stored history before it)
    agrees with the first run to 1e-12 relative (path-dependent NAVs compound from the stored value instead of
    in one pass, which may move the last bit); the whole chain re-run over the same range gives the first tables
    back bit for bit. No duplicate or missing row anywhere."""
    instance, url = backend
    defs = tracking_env.defs()
    run_chain(defs, instance, START, END)
    wh = open_warehouse(url)
    first = table_snapshot(wh)
    assert len(first["portfolio_daily_nav"]) > 0 and len(first["price_data"]) > 0
    job = defs.resolve_job_def("daily_assets_job")
    daily_keys = sorted(job.asset_layer.executable_asset_keys, key=lambda k: k.to_user_string())
    assert len(daily_keys) >= 4
    for key in daily_keys:
        result = job.execute_in_process(instance=instance, asset_selection=[key], run_config=QUIET,
                                        tags={RANGE_START_TAG: MIDDLE[0], RANGE_END_TAG: MIDDLE[1]})
        assert result.success
        assert_same_tables(table_snapshot(wh), first, tol=1e-12)
    run_chain(defs, instance, START, END)
    counts = assert_same_tables(table_snapshot(wh), first, tol=0.0)
    print(f"idempotency rows compared: {sum(counts.values())} in {len(counts)} tables")


def _bars(days: list[str], tickers: list[str], scale: float) -> pd.DataFrame:
    index = pd.MultiIndex.from_product([pd.to_datetime(days), tickers], names=["trade_date", "ticker"])
    frame = index.to_frame(index=False)
    frame["adj_close"] = scale * (1.0 + np.arange(len(frame)))
    return frame


def test_failed_replace_keeps_previous_rows(backend):
    """replace(..., before_commit=boom) fails after the DELETE and INSERT of two tables: both keep their old rows
    (on Postgres a second connection still sees them meanwhile); a real constraint error inside the transaction
    (duplicate keys in the new rows) rolls back the same way; the same writes without the fault do apply."""
    _, url = backend
    wh = open_warehouse(url)
    days = ["2018-07-02", "2018-07-03"]
    scope = {"trade_date": (dt.date(2018, 7, 2), dt.date(2018, 7, 3))}
    old_prices = _bars(days, ["AAA", "BBB"], 1.0)
    old_features = pd.DataFrame({"trade_date": pd.to_datetime(days), "market_ticker": "AAA", "close": [1.0, 2.0]})
    wh.replace(Write("price_data", old_prices, scope), Write("market_features", old_features, scope))
    before = {t: wh.read_table(t) for t in ("price_data", "market_features")}
    new_writes = (Write("price_data", _bars(days, ["AAA", "BBB", "CCC"], 7.0), scope),
                  Write("market_features", old_features.assign(close=[9.0, 9.5]), scope))
    seen_meanwhile = []

    def boom() -> None:
        if wh.dialect == "postgres":
            seen_meanwhile.append(len(open_warehouse(url).read_table("price_data")))
        raise RuntimeError("injected failure before commit")

    with pytest.raises(RuntimeError, match="injected failure"):
        wh.replace(*new_writes, before_commit=boom)
    for table, frame in before.items():
        pd.testing.assert_frame_equal(wh.read_table(table), frame)
    if wh.dialect == "postgres":
        assert seen_meanwhile == [len(old_prices)]

    duplicated = pd.concat([new_writes[0].frame, new_writes[0].frame.head(1)], ignore_index=True)
    with pytest.raises(Exception, match="(?i)duplicate|constraint|unique"):
        wh.replace(Write("price_data", duplicated, scope))
    pd.testing.assert_frame_equal(wh.read_table("price_data"), before["price_data"])

    wh.replace(*new_writes)
    assert len(wh.read_table("price_data")) == 6
    assert wh.read_table("market_features")["close"].tolist() == [9.0, 9.5]


@pytest.fixture
def failing_nav_insert(backend, monkeypatch):
    """Make the INSERT of new portfolio_daily_nav rows fail inside the replacing transaction, after its DELETE:
    a PL/pgSQL trigger on Postgres; on DuckDB the backend's real insert runs, then an error is raised."""
    instance, url = backend
    if url.startswith("postgres"):
        def install() -> None:
            with psycopg2.connect(url) as conn, conn.cursor() as cur:
                cur.execute("CREATE FUNCTION inject_failure() RETURNS trigger LANGUAGE plpgsql AS "
                            "$$ BEGIN RAISE EXCEPTION 'injected failure in portfolio_daily_nav insert'; END $$")
                cur.execute("CREATE TRIGGER inject_failure BEFORE INSERT ON portfolio_daily_nav "
                            "FOR EACH STATEMENT EXECUTE FUNCTION inject_failure()")

        def remove() -> None:
            with psycopg2.connect(url) as conn, conn.cursor() as cur:
                cur.execute("DROP TRIGGER inject_failure ON portfolio_daily_nav")
    else:
        real_insert = DuckDBWarehouse._insert

        def failing(self, conn, table, frame):  # noqa: ANN001
            real_insert(self, conn, table, frame)
            if table.name == "portfolio_daily_nav":
                raise RuntimeError("injected failure in portfolio_daily_nav insert")

        def install() -> None:
            monkeypatch.setattr(DuckDBWarehouse, "_insert", failing)

        def remove() -> None:
            monkeypatch.setattr(DuckDBWarehouse, "_insert", real_insert)
    return instance, url, install, remove


def test_failure_inside_asset_run_keeps_previous_rows(tracking_env, failing_nav_insert):
    """A real daily run over changed prices whose NAV write fails mid-transaction: price_data takes the new
    prices, portfolio_daily_nav keeps exactly its previous rows; once the fault is gone the NAV does change."""
    instance, url, install, remove = failing_nav_insert
    defs = tracking_env.defs()
    run_chain(defs, instance, START, END, downstream=False)
    wh = open_warehouse(url)
    nav_before, prices_before = wh.read_table("portfolio_daily_nav"), wh.read_table("price_data")
    for path in (tracking_env.lake / "prices").glob("*.parquet"):
        frame = pd.read_parquet(path)
        late = frame["date"] >= dt.date(2018, 8, 1)
        frame.loc[late, "adj_close"] = frame.loc[late, "adj_close"] * (1.0 + 0.01 * (frame.loc[late].index % 7))
        frame.to_parquet(path, index=False)

    install()
    result = run_job(defs, "daily_assets_job", instance, START, END, raise_on_error=False)
    assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    assert [e.step_key for e in failures] == ["portfolio_daily_nav"]
    assert "injected failure" in failures[0].step_failure_data.error.to_string()
    assert not wh.read_table("price_data")["adj_close"].equals(prices_before["adj_close"])
    pd.testing.assert_frame_equal(wh.read_table("portfolio_daily_nav"), nav_before)

    remove()
    defs.resolve_job_def("daily_assets_job").execute_in_process(
        instance=instance, asset_selection=[dg.AssetKey("portfolio_daily_nav")], run_config=QUIET,
        tags={RANGE_START_TAG: START, RANGE_END_TAG: END})
    nav_after = wh.read_table("portfolio_daily_nav")
    assert len(nav_after) == len(nav_before)
    assert not np.allclose(nav_after["nav"], nav_before["nav"])


@pytest.mark.parametrize("filename", ["junk.parquet", "junk.csv"])
def test_ten_megabyte_junk_price_file_fails_cleanly(tracking_env, filename):
    """10 MB of random bytes dropped in prices/ (the other bad inputs are in test_bad_input.py): price_data fails
    with a short error naming the file, and keeps its previous rows."""
    defs, instance, wh = tracking_env.defs(), tracking_env.instance, tracking_env.warehouse_handle()
    run_assets(defs, instance, ("price_data",), "2018-07-02", "2018-07-06")
    before = wh.read_table("price_data")
    junk = tracking_env.lake / "prices" / filename
    junk.write_bytes(np.random.default_rng(7).bytes(10 * 1024 * 1024))
    result = run_assets(defs, instance, ("price_data",), "2018-07-02", "2018-07-06", raise_on_error=False)
    assert not result.success
    [message] = step_failure_messages(result)
    assert f"prices/{filename}" in message and "cannot be read as" in message, message[:2000]
    assert len(message) < 5000
    pd.testing.assert_frame_equal(wh.read_table("price_data"), before)
