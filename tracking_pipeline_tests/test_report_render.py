"""The report read and rendered a batch of portfolios at a time (bounded memory), here or in parallel worker
processes, is the report made all at once, byte for byte, whatever the batch size and number of workers; what a
batch makes once for all its pages (overlay changes, CSV exports) equals each page's own."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl

from tracking_pipeline.reporting.performance import (CHANGES_SHOWN, ReportInputs, changes_view, decision_facts,
                                                     report_files, worker_count)
from tracking_pipeline.services import tracker
from tracking_pipeline_tests.tracker_env import tracker_env  # noqa: F401 - the session fixture


def test_report_in_batches_equals_report_at_once(tracker_env):  # noqa: F811
    wh = tracker_env.handle()
    made = {(batch, workers): list(report_files(wh, 0.02, generated="2026-01-01 00:00 UTC", url="http://app",
                                                threshold=0.05, batch=batch, workers=workers))
            for batch, workers in ((1000, 1), (4, 1), (1, 1), (2, 2))}
    assert worker_count(3, 2) == 2 and worker_count(1, 2) == 1  # (2, 2) above ran in two worker processes
    whole = made[(1000, 1)]
    pages = [f for f in whole if f.kind == "page" and f.name != "index.html"]
    assert len(pages) >= 5 and all(b"chart-cumulative" in f.body for f in pages)
    assert whole[0].kind == "script" and whole[-1].name == "index.html"
    assert all(f"{f.name}".encode() in whole[-1].body for f in pages)
    for key in ((4, 1), (1, 1), (2, 2)):
        assert [(f.name, f.kind, f.content_type) for f in made[key]] == \
               [(f.name, f.kind, f.content_type) for f in whole]
        for a, b in zip(whole, made[key]):
            assert a.body == b.body, (key, a.name)


def _inputs(**frames: pd.DataFrame) -> ReportInputs:
    empty = {name: pd.DataFrame() for name in ("portfolios", "nav", "metrics", "windows", "measured", "signals",
                                               "snapshots", "stress", "rebalancing", "rolling")}
    return ReportInputs(**{**empty, **frames}, latest={})


def test_overlay_views_made_once_per_batch_equal_each_page_made_alone():
    """A batch makes an overlay's decision and its newest changes once; every page (first NAV day) still gets what
    filtering the signals from its own first day gives, with fewer or more changes than the page shows."""
    days = pd.bdate_range("2020-01-01", periods=300)
    rng = np.random.default_rng(7)
    actual = np.round(rng.uniform(0.2, 1.0, 300), 2)
    signals = pd.DataFrame({"model": "m", "trade_date": days, "target_allocation": actual,
                            "actual_allocation": actual, "trade_required": rng.random(300) < 0.4,
                            "signals": None, "impacts": '{"vix": -0.05, "trend": 0.1}'})
    signals = pd.concat([signals, signals.assign(model="other", trade_required=False)]).sample(frac=1, random_state=3)
    inp = _inputs(signals=signals)
    firsts = [days[0], days[-40], days[120], days[-1], days[-150], days[-1] + pd.Timedelta(days=1), days[0]]
    counts = []
    for first in firsts:
        got = inp.overlay("m", first)
        changes = tracker.allocation_changes(signals[signals["trade_date"] >= first], "m")
        counts.append(len(changes))
        assert got["changes"] == changes_view(changes, CHANGES_SHOWN), first
        assert (got["n_changes"], got["shown"]) == (len(changes), min(len(changes), CHANGES_SHOWN))
        assert got["facts"] == decision_facts(tracker.latest_decision(signals, "m"))
    assert min(counts) == 0 and max(counts) > CHANGES_SHOWN and any(0 < c <= CHANGES_SHOWN for c in counts)
    assert inp.overlay("absent", days[0]) is None


def test_csv_exports_split_from_the_batch_equal_each_portfolio_written_alone():
    nav = pd.DataFrame({"portfolio_id": [3, 3, 1, 3, 1], "variant": ["raw", "raw", "raw", "m", "raw"],
                        "trade_date": pd.to_datetime(["2020-01-02", "2020-01-03", "2020-01-02", "2020-01-02",
                                                      "2020-01-03"]),
                        "nav": [100.0, 101.5, 50.0, 100.0, np.nan], "equity_allocation": [np.nan, np.nan, 1.0, 0.5,
                                                                                          0.25]})
    inp = _inputs(nav=nav)
    for pid in (1, 3, 7):
        alone = pl.from_pandas(nav[nav["portfolio_id"] == pid].reset_index(drop=True))
        expected = alone.with_columns(pl.col(pl.Datetime).dt.date()).write_csv().encode("utf-8")
        assert inp.csv("nav", pid) == expected
    assert inp.csv("nav", 3).decode().splitlines() == [
        "portfolio_id,variant,trade_date,nav,equity_allocation", "3,raw,2020-01-02,100.0,",
        "3,raw,2020-01-03,101.5,", "3,m,2020-01-02,100.0,0.5"]
    assert inp.csv("nav", 7).decode() == "portfolio_id,variant,trade_date,nav,equity_allocation\n"
