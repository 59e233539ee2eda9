"""Whatever starts a run and in whatever order days arrive, a partition shown as materialized holds what an in-order
run gives, and a day that cannot be computed correctly fails visibly (issue 14).

Each scenario drives the real entry points on a real instance (job range runs, the schedule's run requests, the
sensors' evaluations), then compares every table with an in-order run of the same days (to 1e-9) and the
instance's materialized partitions with the rows in the warehouse."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from tracking_pipeline.defs.automation.daily_runs import RANGE_END_TAG, RANGE_START_TAG
from tracking_pipeline.lake.portfolios import portfolio_id_for
from tracking_pipeline.warehouse import open_warehouse
from tracking_pipeline_tests.helpers import (
    QUIET, assert_same_tables, make_lake, run_job, step_failure_messages, table_snapshot, write_portfolio,
)

LAKE_START, LAKE_END = "2018-01-02", "2018-03-29"
TICKERS = ["SPY", "AAPL", "MSFT", "JNJ", "AGG", "GLD", "XOM", "EFA"]
BOOKS = [
    {"name": "Core", "start_date": "2018-01-02", "variants": ["raw", "conservative", "trend_regime_v2"],
     "holdings": [{"effective_date": "2018-01-02", "weights": {"SPY": 0.5, "AGG": 0.3, "GLD": 0.1}},
                  {"effective_date": "2018-02-15", "weights": {"AAPL": 0.4, "MSFT": 0.4}}]},
    {"name": "Late", "start_date": "2018-01-16", "variants": ["raw", "trend_regime_v2"],
     "holdings": [{"effective_date": "2018-01-16", "weights": {"JNJ": 0.5, "XOM": 0.4}}]},
]
# Daily table -> date column; every day of a materialized partition has rows there (NAV: from the first book's start).
DAILY_TABLES = {"price_data": "trade_date", "market_features": "trade_date", "overlay_signals": "trade_date",
                "portfolio_daily_nav": "trade_date", "portfolio_snapshots": "snapshot_date",
                "asset_performance_metrics": "trade_date"}
NEW_YORK = "America/New_York"


@pytest.fixture
def env(tracking_env):
    lake = tracking_env.lake
    shutil.rmtree(lake)
    make_lake(lake, LAKE_START, LAKE_END, tickers=TICKERS, portfolios=BOOKS)
    return tracking_env


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """In-order runs of [LAKE_START, end] into their own warehouse and instance, by end day (cached)."""
    cache: dict[str, dict[str, pd.DataFrame]] = {}

    def tables(end: str) -> dict[str, pd.DataFrame]:
        if end not in cache:
            root = tmp_path_factory.mktemp(f"reference_{end}")
            lake = make_lake(root / "lake", LAKE_START, LAKE_END, tickers=TICKERS, portfolios=BOOKS)
            with pytest.MonkeyPatch.context() as mp:
                for name, value in {"TRACKING_LAKE": str(lake), "TRACKING_WAREHOUSE": str(root / "w.duckdb"),
                                    "TRACKING_REPORTS": str(root / "reports"),
                                    "TRACKING_LAKE_CACHE": str(root / "cache")}.items():
                    mp.setenv(name, value)
                for name in ("TRACKING_PARTITIONS_START", "TRACKING_PARTITIONS_END", "TRACKING_RISK_FREE_RATE",
                             "TRACKING_MARKET_TICKER"):
                    mp.delenv(name, raising=False)
                from tracking_pipeline.definitions import build_definitions

                (root / "home").mkdir()
                with dg.instance_for_test(temp_dir=str(root / "home")) as instance:
                    defs = build_definitions()
                    run_job(defs, "portfolio_registry_job", instance)
                    run_job(defs, "daily_assets_job", instance, LAKE_START, end)
                    run_job(defs, "downstream_job", instance)
                cache[end] = table_snapshot(open_warehouse(str(root / "w.duckdb")))
        return cache[end]

    return tables


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, day: str) -> list[dg.RunRequest]:
    """The nightly schedule evaluated at 18:00 New York on `day`."""
    when = pd.Timestamp(f"{day} 18:00").tz_localize(NEW_YORK).to_pydatetime()
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when,
                                        repository_def=defs.get_repository_def())
    data = defs.resolve_schedule_def("nightly_daily_assets").evaluate_tick(context)
    return list(data.run_requests or [])


def execute(defs: dg.Definitions, instance: dg.DagsterInstance, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    """Run a request as the daemon would launch it: its job, tags and asset selection."""
    return defs.resolve_job_def(request.job_name or "daily_assets_job").execute_in_process(
        instance=instance, tags=request.tags, run_config=QUIET, asset_selection=request.asset_selection,
        raise_on_error=False)


def status_matches_rows(instance: dg.DagsterInstance, wh) -> None:  # noqa: ANN001 - a Warehouse
    """For every daily table: the days with rows are exactly the materialized partitions (NAV and snapshots: from
    the first book's start)."""
    for table, column in DAILY_TABLES.items():
        days = {pd.Timestamp(d).date().isoformat()
                for d in wh.query(f"SELECT DISTINCT {column} FROM {table}")[column]}
        materialized = set(instance.get_materialized_partitions(dg.AssetKey(table)))
        if table in ("portfolio_daily_nav", "portfolio_snapshots"):
            materialized = {d for d in materialized if d >= BOOKS[0]["start_date"]}
        assert days == materialized, (table, sorted(days ^ materialized)[:5])


def same_as_reference(env, reference, end: str) -> None:  # noqa: ANN001
    wh = env.warehouse_handle()
    counts = assert_same_tables(table_snapshot(wh), reference(end), tol=1e-9)
    assert counts["portfolio_daily_nav"] > 0 and counts["portfolio_snapshots"] > 0
    status_matches_rows(env.instance, wh)


def failures(result: dg.ExecuteInProcessResult) -> str:
    return "\n".join(step_failure_messages(result))


def test_a_gap_fails_every_windowed_step_and_the_next_tick_heals_it(env, reference):
    defs, instance, wh = env.defs(), env.instance, env.warehouse_handle()
    run_job(defs, "portfolio_registry_job", instance)
    run_job(defs, "daily_assets_job", instance, "2018-01-02", "2018-01-31")
    march = run_job(defs, "daily_assets_job", instance, "2018-03-01", "2018-03-29", raise_on_error=False)
    assert not march.success
    message = failures(march)
    assert "price_data 2018-02-01..2018-02-28 (19 trading days)" in message
    assert "market_features 2018-02-28" in message and "backfill --start 2018-02-01" in message
    failed = {e.step_key for e in march.all_events if e.is_step_failure}
    assert {"market_features", "position_market_betas", "asset_performance_metrics"} <= failed
    assert all("needs history that is not materialized" in m for m in step_failure_messages(march))
    assert wh.scalar("SELECT COUNT(*) FROM market_features WHERE trade_date >= DATE '2018-03-01'") == 0
    status_matches_rows(instance, wh)  # March prices are materialized (and stored); nothing else of March

    (request,) = tick(defs, instance, "2018-03-29")
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == ("2018-02-01", "2018-03-29")
    assert execute(defs, instance, request).success
    assert tick(defs, instance, "2018-03-29") == []  # healed: nothing left to request
    run_job(defs, "downstream_job", instance)
    same_as_reference(env, reference, "2018-03-29")


def test_single_days_arriving_out_of_order_never_store_wrong_values(env, reference):
    defs, instance, wh = env.defs(), env.instance, env.warehouse_handle()
    run_job(defs, "portfolio_registry_job", instance)
    third = run_job(defs, "daily_assets_job", instance, "2018-01-03", "2018-01-03", raise_on_error=False)
    assert not third.success and "price_data 2018-01-02" in failures(third)
    assert run_job(defs, "daily_assets_job", instance, "2018-01-02", "2018-01-02").success
    fourth = run_job(defs, "daily_assets_job", instance, "2018-01-04", "2018-01-04", raise_on_error=False)
    assert not fourth.success and "market_features 2018-01-03" in failures(fourth)
    status_matches_rows(instance, wh)
    assert set(instance.get_materialized_partitions(dg.AssetKey("portfolio_daily_nav"))) == {"2018-01-02"}

    (request,) = tick(defs, instance, "2018-01-04")
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == ("2018-01-03", "2018-01-04")
    assert execute(defs, instance, request).success
    run_job(defs, "downstream_job", instance)
    same_as_reference(env, reference, "2018-01-04")


def test_a_failed_night_is_repaired_by_the_next_good_tick(env, reference):
    defs, instance, wh = env.defs(), env.instance, env.warehouse_handle()
    run_job(defs, "portfolio_registry_job", instance)
    run_job(defs, "daily_assets_job", instance, "2018-01-02", "2018-01-31")
    bad = env.lake / "prices" / "late_feed.csv"
    bad.write_text("date,ticker,adj_close\n2018-02-01,SPY,-1\n")  # a broken feed on the night of 02-01
    (night,) = tick(defs, instance, "2018-02-01")
    failed = execute(defs, instance, night)
    assert not failed.success and "late_feed.csv" in failures(failed) and "adj_close" in failures(failed)
    assert "2018-02-01" not in instance.get_materialized_partitions(dg.AssetKey("price_data"))
    bad.unlink()  # the feed is fixed during the day
    (next_night,) = tick(defs, instance, "2018-02-02")
    assert (next_night.tags[RANGE_START_TAG], next_night.tags[RANGE_END_TAG]) == ("2018-02-01", "2018-02-02")
    assert execute(defs, instance, next_night).success
    run_job(defs, "downstream_job", instance)
    same_as_reference(env, reference, "2018-02-02")


def test_a_tick_waits_while_a_daily_run_is_in_flight(env):
    defs, instance = env.defs(), env.instance
    import uuid

    instance.add_run(dg.DagsterRun(job_name="daily_assets_job", run_id=str(uuid.uuid4()),
                                   status=dg.DagsterRunStatus.STARTED))
    context = dg.build_schedule_context(
        instance=instance, repository_def=defs.get_repository_def(),
        scheduled_execution_time=pd.Timestamp("2018-01-05 18:00").tz_localize(NEW_YORK).to_pydatetime())
    data = defs.resolve_schedule_def("nightly_daily_assets").evaluate_tick(context)
    assert not data.run_requests and "still queued or running" in data.skip_message


def test_a_nav_step_that_computes_no_portfolio_fails_and_one_bad_book_alerts(env):
    """All books failing: the NAV step fails (no partition materialized). One failing among good ones: the
    others are written, the ERROR check fails and the check-failure sensor records an alert naming the book."""
    lake, defs, instance, wh = env.lake, env.defs(), env.instance, env.warehouse_handle()
    for path in (lake / "portfolios").iterdir():
        path.unlink()
    write_portfolio(lake, "holey.yaml", {"name": "Holey", "start_date": "2018-01-02", "variants": ["raw"],
                                         "holdings": [{"effective_date": "2018-01-02", "weights": {"EFA": 0.5}}]})
    etfs = pd.read_parquet(lake / "prices" / "etfs.parquet")
    hole = (etfs["ticker"] == "EFA") & etfs["date"].astype(str).between("2018-01-10", "2018-01-18")
    etfs[~hole].to_parquet(lake / "prices" / "etfs.parquet", index=False)
    run_job(defs, "portfolio_registry_job", instance)
    result = run_job(defs, "daily_assets_job", instance, "2018-01-02", "2018-01-31", raise_on_error=False)
    assert not result.success
    assert "no portfolio could be computed" in failures(result) and "Holey" in failures(result)
    assert not instance.get_materialized_partitions(dg.AssetKey("portfolio_daily_nav"))
    assert wh.scalar("SELECT COUNT(*) FROM portfolio_daily_nav") == 0

    with dg.build_sensor_context(instance=instance, definitions=defs, resources=defs.resources) as context:
        baseline = defs.resolve_sensor_def("check_failure_alert_sensor").evaluate_tick(context)
    write_portfolio(lake, "good.yaml", BOOKS[0])
    run_job(defs, "portfolio_registry_job", instance)
    partial = run_job(defs, "daily_assets_job", instance, "2018-01-02", "2018-01-31")
    assert partial.success
    (check,) = [c for c in partial.get_asset_check_evaluations() if c.check_name == "all_portfolios_computed"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    names = set(wh.query("SELECT DISTINCT d.name FROM portfolio_daily_nav n JOIN portfolio_definitions d "
                         "USING (portfolio_id)")["name"])
    assert names == {"Core"}
    with dg.build_sensor_context(instance=instance, definitions=defs, resources=defs.resources,
                                 cursor=baseline.cursor) as context:
        data = defs.resolve_sensor_def("check_failure_alert_sensor").evaluate_tick(context)
    alerts = wh.read_table("alerts").set_index("step_key")
    # the book is missing from the NAV and what is computed from it: each ERROR check that saw it alerts
    assert {"portfolio_daily_nav:all_portfolios_computed", "portfolio_daily_nav:nav_no_gaps",
            "portfolio_snapshots:snapshot_every_day"} <= set(alerts.index)
    assert all("Holey" in error for error in alerts["error"])
    assert set(alerts["run_id"]) == {partial.run_id} and set(alerts["job_name"]) == {"daily_assets_job"}
    assert "EFA has no price on 2018-01-18" in alerts.loc["portfolio_daily_nav:all_portfolios_computed", "error"]
    with dg.build_sensor_context(instance=instance, definitions=defs, resources=defs.resources,
                                 cursor=data.cursor) as context:
        defs.resolve_sensor_def("check_failure_alert_sensor").evaluate_tick(context)
    assert len(wh.read_table("alerts")) == len(alerts)  # reported once


def test_a_day_without_lake_data_is_never_materialized(env):
    defs, instance, wh = env.defs(), env.instance, env.warehouse_handle()
    run_job(defs, "portfolio_registry_job", instance)
    result = run_job(defs, "daily_assets_job", instance, "2018-03-28", "2018-04-03", raise_on_error=False)
    assert not result.success
    message = failures(result)
    assert "no prices on 2 trading day(s)" in message and "first 2018-04-02" in message  # 03-30: Good Friday
    assert "2018-03-29" in message  # the last day with prices in the range
    assert not instance.get_materialized_partitions(dg.AssetKey("price_data"))
    assert wh.scalar("SELECT COUNT(*) FROM price_data") == 0


def test_partitions_begin_with_the_lake_and_end_at_the_last_close(env):
    defs = env.defs()
    partitions = defs.resolve_job_def("daily_assets_job").partitions_def
    assert partitions.get_first_partition_key() == LAKE_START
    new_york = dt.timezone(dt.timedelta(hours=-4))  # EDT
    for day, before, after in (("2023-07-12", "2023-07-11", "2023-07-12"),  # Wednesday
                               ("2023-07-10", "2023-07-07", "2023-07-10"),  # Monday: Friday's until the close
                               ("2023-07-03", "2023-06-30", "2023-07-03")):  # early close, holiday next day
        close = dt.datetime.fromisoformat(f"{day}T16:00").replace(tzinfo=new_york)
        assert partitions.get_partition_keys(current_time=close - dt.timedelta(minutes=1))[-1] == before, day
        assert partitions.get_partition_keys(current_time=close + dt.timedelta(minutes=1))[-1] == after, day
    saturday = dt.datetime(2023, 7, 8, 12, tzinfo=new_york)
    assert partitions.get_partition_keys(current_time=saturday)[-1] == "2023-07-07"


def test_a_copied_lake_registers_nothing_new(env, monkeypatch):
    defs, instance = env.defs(), env.instance
    run_job(defs, "portfolio_registry_job", instance)
    before = env.warehouse_handle().read_table("portfolio_definitions")
    with dg.build_sensor_context(instance=instance, definitions=defs, resources=defs.resources) as context:
        baseline = defs.resolve_sensor_def("portfolio_registration_sensor").evaluate_tick(context)
    copy = env.root / "copied_lake"
    shutil.copytree(env.lake, copy)  # new files: new paths and modification times, same bytes
    monkeypatch.setenv("TRACKING_LAKE", str(copy))
    defs = env.defs()
    with dg.build_sensor_context(instance=instance, definitions=defs, resources=defs.resources,
                                 cursor=baseline.cursor) as context:
        data = defs.resolve_sensor_def("portfolio_registration_sensor").evaluate_tick(context)
    assert not data.run_requests and "no portfolio file changed" in data.skip_message
    run_job(defs, "portfolio_registry_job", instance)
    pd.testing.assert_frame_equal(env.warehouse_handle().read_table("portfolio_definitions"), before)


def test_a_book_starting_before_the_first_partition_is_refused_at_registration(env, monkeypatch):
    monkeypatch.setenv("TRACKING_PARTITIONS_START", "2018-02-01")
    defs = env.defs()
    result = run_job(defs, "portfolio_registry_job", env.instance)
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed
    errors = check.metadata["errors"].value
    assert errors.count("\n- ") == 1  # both books start before 2018-02-01
    assert "start_date 2018-01-02 is before the first daily partition 2018-02-01" in errors
    assert "set TRACKING_PARTITIONS_START to 2018-01-02 or earlier" in errors
    assert "move the portfolio's start_date to 2018-02-01 or later" in errors
    assert env.warehouse_handle().read_table("portfolio_definitions").empty


def test_assets_show_the_warehouse_kind_and_their_columns(env, postgres_url, monkeypatch):
    from tracking_pipeline.warehouse import TABLES

    for url, kind in ((env.warehouse, "duckdb"), (postgres_url, "postgres")):
        monkeypatch.setenv("TRACKING_WAREHOUSE", url)
        defs = env.defs()
        for table in ("price_data", "portfolio_daily_nav", "portfolio_metrics", "portfolio_definitions"):
            spec = next(s for s in defs.resolve_all_asset_specs() if s.key == dg.AssetKey(table))
            assert spec.kinds == {kind}, table
            schema = spec.metadata["dagster/column_schema"]
            assert [c.name for c in schema.columns] == TABLES[table].column_names


def test_previews_name_portfolios_instead_of_ids(env):
    defs, instance = env.defs(), env.instance
    run_job(defs, "portfolio_registry_job", instance)
    result = run_job(defs, "daily_assets_job", instance, "2018-01-02", "2018-01-19")
    nav = result.asset_materializations_for_node("portfolio_daily_nav")[-1]  # one per partition, same metadata
    for key in ("preview", "latest"):
        text = nav.metadata[key].value
        assert "Core" in text and str(portfolio_id_for("Core")) not in text, key


def test_cli_refuses_a_range_outside_the_partitions(env, capsys):
    from tracking_pipeline.cli import backfill

    code = backfill("2017-12-01", "2018-01-05")
    assert code == 2
    err = capsys.readouterr().err
    assert "2017-12-01" in err or "2017-12-04" in err
    assert f"partitions run from {LAKE_START}" in err


def test_reports_asset_links_to_the_reports(env, reference):
    defs, instance = env.defs(), env.instance
    run_job(defs, "portfolio_registry_job", instance)
    run_job(defs, "daily_assets_job", instance, "2018-01-02", "2018-01-12")
    result = run_job(defs, "downstream_job", instance)
    [report] = result.asset_materializations_for_node("performance_dashboard")
    link = report.metadata["open"].value
    assert link.startswith("file://") and link.endswith("index.html")
    assert Path(link[len("file://"):]).is_file()
