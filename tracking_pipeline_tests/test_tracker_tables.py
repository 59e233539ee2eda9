"""The Performance Tracker's table builders (services/tracker.py) and formatting (reporting/html.py) against values
computed by hand: annual and monthly tables from stored rows, the comparison and aggregate tables with the best value
marked, crisis windows measured by the pipeline's metric code, and the escaping of data in charts and pages."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import polars as pl
import pytest

from tracking_pipeline.reporting import charts
from tracking_pipeline.reporting.html import fmt, kpi_cards, render, table_view
from tracking_pipeline.services import tracker


def metric_rows(rows: list[tuple]) -> pd.DataFrame:
    """portfolio_metrics-like rows: (variant, period_type, period_start, period_end, total_return)."""
    frame = pd.DataFrame(rows, columns=["variant", "period_type", "period_start", "period_end", "total_return"])
    frame["period_start"] = pd.to_datetime(frame["period_start"])
    frame["period_end"] = pd.to_datetime(frame["period_end"])
    return frame.assign(portfolio_id=1)


YEARS = metric_rows([
    ("raw", "year", "2018-07-03", "2018-12-31", -0.0412),
    ("raw", "year", "2019-01-02", "2019-06-28", 0.1875),
    ("conservative", "year", "2018-07-03", "2018-12-31", -0.0150),
    ("conservative", "year", "2019-01-02", "2019-06-28", 0.1875),
    ("benchmark", "year", "2018-07-03", "2018-12-31", -0.0633),
    ("benchmark", "year", "2019-01-02", "2019-06-28", 0.1824),
])


def test_annual_table_newest_first_with_partial_year_notes_and_best():
    table = tracker.annual_table(YEARS, ["raw", "conservative", "benchmark"])
    assert list(table.index) == ["2019", "2018"]
    assert list(table.columns) == ["raw", "conservative", "benchmark", "note"]
    assert table.loc["2018", "raw"] == -0.0412 and table.loc["2019", "benchmark"] == 0.1824
    assert table["note"].tolist() == ["YTD", "from 2018-07-03"]
    best = tracker.best_mask(table.drop(columns="note"))
    assert best.loc["2018"].tolist() == [False, True, False]
    assert best.loc["2019"].tolist() == [True, True, False]  # a tie marks both


def test_monthly_table_is_years_by_months_with_the_stored_year():
    rows = pd.concat([YEARS, metric_rows([
        ("raw", "month", "2018-11-01", "2018-11-30", 0.0125),
        ("raw", "month", "2018-12-03", "2018-12-31", -0.0871),
        ("raw", "month", "2019-01-02", "2019-01-31", 0.0802),
        ("benchmark", "month", "2019-01-02", "2019-01-31", 0.0801),
    ])])
    table = tracker.monthly_table(rows, "raw")
    assert list(table.columns) == [*tracker.MONTHS, "Year"]
    assert list(table.index) == [2018, 2019]
    assert table.loc[2018, "Nov"] == 0.0125 and table.loc[2018, "Dec"] == -0.0871
    assert table.loc[2019, "Jan"] == 0.0802 and table.loc[2019, "Year"] == 0.1875
    assert table.loc[2018, "Year"] == -0.0412
    assert table.loc[2018, ["Jan", "Feb", "Oct"]].isna().all() and table.loc[2019, "Feb":"Dec"].isna().all()
    view = table_view(table, "pct", heat=True)
    cells = {c["text"]: c["style"] for row in view["rows"] for c in row["cells"]}
    assert cells["1.25%"].startswith("background: rgba(16, 185, 129") and "239, 68, 68" in cells["-8.71%"]
    assert cells["–"] == ""
    partial = table_view(table, "pct", best=pd.DataFrame({"Jan": [True, False]}, index=table.index))
    assert [[c["css"] for c in row["cells"]][:2] for row in partial["rows"]] == [["best", ""], ["", ""]]


def test_comparison_table_and_best_per_period():
    rows = pd.concat([YEARS, metric_rows([
        ("raw", "all", "2018-07-03", "2019-06-28", 0.1386),
        ("conservative", "all", "2018-07-03", "2019-06-28", 0.1697),
        ("benchmark", "all", "2018-07-03", "2019-06-28", 0.1076),
        ("raw", "ytd", "2019-01-02", "2019-06-28", 0.1875),
        ("conservative", "ytd", "2019-01-02", "2019-06-28", 0.1875),
        ("benchmark", "ytd", "2019-01-02", "2019-06-28", 0.1824),
    ])])
    last_year = pd.DataFrame({"variant": ["raw", "conservative", "benchmark"], "total_return": [0.05, 0.04, 0.09]})
    table = tracker.comparison_table(rows, last_year, ["raw", "conservative", "benchmark"])
    assert list(table.index) == ["All", "YTD 2019", "Last 12 months", "2019", "2018"]
    assert table.loc["All"].tolist() == [0.1386, 0.1697, 0.1076]
    assert table.loc["Last 12 months"].tolist() == [0.05, 0.04, 0.09]
    best = tracker.best_mask(table)
    assert best.idxmax(axis=1).to_dict() == {"All": "conservative", "YTD 2019": "raw", "Last 12 months": "benchmark",
                                            "2019": "raw", "2018": "conservative"}
    assert best.loc["YTD 2019"].tolist() == [True, True, False]


def test_aggregate_table_marks_the_best_in_each_metric_direction():
    metrics = pd.DataFrame({
        "total_return": [0.30, 0.20, 0.25], "cagr": [0.12, 0.08, np.nan], "sharpe_ratio": [0.9, 1.1, 0.7],
        "sortino_ratio": [1.2, 1.6, 1.0], "max_drawdown": [-0.25, -0.10, -0.20], "calmar_ratio": [0.5, 0.8, None],
        "volatility": [0.20, 0.12, 0.16], "beta": [1.1, 0.6, 1.0],
    }, index=["raw", "conservative", "benchmark"])
    table = tracker.aggregate_table(metrics, ["raw", "conservative", "benchmark"],
                                    columns=("total_return", "cagr", "sharpe_ratio", "max_drawdown", "volatility",
                                             "beta"))
    assert table["best"].to_dict() == {"total_return": "raw", "cagr": "raw", "sharpe_ratio": "conservative",
                                       "max_drawdown": "conservative", "volatility": "conservative", "beta": ""}
    assert table.loc["cagr", "benchmark"] != table.loc["cagr", "benchmark"]  # NULL stays missing, never best



def test_tables_leave_out_what_is_not_stored_and_mark_ties():
    """A series without month rows gets an empty month table, a year row without months no table row, a series
    stored in no period no column; a tie marks every tied series and a metric stored for none marks nothing."""
    rows = pd.concat([YEARS, metric_rows([
        ("raw", "month", "2019-02-01", "2019-02-28", 0.02),
        ("conservative", "month", "2019-03-01", "2019-03-29", np.nan),
        ("raw", "all", "2018-07-03", "2019-06-28", 0.1386),
    ])])
    tables = tracker.monthly_tables(rows, ["raw", "conservative", "benchmark", "absent"])
    assert list(tables["raw"].index) == [2019] and tables["raw"].loc[2019, "Feb"] == 0.02
    assert tables["raw"].loc[2019, "Year"] == 0.1875 and np.isnan(tables["raw"].loc[2019, "Jan"])
    assert tables["conservative"].loc[2019].isna().tolist() == [True] * 12 + [False]
    assert tables["benchmark"].empty and list(tables["absent"].columns) == [*tracker.MONTHS, "Year"]
    table = tracker.comparison_table(rows, pd.DataFrame(), ["raw", "absent", "benchmark", "conservative"])
    assert list(table.columns) == ["raw", "benchmark", "conservative"]
    assert list(table.index) == ["All", "YTD", "Last 12 months", "2019", "2018"]
    assert table.loc["All"].isna().tolist() == [False, True, True] and table.loc["Last 12 months"].isna().all()
    metrics = pd.DataFrame({"sharpe_ratio": [1.1, 1.1, 0.7], "volatility": [np.nan, np.nan, np.nan]},
                           index=["raw", "conservative", "benchmark"])
    aggregate = tracker.aggregate_table(metrics, ["raw", "conservative", "benchmark"],
                                        columns=("sharpe_ratio", "volatility"))
    assert aggregate["best"].to_dict() == {"sharpe_ratio": "raw, conservative", "volatility": ""}


@pytest.mark.parametrize("case", ["blocks", "other_days", "shuffled", "ints", "one_series", "empty", "object_days"])
def test_by_day_is_pandas_pivot(case):
    """The reshaped pivot of rows in blocks of the same days equals pandas' pivot, and every other shape falls back
    to it."""
    days = pd.bdate_range("2020-01-01", periods=6)
    rng = np.random.default_rng(3)
    rows = pd.DataFrame({"variant": np.repeat(["raw", "benchmark", "conservative"], 6), "trade_date": np.tile(days, 3),
                         "nav": rng.normal(100, 5, 18)})
    rows.loc[4, "nav"] = np.nan
    if case == "other_days":
        rows = rows.drop(index=[8])
    elif case == "shuffled":
        rows = rows.sample(frac=1, random_state=1)
    elif case == "ints":
        rows["nav"] = np.arange(18)
    elif case == "one_series":
        rows = rows[rows["variant"] == "raw"]
    elif case == "empty":
        rows = rows.iloc[0:0]
    elif case == "object_days":
        rows["trade_date"] = rows["trade_date"].dt.date
    expected = rows.pivot(index="trade_date", columns="variant", values="nav")
    pd.testing.assert_frame_equal(tracker.by_day(rows, "nav"), expected)

def returns_frame() -> pl.DataFrame:
    """Two series of six returns (raw, benchmark) and one starting late (conservative)."""
    days = [dt.date(2020, 2, d) for d in (18, 19, 20, 21, 24, 25, 26)]
    r = [0.01, -0.02, 0.03, -0.05, 0.02, 0.01]
    b = [0.0, 0.01, -0.04, -0.02, 0.0, 0.01]
    rows = []
    for variant, values in (("raw", r), ("benchmark", b)):
        rows += [{"portfolio_id": 7, "variant": variant, "trade_date": days[i + 1], "prev_date": days[i], "r": v,
                  "b": b[i]} for i, v in enumerate(values)]
    rows += [{"portfolio_id": 7, "variant": "conservative", "trade_date": days[i + 1], "prev_date": days[i],
              "r": 0.5 * r[i], "b": b[i]} for i in range(3, 6)]
    return pl.DataFrame(rows)


def test_crisis_window_return_and_drawdown_by_hand():
    windows = pd.DataFrame([{"window": "test crash", "after": dt.date(2020, 2, 19), "through": dt.date(2020, 2, 24),
                             "description": "peak 19th, trough 24th"},
                            {"window": "not covered", "after": dt.date(2019, 1, 2), "through": dt.date(2019, 1, 10),
                             "description": ""}])
    measured = tracker.window_metrics(returns_frame(), windows, 0.0)
    # raw: returns dated the 20th, 21st and 24th (from the NAV of the 19th): NAV 1, 0.98, 1.0094, 0.95893
    table = tracker.crisis_table(measured, windows, ["raw", "conservative", "benchmark"])
    assert table["window"].unique().tolist() == ["test crash"]  # 2019 is outside the data
    assert table["variant"].tolist() == ["raw", "benchmark"]  # conservative has no NAV on the 19th
    raw = table.set_index("variant").loc["raw"]
    assert raw["total_return"] == pytest.approx(0.98 * 1.03 * 0.95 - 1, abs=1e-12)
    assert raw["max_drawdown"] == pytest.approx(0.95893 / 1.0094 - 1, abs=1e-12)  # from the 21st's peak
    assert raw["benchmark_return"] == pytest.approx(1.01 * 0.96 * 0.98 - 1, abs=1e-12)
    assert raw["vs_benchmark"] == pytest.approx(0.98 * 1.03 * 0.95 - 1.01 * 0.96 * 0.98, abs=1e-12)
    bench = table.set_index("variant").loc["benchmark"]
    assert bench["max_drawdown"] == pytest.approx(0.96 * 0.98 - 1, abs=1e-12)  # the 20th's peak of 1.01
    assert list(tracker.crisis_windows()["window"][:3]) == ["2018 Q4 sell-off", "COVID crash", "2022 bear market"]


def test_window_needs_nav_on_both_ends():
    windows = pd.DataFrame([{"window": "late", "after": dt.date(2020, 2, 21), "through": dt.date(2020, 2, 26)}])
    measured = tracker.window_metrics(returns_frame(), windows, 0.0).set_index("variant")
    # conservative's first NAV is the 21st: its returns dated the 24th..26th are half of raw's
    assert sorted(measured.index) == ["benchmark", "conservative", "raw"]
    assert measured.loc["conservative", "total_return"] == pytest.approx(0.975 * 1.01 * 1.005 - 1, abs=1e-12)
    assert measured.loc["raw", "total_return"] == pytest.approx(0.95 * 1.02 * 1.01 - 1, abs=1e-12)


def test_period_labels_and_daily_table():
    starts = pd.Series(pd.to_datetime(["2021-01-01", "2019-03-14"]))
    assert tracker.period_label(starts, "week").tolist() == ["2020-W53", "2019-W11"]
    assert tracker.period_label(starts, "month").tolist() == ["Jan 2021", "Mar 2019"]
    assert tracker.period_label(starts, "quarter").tolist() == ["Q1 2021", "Q1 2019"]
    nav = pd.DataFrame({"variant": ["raw"] * 3 + ["benchmark"] * 3,
                        "trade_date": pd.to_datetime(["2019-03-13", "2019-03-14", "2019-03-15"] * 2),
                        "daily_return": [0.0, 0.01, -0.02, 0.0, 0.005, 0.0]})
    table = tracker.daily_table(nav, ["raw", "benchmark"])
    assert table.index.tolist() == ["2019-03-15", "2019-03-14"]
    assert table.loc["2019-03-14"].tolist() == [0.01, 0.005]


def test_allocation_changes_and_latest_decision():
    signals = pd.DataFrame({
        "model": ["m"] * 4, "trade_date": pd.to_datetime(["2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07"]),
        "target_allocation": [1.0, 0.62, 0.6, 0.9], "actual_allocation": [1.0, 0.62, 0.62, 0.9],
        "trade_required": [False, True, False, True],
        "signals": [None, None, None, json.dumps({"base_allocation": 0.8, "source": "model"})],
        "impacts": [None, None, None, json.dumps({"vix": -0.05, "trend": 0.15, "rsi": 0.0})],
    })
    changes = tracker.allocation_changes(signals, "m")
    assert changes["trade_date"].dt.strftime("%Y-%m-%d").tolist() == ["2020-01-07", "2020-01-03"]
    assert changes["change"].tolist() == pytest.approx([0.28, -0.38])
    decision = tracker.latest_decision(signals, "m")
    assert decision["impacts"] == [("trend", 0.15), ("vix", -0.05), ("rsi", 0.0)]
    assert decision["signals"]["base_allocation"] == 0.8 and decision["actual"] == 0.9


def test_formatting_has_no_negative_zero_and_cards_keep_the_stored_value():
    assert fmt(-0.00001) == "0.00%" and fmt(-0.0) == "0.00%" and fmt(0.123456) == "12.35%"
    assert fmt(0.05, "spct") == "+5.00%" and fmt(-0.05, "spct") == "-5.00%" and fmt(-0.001, "num") == "0.00"
    assert fmt(None) == "–" and fmt(float("nan"), "num") == "–" and fmt(float("inf")) == "–"
    assert fmt(pd.Timestamp("2019-03-14"), "day") == "2019-03-14" and fmt(1234.4, "int") == "1,234"
    cards = kpi_cards({"cagr": 0.1234567, "sharpe_ratio": None, "max_drawdown": -0.2}, ["cagr", "sharpe_ratio",
                                                                                        "max_drawdown"])
    assert [c["text"] for c in cards] == ["12.35%", "–", "-20.00%"]
    assert cards[0]["value"] == repr(0.1234567) and cards[1]["value"] == ""
    assert [c["css"] for c in cards] == ["positive", "", "negative"]


HOSTILE = '</script><script>alert(1)</script><img src=x onerror=alert(2)> & "q"'


def test_hostile_text_is_inert_in_charts_and_templates():
    frame = pd.DataFrame({"raw": [0.0, 0.1] * 15}, index=pd.bdate_range("2020-01-01", periods=30))
    figure = charts.line_chart(frame, HOSTILE, names={"raw": HOSTILE})
    text = charts.embed_json({"chart-x": figure})
    assert "<" not in text and ">" not in text and "&" not in text.replace("\\u0026", "")
    decoded = json.loads(text)
    assert decoded["figures"][0]["data"][0]["name"] == charts.plotly_text(HOSTILE)
    assert decoded["figures"][0]["data"][0]["x"] == {"ref": 0} and len(decoded["xs"][0]) == 30
    html = render("index.html.j2", rows=[{"portfolio": HOSTILE, "file": "x.html", "first": True, "series": "Raw",
                                          "is_benchmark": False, "start": "", "end": "", "cells": []}],
                  columns=[], generated="now", as_of="2020-01-01", app_url="http://localhost:8501")
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_chart_values_and_dates():
    """Trace numbers rounded with gaps (NaN, inf) as null; the x dates of a days index, the same list again for
    the same days (a page's charts share it) and a new one for other days."""
    assert charts.values([0.123456789, np.nan, -np.inf, 2.0, np.inf, -0.000004]) == [0.12346, None, None, 2.0,
                                                                                     None, -0.0]
    assert charts.values(pd.Series([0.5, 0.25]), 1) == [0.5, 0.2]
    days = pd.DatetimeIndex(["2020-02-28", "2020-03-02"])
    first = charts.dates(days)
    assert first == ["2020-02-28", "2020-03-02"] and charts.dates(pd.DatetimeIndex(list(days))) is first
    assert charts.dates(days[:1]) == ["2020-02-28"] and charts.dates(days + pd.Timedelta(days=1)) == [
        "2020-02-29", "2020-03-03"]
