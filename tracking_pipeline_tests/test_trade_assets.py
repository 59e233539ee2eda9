"""The trade assets end to end on a test lake cut from the demo: trade_tracking against the ledger files and the
prices read independently, strategy metrics against a pandas re-implementation, idempotent and cut-independent
partition runs, a bad ledger file (named, others loaded, nothing half-written), DuckDB = PostgreSQL, system health
from a crafted instance, the daily report delivered to a real local SMTP server, and the Strategies page data."""

from __future__ import annotations

import datetime as dt
import email
import socket
from dataclasses import dataclass
from email import policy
from pathlib import Path

import dagster as dg
import exchange_calendars as xc
import numpy as np
import pandas as pd
import pytest

from tracking_pipeline.analytics.trade_windows import PERIODS
from tracking_pipeline.settings import DEMO_LAKE
from tracking_pipeline.warehouse import open_warehouse
from tracking_pipeline_tests.analytics.test_trade_analytics import assert_close, reference_metrics, reference_window
from tracking_pipeline_tests.helpers import (
    NAV_ASSETS, QUIET, assert_same_tables, make_lake, run_assets, run_job, table_snapshot, write_portfolio,
)

A, B, B_NEXT, C = "2018-05-01", "2018-06-15", "2018-06-18", "2018-07-31"
TRADE_ASSETS = ("routing_decisions", "trade_tracking", "strategy_metrics", "trade_outcomes", "confidence_calibration",
                "volume_spike_candidates")
TRADE_TABLES = TRADE_ASSETS
HOSTILE = "<b>Evil & Co</b> \"quoted\""
SECRET = "s3cr3t-smtp-pa55"


def trade_tables(wh) -> dict[str, pd.DataFrame]:  # noqa: ANN001
    return {name: frame for name, frame in table_snapshot(wh).items() if name in TRADE_TABLES}


def run_trades(defs: dg.Definitions, instance: dg.DagsterInstance, start: str, end: str,
               nav: bool = False) -> dg.ExecuteInProcessResult:
    assets = (*NAV_ASSETS, *TRADE_ASSETS) if nav else ("price_data", *TRADE_ASSETS)
    return run_assets(defs, instance, assets, start, end)


@dataclass
class Run:
    root: Path
    lake: Path
    warehouse: str
    instance: dg.DagsterInstance
    defs: dg.Definitions


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    """One run over [A, C]: registry, the NAV chain and the trade assets (a portfolio with a hostile name)."""
    root = tmp_path_factory.mktemp("trades")
    lake = make_lake(root / "lake")
    write_portfolio(lake, "hostile.yaml", {"name": HOSTILE, "start_date": "2018-07-02",
                                           "holdings": [{"effective_date": "2018-07-02", "weights": {"AAPL": 0.5}}]})
    with pytest.MonkeyPatch.context() as env:
        for name, value in {"TRACKING_LAKE": str(lake), "TRACKING_WAREHOUSE": str(root / "warehouse.duckdb"),
                            "TRACKING_REPORTS": str(root / "reports"), "TRACKING_LAKE_CACHE": str(root / "cache"),
                            "TRACKING_PARTITIONS_START": A}.items():
            env.setenv(name, value)
        for name in ("TRACKING_PARTITIONS_END", "TRACKING_RISK_FREE_RATE", "TRACKING_MARKET_TICKER",
                     "TRACKING_SMTP_URL", "TRACKING_REPORT_TO"):
            env.delenv(name, raising=False)
        (root / "home").mkdir()
        with dg.instance_for_test(temp_dir=str(root / "home")) as instance:
            from tracking_pipeline.definitions import build_definitions

            defs = build_definitions()
            run_job(defs, "portfolio_registry_job", instance)
            run_trades(defs, instance, A, C, nav=True)
            yield Run(root, lake, str(root / "warehouse.duckdb"), instance, defs)


def lake_frame(lake: Path, folder: str) -> pd.DataFrame:
    return pd.concat([pd.read_csv(p) for p in sorted((lake / folder).glob("*.csv"))], ignore_index=True)


def demo_prices() -> pd.DataFrame:
    prices = pd.concat([pd.read_parquet(DEMO_LAKE / "prices" / f"{n}.parquet", columns=["date", "ticker", "close"])
                        for n in ("stocks", "etfs")])
    prices["date"] = pd.to_datetime(prices["date"])
    return prices.set_index(["ticker", "date"])["close"]


def test_trade_tracking_equals_the_ledger_and_the_prices(run):
    wh = open_warehouse(run.warehouse)
    stored = wh.read_table("trade_tracking").set_index("trade_id")
    ledger = lake_frame(run.lake, "trades")
    for column in ("entry_date", "exit_date"):
        ledger[column] = pd.to_datetime(ledger[column])
    sessions = xc.get_calendar("XNYS", start="2018-01-02").sessions_in_range("2018-01-02", "2018-12-31")
    first_day = sessions[sessions < A][-1] + pd.Timedelta(days=1)  # A's partition owns the days after the last
    closed = ledger[(ledger["exit_date"] >= first_day) & (ledger["exit_date"] <= C)]
    still_open = ledger[(ledger["entry_date"] <= C) & (ledger["exit_date"].isna() | (ledger["exit_date"] > C))]
    assert len(closed) > 30 and len(still_open) > 3
    assert set(stored.index) == set(closed["trade_id"]) | set(still_open["trade_id"])
    prices = demo_prices()
    for trade in closed.itertuples():
        row = stored.loc[trade.trade_id]
        assert not row["is_open"] and row["status_date"] == trade.exit_date
        assert row["profit_loss"] == pytest.approx((trade.exit_price - trade.entry_price) * trade.quantity, rel=1e-12)
        assert row["profit_loss_pct"] == pytest.approx(trade.exit_price / trade.entry_price - 1, rel=1e-12, abs=1e-15)
        assert row["hold_days"] == (trade.exit_date - trade.entry_date).days
        assert row["was_profitable"] == (trade.exit_price > trade.entry_price)
    for trade in still_open.itertuples():
        row = stored.loc[trade.trade_id]
        mark = prices.loc[(trade.symbol, pd.Timestamp(C))]
        assert row["is_open"] and row["status_date"] == pd.Timestamp(C) and pd.isna(row["exit_date"])
        assert row["mark_price"] == mark and row["mark_date"] == pd.Timestamp(C)
        assert row["profit_loss"] == pytest.approx((mark - trade.entry_price) * trade.quantity, rel=1e-12)
        assert pd.isna(row["was_profitable"])
    # market timing: the latest decision of the same symbol and strategy on or before the entry (routing is stored
    # from A on), its delay in NYSE sessions and the price move from the decision day's close
    routing = lake_frame(run.lake, "routing")
    routing["day"] = pd.to_datetime(routing["timestamp"].str[:10])
    routing = routing[routing["day"] >= first_day]
    matched = 0
    for trade_id, row in stored.iterrows():
        options = routing[(routing["symbol"] == row["symbol"]) & (routing["selected_strategy"] == row["strategy"])
                          & (routing["day"] <= row["entry_date"])]
        if options.empty:
            assert pd.isna(row["decision_id"]), trade_id
            continue
        decision = options.sort_values(["day", "decision_id"]).iloc[-1]
        delay = int(((sessions > decision["day"]) & (sessions <= row["entry_date"])).sum())
        assert row["decision_id"] == decision["decision_id"] and row["entry_delay_days"] == delay, trade_id
        decision_close = prices.loc[(row["symbol"], decision["day"])]
        assert row["timing_cost"] == pytest.approx(row["entry_price"] / decision_close - 1, rel=1e-12, abs=1e-15)
        matched += 1
    assert matched > 30 and set(stored["entry_delay_days"].dropna()) == {1, 2}


def test_strategy_metrics_equal_pandas_on_the_stored_trades(run):
    wh = open_warehouse(run.warehouse)
    trades = wh.read_table("trade_tracking", "NOT is_open")
    metrics = wh.read_table("strategy_metrics")
    assert metrics["period_end"].max() == pd.Timestamp(C)
    checked = 0
    for day in (pd.Timestamp("2018-05-15"), pd.Timestamp(C)):
        for (strategy, stock_type), group in trades.groupby(["strategy", "classification"]):
            for period, length in PERIODS.items():
                got = metrics[(metrics["strategy"] == strategy) & (metrics["stock_type"] == stock_type)
                              & (metrics["period_end"] == day) & (metrics["period_type"] == period)]
                window = reference_window(group, day, length)
                if (group["exit_date"] > day).all():
                    assert got.empty
                    continue
                for column, value in reference_metrics(window).items():
                    assert_close(float(got[column].iloc[0]), value, f"{strategy}/{stock_type} {day} {period} {column}")
                checked += 1
    assert checked >= 20
    outcomes = wh.read_table("trade_outcomes").set_index(["as_of_date", "period_type"])
    last = outcomes.loc[(pd.Timestamp(C), "all")]
    assert last["closed_trades"] == len(trades) and last["win_rate"] == pytest.approx(
        (trades["profit_loss"] > 0).mean(), rel=1e-12)
    assert last["explosive_rate"] == pytest.approx((trades["profit_loss_pct"] > 0.10).mean(), rel=1e-12)  # demo: 10%
    calibration = wh.read_table("confidence_calibration")
    assert set(calibration["band"]) == {"high", "medium", "low", "all"}
    candidates = wh.read_table("volume_spike_candidates")
    assert len(candidates) > 0 and (candidates["volume_multiple"] >= 5).all()
    assert candidates["price"].between(20, 1000).all() and candidates["best_pattern"].notna().all()


def test_reruns_are_idempotent_and_a_split_backfill_equals_one_range(tracking_env, monkeypatch):
    monkeypatch.setenv("TRACKING_PARTITIONS_START", A)
    defs, instance, wh = tracking_env.defs(), tracking_env.instance, tracking_env.warehouse_handle()
    run_trades(defs, instance, A, C)
    whole = trade_tables(wh)
    assert all(len(frame) for frame in whole.values())
    run_trades(defs, instance, A, C)
    assert_same_tables(trade_tables(wh), whole, 0.0)
    run_trades(defs, instance, B, B)
    assert_same_tables(trade_tables(wh), whole, 0.0)

    split = str(tracking_env.root / "split.duckdb")
    monkeypatch.setenv("TRACKING_WAREHOUSE", split)
    (tracking_env.root / "home_split").mkdir()
    with dg.instance_for_test(temp_dir=str(tracking_env.root / "home_split")) as other:
        defs = tracking_env.defs()
        run_trades(defs, other, A, B)
        at_b = open_warehouse(split).read_table("trade_tracking", "is_open")
        assert len(at_b) and (at_b["status_date"] == pd.Timestamp(B)).all()  # open trades marked at B
        run_trades(defs, other, B_NEXT, C)  # the "nightly" continuation
    counts = assert_same_tables(trade_tables(open_warehouse(split)), whole, 1e-12)
    assert counts["trade_tracking"] == len(whole["trade_tracking"])
    stale = whole["trade_tracking"][whole["trade_tracking"]["is_open"].astype(bool)]
    assert (stale["status_date"] == pd.Timestamp(C)).all()  # no open row left behind at B


def test_a_bad_ledger_file_fails_its_check_keeps_its_rows_and_the_others_load(tracking_env, monkeypatch):
    monkeypatch.setenv("TRACKING_PARTITIONS_START", A)
    defs, instance, wh = tracking_env.defs(), tracking_env.instance, tracking_env.warehouse_handle()
    run_trades(defs, instance, A, C)
    before = wh.read_table("trade_tracking")
    path = tracking_env.lake / "trades" / "trades_2018.csv"
    lines = path.read_text().splitlines()
    fields = lines[5].split(",")
    fields[7] = "2018-01-01"  # exit before the entry, on the ledger's 5th trade
    path.write_text("\n".join([*lines[:5], ",".join(fields), *lines[6:]]) + "\n")
    (tracking_env.lake / "trades" / "extra.csv").write_text(
        lines[0] + "\nX1,AAPL,manual,large_cap,2018-06-01,180.5,10,2018-06-29,185.25,target,0.7\n")
    result = run_assets(defs, instance, ("price_data", "routing_decisions", "trade_tracking"), A, C)
    checks = {e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
              for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    failed = checks["trade_files_valid"]
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    text = failed.metadata["errors"].value
    assert "trades_2018.csv, row 5, field 'exit_date'" in text and "is before the entry" in text
    after = wh.read_table("trade_tracking")
    old = before[before["source_file"] == "trades/trades_2018.csv"].reset_index(drop=True)
    kept = after[after["source_file"] == "trades/trades_2018.csv"].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, old)  # the bad file's previous rows stay as they were
    extra = after[after["trade_id"] == "X1"].iloc[0]
    assert extra["profit_loss"] == pytest.approx(47.5) and extra["source_file"] == "trades/extra.csv"


def test_duckdb_and_postgres_publish_the_same_trade_tables(run, postgres_url, monkeypatch):
    for name, value in {"TRACKING_LAKE": str(run.lake), "TRACKING_WAREHOUSE": postgres_url,
                        "TRACKING_LAKE_CACHE": str(run.root / "cache"), "TRACKING_PARTITIONS_START": A}.items():
        monkeypatch.setenv(name, value)
    home = run.root / "home_pg"
    home.mkdir(exist_ok=True)
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        from tracking_pipeline.definitions import build_definitions

        run_trades(build_definitions(), instance, A, C)
    counts = assert_same_tables(trade_tables(open_warehouse(postgres_url)), trade_tables(open_warehouse(run.warehouse)),
                                1e-9)
    assert counts["trade_tracking"] > 30 and counts["strategy_metrics"] > 1000


def test_system_health_states_from_a_crafted_instance(run, tmp_path):
    from tracking_pipeline.defs.monitoring.health import collect_health

    graph = run.defs.get_repository_def().asset_graph
    wh = open_warehouse(run.warehouse)
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        for day in ("2018-07-30", "2018-07-31"):
            instance.report_runless_asset_event(dg.AssetMaterialization("price_data", partition=day))
        instance.report_runless_asset_event(dg.AssetMaterialization("trade_tracking", partition="2018-07-30"))
        instance.report_runless_asset_event(dg.AssetMaterialization("strategy_metrics", partition="2018-07-26"))
        good = collect_health(instance, graph, wh, C).set_index("component")
        assert good.loc["freshness:price_data", "status"] == "GOOD"
        assert good.loc["freshness:trade_tracking", "status"] == "WARNING"  # one session behind
        assert good.loc["freshness:strategy_metrics", "value"] == 3 and \
            good.loc["freshness:strategy_metrics", "status"] == "CRITICAL"
        assert good.loc["freshness:market_features", "detail"] == "never materialized"
        partial = collect_health(instance, run.defs.resolve_job_def("downstream_job").asset_layer.asset_graph, wh, C,
                                 complete=False).set_index("component")  # a run's own graph: the instance's assets
        for name in ("price_data", "trade_tracking", "strategy_metrics"):
            assert partial.loc[f"freshness:{name}", ["status", "detail"]].tolist() == \
                good.loc[f"freshness:{name}", ["status", "detail"]].tolist()
        assert good.loc["rows:trade_tracking", "value"] == wh.scalar("SELECT COUNT(*) FROM trade_tracking")
        assert good.loc["failed_runs_7d", "status"] == "GOOD" and good.loc["overall", "status"] == "CRITICAL"

        instance.report_runless_asset_event(dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey("trade_tracking"), check_name="trade_files_valid", passed=False))
        instance.report_runless_asset_event(dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey("portfolio_daily_nav"), check_name="stale_prices", passed=False,
            severity=dg.AssetCheckSeverity.WARN))
        instance.report_runless_asset_event(dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey("trade_tracking"), check_name="trade_files_valid", passed=True))
        for i in range(3):
            instance.add_run(dg.DagsterRun(job_name="daily_assets_job", run_id=f"failed-{i}",
                                           status=dg.DagsterRunStatus.FAILURE))
        instance.add_run(dg.DagsterRun(job_name="downstream_job", run_id="ok", status=dg.DagsterRunStatus.SUCCESS))
        bad = collect_health(instance, graph, wh, C).set_index("component")
        assert bad.loc["failed_checks_7d", "value"] == 2 and bad.loc["failed_checks_7d", "status"] == "CRITICAL"
        assert "trade_tracking:trade_files_valid" in bad.loc["failed_checks_7d", "detail"]
        assert bad.loc["failed_runs_7d", "value"] == 3 and bad.loc["failed_runs_7d", "status"] == "CRITICAL"
        later = collect_health(instance, graph, wh, C, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=8))
        later = later.set_index("component")
        assert later.loc["failed_runs_7d", "value"] == 0 and later.loc["failed_checks_7d", "value"] == 0


class _Inbox:
    """aiosmtpd handler keeping every message; LOGIN/PLAIN accepted for user 'reports' with SECRET only."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):  # noqa: ANN001, ANN201
        from aiosmtpd.smtp import AuthResult

        ok = auth_data.login == b"reports" and auth_data.password == SECRET.encode()
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _report(run: Run, raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
    return run.defs.resolve_job_def("downstream_job").execute_in_process(
        instance=run.instance, run_config=QUIET, raise_on_error=raise_on_error,
        asset_selection=[dg.AssetKey("system_health"), dg.AssetKey("daily_report")])


def test_daily_report_content_and_delivery_to_a_local_smtp_server(run, monkeypatch, caplog):
    from aiosmtpd.controller import Controller

    inbox = _Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=inbox.authenticate,
                            auth_require_tls=False)
    controller.start()
    monkeypatch.setenv("TRACKING_SMTP_URL", f"smtp://reports:{SECRET}@127.0.0.1:{port}")
    monkeypatch.setenv("TRACKING_REPORT_TO", "desk@example.com, risk@example.com")
    try:
        result = _report(run)
    finally:
        controller.stop()
    wh = open_warehouse(run.warehouse)
    html = (run.root / "reports" / "daily" / f"{C}.html").read_text()
    assert "&lt;b&gt;Evil &amp; Co&lt;/b&gt; &#34;quoted&#34;" in html and "<b>Evil" not in html  # autoescaped
    nav = wh.query("SELECT n.variant, n.daily_return FROM portfolio_daily_nav n JOIN portfolio_definitions d "
                   "ON d.portfolio_id = n.portfolio_id WHERE n.trade_date = ? AND d.name = ?", [C, HOSTILE])
    assert len(nav) == 3
    for value in nav["daily_return"]:
        assert f"{value * 100:+.2f}%" in html
    opened = wh.query("SELECT symbol FROM trade_tracking WHERE entry_date = ?", [C])["symbol"]
    closed = wh.query("SELECT symbol, profit_loss FROM trade_tracking WHERE exit_date = ?", [C])
    assert f"{len(opened)} opened, {len(closed)} closed" in html
    for row in closed.itertuples():
        assert f"<td>{row.symbol}</td>" in html and f"{row.profit_loss:,.2f}" in html
    for ticker in wh.query("SELECT ticker FROM volume_spike_candidates WHERE trade_date = ?", [C])["ticker"]:
        assert f"<td>{ticker}</td>" in html
    assert "System health" in html and 'id="alerts"' in html
    # delivered: one message to both recipients after a login, text and HTML parts, no secret anywhere
    assert inbox.logins == ["reports"] and len(inbox.messages) == 1
    sender, recipients, content = inbox.messages[0]
    assert recipients == ["desk@example.com", "risk@example.com"] and sender == "tracking-pipeline@localhost"
    message = email.message_from_bytes(content, policy=policy.default)
    assert message["Subject"].startswith(f"tracking_pipeline daily report {C}: ")
    assert message.get_body(("html",)).get_content().splitlines() == html.splitlines()
    assert f"Daily report {C}" in message.get_body(("plain",)).get_content()
    meta = result.asset_materializations_for_node("daily_report")[0].metadata
    assert meta["email"].value == f"2 recipient(s) via smtp://127.0.0.1:{port}"
    logs = "\n".join(str(e.message) for e in result.all_events) + caplog.text
    assert SECRET not in logs and SECRET not in str(meta) and SECRET not in html and SECRET not in content.decode()
    health = result.asset_materializations_for_node("system_health")[0].metadata
    assert health["status"].value in ("GOOD", "WARNING", "CRITICAL")


def test_undeliverable_report_fails_naming_the_server_not_the_password(run, monkeypatch):
    port = _free_port()  # nothing listens there
    monkeypatch.setenv("TRACKING_SMTP_URL", f"smtp://reports:{SECRET}@127.0.0.1:{port}")
    monkeypatch.setenv("TRACKING_REPORT_TO", "desk@example.com")
    report = run.root / "reports" / "daily" / f"{C}.html"
    report.unlink(missing_ok=True)
    result = _report(run, raise_on_error=False)
    assert not result.success
    from tracking_pipeline_tests.helpers import step_failure_messages

    message = "\n".join(step_failure_messages(result))
    assert f"smtp://127.0.0.1:{port}" in message and SECRET not in message
    assert report.is_file() and str(report) in message  # written before the attempt


def test_strategies_page_service_returns_the_tables_of_the_page(run):
    from tracking_pipeline.services.strategies import strategies_page

    _report(run)  # a system_health snapshot
    wh = open_warehouse(run.warehouse)
    page = strategies_page(wh, period_type="90d", metric="win_rate", min_trades=3)
    table = page["strategy_table"]
    stored = wh.read_table("strategy_metrics", "period_end = ? AND period_type = '90d'", [C])
    assert len(table) == len(stored) > 0 and set(table["period_end"]) == {pd.Timestamp(C)}
    top = page["top_performers"]
    detail = stored[(stored["strategy"] != "(all)") & (stored["stock_type"] != "(all)")
                    & (stored["total_trades"] >= 3)]
    assert top["win_rate"].tolist() == sorted(detail["win_rate"], reverse=True)[:len(top)] and len(top) >= 2
    assert page["calibration"]["band"].tolist() == ["high", "medium", "low", "all"]
    assert page["outcomes"]["period_type"].tolist() == ["30d", "90d", "365d", "all"]
    assert len(page["open_trades"]) == wh.scalar("SELECT COUNT(*) FROM trade_tracking WHERE is_open") > 0
    assert page["candidates"]["trade_date"].max() <= pd.Timestamp(C)
    assert "overall" in set(page["health"]["component"])
    empty = strategies_page(open_warehouse(str(run.root / "empty.duckdb")))
    assert all(frame.empty for frame in empty.values()) and "strategy_table" in empty
    np.testing.assert_array_equal(sorted(empty), sorted(page))
