"""The Performance Tracker in a real headless Chromium: the HTML report opened from its folder and the app served
on a free port. No console error, every Plotly chart drawn, nothing fetched from outside (file:// and 127.0.0.1
only), the stored numbers in the DOM, the hostile portfolio name and description inert. Screenshots are kept as
test artifacts (their paths are printed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from tracking_pipeline.reporting.html import fmt
from tracking_pipeline.services import tracker
from tracking_pipeline_tests.browser import PLOTS_DRAWN, Browser, chromium, free_port
from tracking_pipeline_tests.tracker_env import (  # noqa: F401
    HOSTILE_DESCRIPTION, HOSTILE_NAME, tracker_env, tracker_settings,
)

APP_TABS = ["Dashboard", "Comparison", "Annual", "Monthly", "Signals", "Risk", "Export", "Strategies"]
CHARTS_PER_TAB = {"Dashboard": 2, "Signals": 4, "Risk": 5}
REQUESTS = "performance.getEntriesByType('resource').map(e => e.name).concat([location.href])"
CARDS = ("[...document.querySelectorAll('.kpi')].map(k => [k.dataset.series, k.dataset.metric, k.dataset.value,"
         " k.querySelector('.value').innerText])")


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chromium()
    folder = tmp_path_factory.mktemp("screenshots")
    yield folder
    print(f"\nscreenshots kept in {folder}: " + ", ".join(sorted(p.name for p in folder.glob("*.png"))))


def test_report_pages_draw_every_chart_with_the_stored_numbers(tracker_env, shots):
    reports = tracker_env.reports
    wh = tracker_env.handle()
    listed = tracker.portfolio_list(wh)
    stored = tracker.stored_metrics(wh, listed["portfolio_id"], ["all"])
    pages = sorted(p for p in reports.glob("*.html") if p.name != "index.html")
    assert len(pages) == len(listed) and (reports / "index.html").is_file()
    assert len(list(reports.glob("plotly-*.min.js"))) == 1 and len(list(reports.glob("*.csv"))) == 2 * len(pages)
    with Browser() as browser:
        browser.open((reports / "index.html").as_uri())
        text = browser.evaluate("document.body.innerText")
        for name in listed["name"]:
            assert name in text
        assert browser.problems() == []
        browser.screenshot(shots / "report_index.png")
        for page in pages:
            browser.open(page.as_uri())
            drawn = browser.wait_for(PLOTS_DRAWN % ("[data-chart]", 5), timeout=60)
            assert drawn == browser.evaluate("document.querySelectorAll('[data-chart]').length")
            assert browser.problems() == [], page.name
            outside = [u for u in browser.evaluate(REQUESTS) if not u.startswith("file://")]
            assert outside == [], outside
            name = browser.evaluate("document.getElementById('portfolio-name').innerText")
            pid = int(listed.loc[listed["name"] == name, "portfolio_id"].iloc[0])
            mine = stored[stored["portfolio_id"] == pid].set_index("variant")
            cards = browser.evaluate(CARDS)
            assert len(cards) == 6 * len(mine)
            for series, metric, value, shown in cards:
                want = mine.at[series, metric]
                assert value == ("" if pd.isna(want) else repr(float(want))), (page.name, series, metric)
                assert shown == fmt(want, "num" if metric.endswith("ratio") else "pct")
            if name == HOSTILE_NAME:
                assert browser.evaluate("document.getElementById('portfolio-description').innerText") \
                    == HOSTILE_DESCRIPTION
                assert browser.evaluate("document.querySelectorAll('img[src=\"x\"], iframe').length") == 0
                browser.screenshot(shots / "report_hostile.png")
            if name == "Balanced 60/40":
                browser.screenshot(shots / "report_balanced_60_40.png")
    assert (shots / "report_balanced_60_40.png").stat().st_size > 50_000


@pytest.fixture
def served_app(tracker_settings, tmp_path):
    """The app served as `make dashboard` serves it (`python -m tracking_pipeline.app`), on a free port of
    127.0.0.1."""
    port = free_port()
    log = open(tmp_path / "streamlit.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "tracking_pipeline.app", "--server.port", str(port),
                             "--server.address", "127.0.0.1"], env=os.environ.copy(), stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    break
        except OSError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "streamlit.log").read_text()
        time.sleep(0.3)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


IDLE = "!document.querySelector('[data-testid=\"stStatusWidget\"]')"
TAB = "[...document.querySelectorAll('[role=tab]')].find(t => t.innerText.trim() === %s)"


def select_tab(browser: Browser, tab: str) -> None:
    """Click a tab until it is the selected one (a click during a re-render may land on a moving layout)."""
    selected = f"({TAB % json.dumps(tab)}).getAttribute('aria-selected') === 'true'"
    for _ in range(10):
        browser.click(TAB % json.dumps(tab))
        try:
            browser.wait_for(selected, timeout=5)
            break
        except AssertionError:
            continue
    assert browser.evaluate(selected), f"could not select the {tab} tab"
    time.sleep(0.5)


def test_app_served_in_chromium_every_tab(served_app, shots):
    with Browser(1440, 2000) as browser:
        browser.open(served_app)
        browser.wait_for(PLOTS_DRAWN % ("[data-testid='stPlotlyChart']", 2), timeout=120)
        browser.wait_for(IDLE, timeout=60)
        # the first portfolio by name is the hostile one: shown as text, nothing executed or injected
        text = browser.evaluate("document.body.innerText")
        assert HOSTILE_NAME in text and HOSTILE_DESCRIPTION in text
        assert browser.evaluate("document.querySelectorAll('img[src=\"x\"], iframe[src^=\"javascript\"]').length") == 0
        assert "Data as of 2019-06-28" in text
        for tab in APP_TABS:
            select_tab(browser, tab)
            browser.wait_for(IDLE, timeout=90)
            needed = CHARTS_PER_TAB.get(tab)
            if needed:
                browser.wait_for(PLOTS_DRAWN % ("[data-testid='stPlotlyChart']", needed), timeout=90)
            text = browser.evaluate("document.body.innerText")
            assert "could not be shown" not in text and "Traceback" not in text, (tab, text[:3000])
            browser.screenshot(shots / f"app_{tab.lower()}.png")
        problems = browser.problems()
        assert problems == [], problems
        outside = [u for u in browser.evaluate(REQUESTS) if not u.startswith(served_app)]
        assert outside == [], outside
        assert browser.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
