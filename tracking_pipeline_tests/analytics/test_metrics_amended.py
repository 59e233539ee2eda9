"""The amended `portfolio_metrics` figures (CONTRACT §4: short periods, VaR/CVaR 99, 21-day VaR, Treynor,
drawdown dates and durations) against the libraries on real demo series, and the edge cases by hand."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pytest

from tracking_pipeline.analytics.metrics import (
    DRAWDOWN_COLUMNS, OUTPUT_COLUMNS, PERIOD_TYPES, RISK_METRICS, compute_metrics, period_metrics,
)
from tracking_pipeline.trading_calendar import sessions_between
from tracking_pipeline_tests.helpers import demo_returns
from tracking_pipeline_tests.metrics_reference import assert_figures_match, library_figures

TOL = 1e-9


def series_frame(r: pd.Series, b: pd.Series | None = None, prev: list[dt.date] | None = None,
                 sid: str = "s") -> pl.DataFrame:
    """A returns frame (with `prev_date` when given) for one series."""
    data = {"sid": sid, "trade_date": [d.date() for d in pd.DatetimeIndex(r.index)], "r": r.to_numpy(float)}
    if b is not None:
        data["b"] = b.to_numpy(float)
    if prev is not None:
        data["prev_date"] = prev
    return pl.DataFrame(data, schema_overrides={"trade_date": pl.Date, "prev_date": pl.Date})


@pytest.mark.parametrize(("ticker", "rf_annual"), [("AAPL", 0.03), ("XOM", 0.0), ("AGG", 0.03)])
def test_every_period_of_a_demo_series_equals_the_libraries(ticker: str, rf_annual: float) -> None:
    """2018-2023 of a real stock/bond ETF against SPY: every figure of every period (weeks to all)."""
    returns = demo_returns([ticker, "SPY"], "2018-01-02", "2023-10-27")
    first_nav = returns.index[0] - pd.offsets.BDay(1)  # 2018-01-02, the day before the first return
    prev = [first_nav.date(), *[d.date() for d in returns.index[:-1]]]
    got = period_metrics(series_frame(returns[ticker], returns["SPY"], prev), ["sid"], rf_annual)
    assert set(got["period_type"]) == set(PERIOD_TYPES)
    previous = dict(zip(returns.index, prev))
    for row in got.iter_rows(named=True):
        window = returns.loc[pd.Timestamp(row["period_start"]):pd.Timestamp(row["period_end"])]
        assert len(window) == row["n_returns"]
        ref = library_figures(window[ticker], window["SPY"], rf_annual, previous[window.index[0]])
        assert_figures_match(row, ref, f"{ticker} {row['period_type']} {row['period_start']}", TOL, OUTPUT_COLUMNS)
    years = got.filter(pl.col("period_type") == "year")
    assert years["cagr"].is_null().to_list() == [False] * 5 + [True]  # 2018..2022 full; 2023 ends on Oct 27
    assert years["var_95_1m"].is_null().to_list() == (years["n_returns"] < 252).to_list()  # 2018: 250, 2022: 251
    for short in ("week", "month", "quarter"):
        rows = got.filter(pl.col("period_type") == short)
        assert rows["cagr"].null_count() == rows["calmar_ratio"].null_count() == rows.height
        assert rows["var_95_1m"].null_count() == rows.height
    every = got.filter(pl.col("period_type") == "all").row(0, named=True)
    assert every["max_drawdown_trough"] is not None and every["max_drawdown_duration"] > 0


def _row(r: list[float], dates: list[dt.date] | None = None, b: list[float] | None = None,
         anchor: dt.date | None = None, rf_annual: float = 0.0) -> dict:
    days = dates or [d.date() for d in sessions_between("2021-03-01", "2022-12-30")[: len(r)]]
    index = pd.DatetimeIndex(days)
    prev = [anchor or (index[0] - pd.offsets.BDay(1)).date(), *days[:-1]]
    frame = series_frame(pd.Series(r, index=index), None if b is None else pd.Series(b, index=index), prev)
    return compute_metrics(frame, ["sid"], rf_annual).row(0, named=True)


def test_a_drawdown_that_never_recovers() -> None:
    r = [0.02, -0.1, 0.01, 0.02, -0.01]
    row = _row(r)
    d = sessions_between("2021-03-01", "2021-03-31")
    assert row["max_drawdown"] == pytest.approx(-0.1, abs=1e-15)
    assert row["max_drawdown_start"] == d[0].date()  # the peak: 1.02 on the first return day
    assert row["max_drawdown_trough"] == d[1].date()
    assert row["max_drawdown_recovery"] is None
    assert row["max_drawdown_duration"] == 4  # NAV days after the peak up to the period's end
    assert row["current_drawdown_duration"] == 4
    nav = np.cumprod(1 + np.array(r))
    assert row["current_drawdown"] == pytest.approx(nav[-1] / nav[0] - 1, abs=1e-15)


def test_a_drawdown_that_recovers_on_the_last_day() -> None:
    r = [0.05, -0.1, 0.05, 0.1]  # NAV 1.05, 0.945, 0.99225, 1.091475 (> 1.05 on the last day)
    row = _row(r)
    d = sessions_between("2021-03-01", "2021-03-31")
    assert (row["max_drawdown_start"], row["max_drawdown_trough"], row["max_drawdown_recovery"]) == (
        d[0].date(), d[1].date(), d[3].date())
    assert row["max_drawdown_duration"] == 3
    assert row["current_drawdown"] == 0.0 and row["current_drawdown_duration"] == 0


def test_the_deepest_drawdown_is_the_first_minimum_and_current_is_the_last_one() -> None:
    # two equal -10% troughs: the first counts; then a later, shallower, unrecovered fall
    r = [-0.1, 1 / 0.9 - 1, -0.1, 1 / 0.9 - 1, 0.05, -0.02]
    row = _row(r, anchor=dt.date(2021, 2, 26))
    d = sessions_between("2021-03-01", "2021-03-31")
    assert row["max_drawdown_start"] == dt.date(2021, 2, 26)  # the NAV before the period is the peak
    assert row["max_drawdown_trough"] == d[0].date()
    assert row["max_drawdown_recovery"] == library_figures(
        pd.Series(r, index=d[:6]), None, 0.0, dt.date(2021, 2, 26))["max_drawdown_recovery"]
    assert row["current_drawdown"] == pytest.approx(-0.02, abs=1e-12)
    assert row["current_drawdown_duration"] == 1


@pytest.mark.parametrize("value", [0.0, 0.001])
def test_a_constant_series(value: float) -> None:
    """No drawdown at all: the deepest is the empty one at the first NAV day (CONTRACT: the first minimum of dd,
    its peak, the first later day with dd = 0)."""
    r = [value] * 30
    row = _row(r, anchor=dt.date(2021, 2, 26))
    d = sessions_between("2021-03-01", "2021-04-30")
    assert row["max_drawdown"] == 0.0 and row["current_drawdown"] == 0.0
    assert row["max_drawdown_start"] == row["max_drawdown_trough"] == dt.date(2021, 2, 26)
    assert row["max_drawdown_recovery"] == d[0].date() and row["max_drawdown_duration"] == 1
    assert row["current_drawdown_duration"] == 0
    assert row["volatility"] == 0.0 and row["sharpe_ratio"] is None and row["calmar_ratio"] is None
    assert row["var_95"] == row["var_99"] == row["cvar_99"] == value
    ref = library_figures(pd.Series(r, index=d[:30]), None, 0.0, dt.date(2021, 2, 26))
    assert_figures_match(row, ref, f"constant {value}", TOL, OUTPUT_COLUMNS)


def test_exactly_20_returns_report_the_risk_figures_and_19_do_not() -> None:
    rng = np.random.default_rng(20)
    r, b = rng.normal(0.001, 0.01, 20), rng.normal(0.0005, 0.008, 20)
    days = sessions_between("2021-03-01", "2021-04-30")[:20]
    twenty = _row(list(r), b=list(b), rf_annual=0.02)
    ref = library_figures(pd.Series(r, index=days), pd.Series(b, index=days), 0.02,
                          (days[0] - pd.offsets.BDay(1)).date())
    assert all(ref[m] is not None for m in RISK_METRICS if m != "var_95_1m")
    assert_figures_match(twenty, ref, "20 returns", TOL, OUTPUT_COLUMNS)
    nineteen = _row(list(r[:19]), b=list(b[:19]), rf_annual=0.02)
    assert all(nineteen[m] is None for m in RISK_METRICS)
    assert nineteen["total_return"] is not None and nineteen["win_rate"] is not None
    assert all(nineteen[m] is not None for m in ("max_drawdown", "current_drawdown", *DRAWDOWN_COLUMNS[:2]))
    assert twenty["cagr"] is None and twenty["calmar_ratio"] is None  # 20 sessions are not a year


def test_a_year_of_248_trading_days_is_annualised_with_252_over_248() -> None:
    days = sessions_between("2021-01-04", "2021-12-31")
    days = days.delete([10, 50, 90, 130])  # 252 sessions in 2021: leave 248
    assert len(days) == 248
    r = np.random.default_rng(248).normal(0.0006, 0.012, 248)
    row = _row(list(r), dates=[d.date() for d in days], anchor=dt.date(2020, 12, 31))
    total = np.prod(1 + r) - 1
    assert row["cagr"] == pytest.approx((1 + total) ** (252 / 248) - 1, rel=1e-12)
    ref = library_figures(pd.Series(r, index=days), None, 0.0, dt.date(2020, 12, 31))
    assert_figures_match(row, ref, "248-day year", TOL, OUTPUT_COLUMNS)
    assert row["var_95_1m"] is None  # 248 < 252 returns


def test_cagr_needs_360_calendar_days_from_the_nav_before_the_period() -> None:
    r = [0.01, -0.005, 0.002]
    at_359 = _row(r, dates=[dt.date(2021, 6, 1), dt.date(2021, 9, 1), dt.date(2021, 12, 27)],
                  anchor=dt.date(2021, 1, 2))
    at_360 = _row(r, dates=[dt.date(2021, 6, 1), dt.date(2021, 9, 1), dt.date(2021, 12, 28)],
                  anchor=dt.date(2021, 1, 2))
    assert at_359["cagr"] is None and at_359["calmar_ratio"] is None
    total = 1.01 * 0.995 * 1.002 - 1
    assert at_360["cagr"] == pytest.approx((1 + total) ** (252 / 3) - 1, rel=1e-12)
    assert at_360["calmar_ratio"] == pytest.approx(at_360["cagr"] / 0.005, rel=1e-12)


def test_month_var_compounds_overlapping_21_day_windows() -> None:
    r = np.random.default_rng(21).normal(0.0003, 0.01, 300)
    row = _row(list(r))
    windows = [np.prod(1 + r[i:i + 21]) - 1 for i in range(300 - 20)]
    assert row["var_95_1m"] == pytest.approx(np.percentile(windows, 5), abs=1e-14)
    assert _row(list(r[:251]))["var_95_1m"] is None


def test_treynor_is_null_for_a_zero_beta_and_follows_quantstats_otherwise() -> None:
    rng = np.random.default_rng(5)
    b = rng.normal(0, 0.01, 40)
    flat = _row([0.001] * 40, b=list(b))
    assert flat["beta"] is not None and flat["treynor_ratio"] is None
    r = 0.8 * b + rng.normal(0, 0.004, 40)
    row = _row(list(r), b=list(b), rf_annual=0.03)
    assert row["treynor_ratio"] == pytest.approx((np.prod(1 + r) - 1 - 0.03) / row["beta"], rel=1e-12)
