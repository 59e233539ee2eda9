"""The Performance Tracker app under Streamlit's own test harness (`AppTest`) on a small warehouse: the sidebar and
every tab, KPI cards equal to the stored rows (stored vs live shown), a failing tab isolated, hostile names as text,
and the app reading while a real writer process holds the DuckDB warehouse."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from markupsafe import escape
from streamlit.testing.v1 import AppTest

from tracking_pipeline.app.page import TABS
from tracking_pipeline.reporting.html import fmt
from tracking_pipeline.services import tracker
from tracking_pipeline.services.performance import get_metrics
from tracking_pipeline_tests.tracker_env import HOSTILE_NAME, tracker_env, tracker_settings  # noqa: F401

MAIN = str(Path(__file__).resolve().parent.parent / "tracking_pipeline" / "app" / "main.py")
CARD = re.compile(r'<div class="kpi" data-metric="([a-z_]+)" data-series="([^"]+)" data-value="([^"]*)">\s*'
                  r'<div class="label">[^<]*</div>\s*<div class="value[^"]*">([^<]*)</div>')


def app() -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def ids(env) -> dict[str, int]:  # noqa: ANN001
    frame = tracker.portfolio_list(env.handle())
    return dict(zip(frame["name"], frame["portfolio_id"].astype(int)))


def select(at: AppTest, portfolio_id: int, start=None, end=None, timeframe=None, tab=None) -> AppTest:  # noqa: ANN001
    at.sidebar.multiselect(key="portfolios").set_value([portfolio_id])
    if start is not None:
        at.sidebar.date_input(key="date_range").set_value((start, end))
    if timeframe is not None:
        at.sidebar.selectbox(key="timeframe").set_value(timeframe)
    if tab is not None:
        at.session_state["tab"] = tab
    at.run()
    assert not at.exception, at.exception
    return at


def page_html(at: AppTest) -> str:
    return "\n".join(h.value for h in at.html)


def cards(at: AppTest) -> dict[tuple[str, str], tuple[str, str]]:
    return {(series, metric): (value, text) for metric, series, value, text in CARD.findall(page_html(at))}


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def test_dashboard_cards_equal_the_stored_rows_and_say_stored_or_live(tracker_settings):
    env = tracker_settings
    wh = env.handle()
    pid = ids(env)["Balanced 60/40"]
    at = select(app(), pid)
    stored = tracker.stored_metrics(wh, [pid], ["all"]).set_index("variant")
    shown = cards(at)
    assert {s for s, _ in shown} == {"raw", "conservative", "trend_regime_v2", "benchmark"}
    for (series, metric), (value, text) in shown.items():
        want = stored.at[series, metric]
        assert text == fmt(want, "num" if metric.endswith("ratio") else "pct"), (series, metric)
        assert value == ("" if pd.isna(want) else repr(float(want))), (series, metric)
    assert page_html(at).count('class="badge badge-stored"') == 4 and 'class="badge badge-live"' not in page_html(at)
    assert any("Data as of 2019-06-28" in c.value for c in at.caption)

    # a range that is no stored period: computed live from the stored NAV by the same code
    at = select(at, pid, pd.Timestamp("2019-02-05").date(), pd.Timestamp("2019-05-17").date())
    live = cards(at)
    assert page_html(at).count('class="badge badge-live"') == 4
    for series in ("raw", "benchmark"):
        want = get_metrics(wh, pid, series, "2019-02-05", "2019-05-17", use_table=False)
        for metric in tracker.KPIS:
            value = want[metric]
            assert live[(series, metric)][0] == ("" if value is None else repr(float(value))), (series, metric)

    # a calendar month is a stored period: the month row (no CAGR under a year)
    at = select(at, pid, pd.Timestamp("2019-03-01").date(), pd.Timestamp("2019-03-31").date())
    month = tracker.stored_metrics(wh, [pid], ["month"])
    march = month[(month["variant"] == "raw") & (month["period_start"] == "2019-03-01")].iloc[0]
    assert cards(at)[("raw", "max_drawdown")][0] == repr(float(march["max_drawdown"]))
    assert cards(at)[("raw", "cagr")][1] == "–"
    assert 'class="badge badge-stored"' in page_html(at)


@pytest.mark.parametrize("timeframe", ["daily", "weekly", "monthly"])
def test_every_tab_renders_without_error(tracker_settings, timeframe):
    env = tracker_settings
    pid = ids(env)["Tech Leaders"]
    at = app()
    expected = {
        "Dashboard": ["data-metric=\"sharpe_ratio\""], "Comparison": ["Aggregate metrics", "Last 12 months"],
        "Annual": ["2019", "YTD"], "Monthly": ["Jan", "Dec"], "Signals": ["Target equity", "allocation changes"],
        "Risk": ["Weighted beta", "Stress tests", "Sector exposure"], "Export": ["NAV rows"], "Strategies": [],
    }
    for tab in TABS:
        at = select(at, pid, timeframe=timeframe, tab=tab)
        assert not errors(at), (tab, errors(at))
        text = page_html(at) + "\n".join(m.value for m in at.markdown)
        for needle in expected[tab]:
            assert needle in text, (tab, needle)
        if tab == "Comparison":
            rows = {"daily": "2019-06-28", "weekly": "2019-W26", "monthly": "Jun 2019"}[timeframe]
            assert rows in text
        if tab == "Export":
            assert [b.label for b in at.get("download_button")] == ["NAV (CSV)", "Metrics (CSV)"] or len(
                at.get("download_button")) == 2


def test_a_failing_tab_shows_its_error_and_the_others_keep_working(tracker_settings, monkeypatch):
    pid = ids(tracker_settings)["Tech Leaders"]

    def broken(*args, **kwargs):
        raise RuntimeError("annual table exploded <b>here</b>")

    monkeypatch.setattr(tracker, "annual_table", broken)
    at = select(app(), pid, tab="Annual")
    assert any("could not be shown (RuntimeError)" in e for e in errors(at))
    assert any("annual table exploded <b>here</b>" in c.value for c in at.code)
    at = select(at, pid, tab="Dashboard")
    assert not errors(at) and cards(at)


def test_hostile_portfolio_name_is_text(tracker_settings):
    pid = ids(tracker_settings)[HOSTILE_NAME]
    at = select(app(), pid, tab="Dashboard")
    body = page_html(at)
    assert str(escape(HOSTILE_NAME)) in body
    assert "<script>alert" not in body and "<img src=x" not in body and "<iframe" not in body
    assert not errors(at)


WRITER = textwrap.dedent("""
    import sys, time, json
    import pandas as pd
    from tracking_pipeline.warehouse import Write
    from tracking_pipeline.warehouse.duckdb_backend import DuckDBWarehouse
    wh = DuckDBWarehouse(sys.argv[1])
    mode = sys.argv[2]
    if mode == "hold":
        with wh.session():
            wh.replace(Write("alerts", pd.DataFrame([{"alert_id": "writer", "created_at": pd.Timestamp("2020-01-01"),
                                                      "run_id": "r", "job_name": "j", "step_key": "s",
                                                      "error": "held"}]), {"alert_id": ["writer"]}))
            print("locked", flush=True)
            time.sleep(float(sys.argv[3]))
    else:
        waits = []
        for i in range(int(sys.argv[3])):
            t0 = time.monotonic()
            with wh.session():
                waits.append(time.monotonic() - t0)
                wh.replace(Write("alerts", pd.DataFrame([{"alert_id": f"w{i}", "created_at": pd.Timestamp("2020-01-01"),
                                                          "run_id": "r", "job_name": "j", "step_key": "s",
                                                          "error": "x"}]), {"alert_id": [f"w{i}"]}))
            time.sleep(0.05)
        print(json.dumps(waits), flush=True)
""")


def test_app_reads_while_a_writer_holds_the_duckdb_warehouse(tracker_settings, tmp_path, monkeypatch):
    """A pipeline process holding the warehouse neither blocks the app nor makes it fail: the app shows its last
    copy and says the pipeline is writing; the writer waits at most for a file copy."""
    import json

    from tracking_pipeline.app.snapshot import SnapshotReader

    warehouse = tmp_path / "busy.duckdb"
    shutil.copy(tracker_settings.warehouse, warehouse)
    monkeypatch.setenv("TRACKING_WAREHOUSE", str(warehouse))
    monkeypatch.setenv("TRACKING_APP_SNAPSHOTS", str(tmp_path / "copies"))
    pid = ids(tracker_settings)["Tech Leaders"]
    at = select(app(), pid)
    assert cards(at)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(warehouse), "hold", "8"], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert writer.stdout.readline().strip() == "locked"
        time.sleep(1.2)  # past the reader's minimum refresh interval: the app tries the lock and finds it held
        t0 = time.monotonic()
        at = select(at, pid, tab="Comparison")
        busy_seconds = time.monotonic() - t0
        assert not errors(at)
        assert any("the pipeline is writing" in c.value for c in at.caption), [c.value for c in at.caption]
        assert busy_seconds < 6, busy_seconds  # the writer holds the lock 8 s: the app did not wait for it
    finally:
        writer.wait(timeout=60)
    at = select(at, pid, tab="Dashboard")
    assert not any("the pipeline is writing" in c.value for c in at.caption)
    assert cards(at)

    # the writer's side: 40 write sessions while the app refreshes its copy as fast as it can
    reader = SnapshotReader(warehouse, tmp_path / "copies2", min_interval=0.0)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(warehouse), "loop", "40"], stdout=subprocess.PIPE,
                              text=True)
    copies = 0
    while writer.poll() is None:
        before = reader.view().version
        copies += reader.view().version != before
    waits = json.loads(writer.stdout.read())
    reader.close()
    assert writer.returncode == 0 and len(waits) == 40
    assert max(waits) < 1.0, waits  # never blocked for more than a file copy
    print(f"writer lock waits: max {max(waits) * 1000:.0f} ms, median {sorted(waits)[20] * 1000:.0f} ms; "
          f"app copies taken meanwhile: {copies}")


TRACKER_TABLES = ("portfolio_definitions", "portfolio_holdings", "price_data", "portfolio_daily_nav",
                  "portfolio_metrics", "overlay_signals", "portfolio_snapshots", "portfolio_stress_tests",
                  "rebalancing_events", "portfolio_rolling_metrics")


def test_every_tab_on_postgresql(tracker_settings, postgres_url, monkeypatch):
    """The same app on a PostgreSQL warehouse (read directly): the tables the app reads, copied from the test
    warehouse; every tab renders and the cards equal the stored rows."""
    from tracking_pipeline.warehouse import Write, open_warehouse

    source, target = tracker_settings.handle(), open_warehouse(postgres_url)
    target.replace(*(Write(name, source.read_table(name)) for name in TRACKER_TABLES))
    monkeypatch.setenv("TRACKING_WAREHOUSE", postgres_url)
    pid = ids(tracker_settings)["Diversified Large Cap"]
    at = app()
    for tab in TABS:
        at = select(at, pid, tab=tab)
        assert not errors(at), (tab, errors(at))
    at = select(at, pid, tab="Dashboard")
    stored = tracker.stored_metrics(target, [pid], ["all"]).set_index("variant")
    shown = cards(at)
    assert len(shown) == 24
    for (series, metric), (value, _) in shown.items():
        want = stored.at[series, metric]
        assert value == ("" if pd.isna(want) else repr(float(want))), (series, metric)
    assert any("postgresql" in c.value and "Data as of 2019-06-28" in c.value for c in at.caption)
