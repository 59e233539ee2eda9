"""The HTML dashboard rendered by a real headless Chromium: the DOM it builds carries the stored numbers."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

import pytest

from tracking_pipeline_tests.helpers import run_chain

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "Chromium not installed (make test installs Debian's chromium package)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def render(url: str, *extra: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, url],
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_dashboard_pages_render_stored_numbers(tracking_env, tmp_path):
    run_chain(tracking_env.defs(), tracking_env.instance, "2018-01-02", "2019-06-28")
    wh = tracking_env.warehouse_handle()
    reports = tmp_path / "reports"
    index_dom = render((reports / "index.html").as_uri(), "--dump-dom")
    defs = wh.read_table("portfolio_definitions", "is_active")
    for name in defs["name"]:
        assert name.replace("&", "&amp;") in index_dom
    page = reports / "balanced_60_40.html"
    dom = render(page.as_uri(), "--dump-dom")
    nav = wh.query("SELECT n.trade_date, n.nav FROM portfolio_daily_nav n JOIN portfolio_definitions d "
                   "ON d.portfolio_id = n.portfolio_id WHERE d.name = 'Balanced 60/40' AND n.variant = 'raw' "
                   "ORDER BY n.trade_date")
    last_nav = float(nav["nav"].iloc[-1])
    total = last_nav / 100.0 - 1
    assert f"{last_nav:,.2f}" in dom
    assert f"{total * 100:.2f}%" in dom
    assert len(re.findall(r"<polyline", dom)) == 6  # growth and drawdown of raw + two overlays
    shot = tmp_path / "page.png"
    render(page.as_uri(), f"--screenshot={shot}", "--window-size=1280,1600")
    assert shot.stat().st_size > 20_000
