#!/usr/bin/env python
"""Screenshots of the Performance Tracker for the README: the app (served as `make dashboard` serves it, on a free
port) showing one portfolio's Dashboard tab, and that portfolio's report page, in headless Chromium.

    python scripts/tracker_screenshots.py [--portfolio "Balanced 60/40"] [--out docs/img]

Reads the configured warehouse and reports (TRACKING_WAREHOUSE, TRACKING_REPORTS; after `make demo`, the defaults).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracking_pipeline.reporting.performance import page_file  # noqa: E402
from tracking_pipeline.services.tracker import portfolio_list  # noqa: E402
from tracking_pipeline.settings import load_settings  # noqa: E402
from tracking_pipeline.warehouse import open_warehouse  # noqa: E402
from tracking_pipeline_tests.browser import PLOTS_DRAWN, Browser, free_port  # noqa: E402

IDLE = "!document.querySelector('[data-testid=\"stStatusWidget\"]')"


def serve(port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "tracking_pipeline.app", "--server.port", str(port),
                             "--server.address", "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return proc
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise SystemExit("the app did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--portfolio", default="Balanced 60/40")
    parser.add_argument("--out", default=str(ROOT / "docs" / "img"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = load_settings()
    listed = portfolio_list(open_warehouse(settings.warehouse))
    row = listed[listed["name"] == args.portfolio].iloc[0]
    port = free_port()
    proc = serve(port)
    try:
        with Browser(1440, 1900) as browser:
            browser.open(f"http://127.0.0.1:{port}/?portfolio={urllib.parse.quote(args.portfolio)}")
            browser.wait_for(PLOTS_DRAWN % ("[data-testid='stPlotlyChart']", 2), timeout=120)
            browser.evaluate("document.activeElement && document.activeElement.blur()")
            browser.wait_for(IDLE, 120)
            time.sleep(1.0)
            print(browser.screenshot(out / "tracker.png"))
        page = Path(settings.reports) / page_file(row["name"], int(row["portfolio_id"]))
        with Browser(1440, 1000) as browser:
            browser.open(page.resolve().as_uri())
            browser.wait_for(PLOTS_DRAWN % ("[data-chart]", 5), timeout=60)
            print(browser.screenshot(out / "report.png"))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TRACKING_APP_SNAPSHOTS", str(Path("/tmp") / "tracker_screenshots"))
    sys.exit(main())
