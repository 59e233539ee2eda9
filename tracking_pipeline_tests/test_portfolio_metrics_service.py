"""`portfolio_metrics` service on synthetic warehouse tables (DuckDB and PostgreSQL): the incremental rule, bad
input, undefined values, and the `get_metrics` fallback. References are computed independently with numpy/pandas
and empyrical-reloaded from the rows written."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tracking_pipeline.analytics.metrics import DRAWDOWN_COLUMNS, METRIC_COLUMNS, OUTPUT_COLUMNS, daily_risk_free
from tracking_pipeline.services import tracker
from tracking_pipeline.services.performance import (
    BENCHMARK, active_portfolios, compute_rows, full_plan, get_metrics, load_series, refresh_metrics,
)
from tracking_pipeline.trading_calendar import sessions_between
from tracking_pipeline.warehouse import Write, open_warehouse
from tracking_pipeline_tests.metrics_reference import assert_figures_match, library_figures

RF = 0.02
RF_D = daily_risk_free(RF)
START = "2020-11-02"


def _definition(pid: int, name: str, start: str, benchmark: str, variants: list[str]) -> dict:
    now = dt.datetime(2024, 1, 1)
    return {"portfolio_id": pid, "name": name, "description": "", "source": "test",
            "start_date": pd.Timestamp(start).date(), "initial_nav": 100.0, "benchmark": benchmark,
            "config": json.dumps({"variants": variants}), "is_active": True, "created_at": now, "updated_at": now}


def _nav_rows(pid: int, variant: str, days: pd.DatetimeIndex, returns: np.ndarray) -> pd.DataFrame:
    r = np.r_[0.0, returns]
    nav = 100.0 * np.cumprod(1.0 + r)
    return pd.DataFrame({"portfolio_id": pid, "trade_date": days[: len(r)], "variant": variant, "nav": nav,
                         "daily_return": r, "cumulative_return": nav / 100.0 - 1.0, "equity_allocation": 1.0,
                         "cash_allocation": 0.0})


def build_warehouse(url: str, end: str = "2021-03-31", seed: int = 7):
    """Two portfolios (benchmarks BMA, BMB), variants raw and half, random returns from START to `end`."""
    rng = np.random.default_rng(seed)
    wh = open_warehouse(url)
    days = sessions_between(START, "2021-12-31")
    prices = pd.concat([pd.DataFrame({"trade_date": days, "ticker": t,
                                      "adj_close": 50.0 * np.cumprod(1.0 + rng.normal(3e-4, 0.012, len(days)))})
                        for t in ("BMA", "BMB")])
    wh.replace(Write("price_data", prices, None))
    defs = pd.DataFrame([_definition(1, "One", START, "BMA", ["raw", "half"]),
                         _definition(2, "Two", "2020-12-24", "BMB", ["raw", "half"])])
    wh.replace(Write("portfolio_definitions", defs, None))
    bench = prices.pivot(index="trade_date", columns="ticker", values="adj_close").pct_change()
    frames = []
    for pid, ticker, start in ((1, "BMA", START), (2, "BMB", "2020-12-24")):
        mine = days[(days >= pd.Timestamp(start)) & (days <= pd.Timestamp(end))]
        raw = 1.2 * bench.loc[mine[1:], ticker].to_numpy() + rng.normal(0, 0.006, len(mine) - 1)
        frames += [_nav_rows(pid, "raw", mine, raw), _nav_rows(pid, "half", mine, 0.5 * raw + 0.5 * RF_D)]
    wh.replace(Write("portfolio_daily_nav", pd.concat(frames), None))
    return wh


def append_day(wh, day: str, returns: dict[tuple[int, str], float]) -> None:
    """Add one NAV day (continuing each series' stored NAV)."""
    rows = []
    for (pid, variant), r in returns.items():
        last = wh.query("SELECT nav FROM portfolio_daily_nav WHERE portfolio_id = ? AND variant = ? "
                        "ORDER BY trade_date DESC LIMIT 1", [pid, variant]).iat[0, 0]
        rows.append({"portfolio_id": pid, "trade_date": pd.Timestamp(day), "variant": variant, "nav": last * (1 + r),
                     "daily_return": r, "cumulative_return": last * (1 + r) / 100 - 1, "equity_allocation": 1.0,
                     "cash_allocation": 0.0})
    wh.replace(Write("portfolio_daily_nav", pd.DataFrame(rows), {"trade_date": (day, day)}))


def reference_row(wh, pid: int, variant: str, lo: str, hi: str) -> dict:
    """Every figure over the returns dated in [lo, hi], from the stored NAV (pct_change) and prices, with the
    libraries (tracking_pipeline_tests.metrics_reference), measured from the NAV day before the first return."""
    ticker, first_day = wh.query("SELECT benchmark, start_date FROM portfolio_definitions WHERE portfolio_id = ?",
                                 [pid]).iloc[0]
    nav = wh.query("SELECT trade_date, nav FROM portfolio_daily_nav WHERE portfolio_id = ? AND variant = 'raw' "
                   "ORDER BY trade_date", [pid]).set_index("trade_date")["nav"]
    px = wh.query("SELECT trade_date, adj_close FROM price_data WHERE ticker = ? ORDER BY trade_date",
                  [ticker]).set_index("trade_date")["adj_close"].loc[nav.index]
    b_all = px.pct_change()
    if variant == BENCHMARK:
        r_all = b_all
    else:
        nav = wh.query("SELECT trade_date, nav FROM portfolio_daily_nav WHERE portfolio_id = ? AND variant = ? "
                       "ORDER BY trade_date", [pid, variant]).set_index("trade_date")["nav"]
        r_all = nav.pct_change()
    window = (r_all.index >= pd.Timestamp(lo)) & (r_all.index <= pd.Timestamp(hi)) & (
        r_all.index > pd.Timestamp(first_day))
    anchor = r_all.index[np.flatnonzero(window)[0] - 1]
    return library_figures(r_all[window], b_all[window], RF, anchor)


def assert_matches(row: dict, ref: dict, tol: float = 1e-9) -> None:
    assert pd.Timestamp(row["period_start"]).date() == ref["period_start"]
    assert pd.Timestamp(row["period_end"]).date() == ref["period_end"]
    assert_figures_match(row, ref, f"{row['portfolio_id']} {row['variant']}", tol, OUTPUT_COLUMNS)


def table(wh) -> pd.DataFrame:
    return wh.read_table("portfolio_metrics").reset_index(drop=True)


def test_one_new_day_replaces_only_the_periods_containing_it(warehouse_url):
    wh = build_warehouse(warehouse_url, end="2021-03-30")
    first = refresh_metrics(wh, RF)
    assert first.plan["full"].all() and first.rows.height == first.rows_total
    before = table(wh)

    again = refresh_metrics(wh, RF)
    assert again.plan.is_empty() and again.rows.height == 0 and sorted(again.unchanged) == [1, 2]

    append_day(wh, "2021-03-31", {(1, "raw"): 0.01, (1, "half"): 0.005, (2, "raw"): -0.02, (2, "half"): -0.01})
    update = refresh_metrics(wh, RF)
    after = table(wh)
    # per series: the week, month, quarter, year, ytd and all containing 2021-03-31; 3 series per portfolio
    assert update.rows.height == 2 * 3 * 6
    assert update.plan["full"].to_list() == [False, False]
    assert update.plan["since"].to_list() == [dt.date(2021, 3, 31)] * 2

    key = ["portfolio_id", "variant", "period_type", "period_start"]
    merged = before.merge(after, on=key, how="outer", suffixes=("_b", "_a"), indicator=True)
    touched = merged[(merged["_merge"] != "both") | (merged["period_end_b"] != merged["period_end_a"])]
    lower = {"week": "2021-03-29", "month": "2021-03-01", "quarter": "2021-01-01", "year": "2021-01-01"}
    affected = merged["period_type"].isin(["ytd", "all"]) | merged.apply(
        lambda r: r["period_type"] in lower and r["period_start"] >= pd.Timestamp(lower[r["period_type"]]), axis=1)
    assert len(touched) == update.rows.height and affected[touched.index].all()
    untouched = merged[~affected]
    for m in METRIC_COLUMNS:  # bit-identical: never rewritten
        a, b = untouched[f"{m}_b"].to_numpy(), untouched[f"{m}_a"].to_numpy()
        assert ((a == b) | (np.isnan(a) & np.isnan(b))).all(), m

    # the incremental table equals a full recompute
    full = refresh_metrics(wh, RF, full=True)
    assert full.rows.height == len(after)
    recomputed = table(wh)
    pd.testing.assert_frame_equal(after, recomputed, check_exact=False, rtol=1e-12, atol=1e-15)

    for pid, variant, period, lo, hi in ((1, "raw", "week", "2021-03-29", "2021-03-31"),
                                         (2, "half", "quarter", "2021-01-01", "2021-03-31"),
                                         (1, BENCHMARK, "all", "2020-11-03", "2021-03-31")):
        row = after[(after["portfolio_id"] == pid) & (after["variant"] == variant)
                    & (after["period_type"] == period)].iloc[-1]
        assert_matches(row.to_dict(), reference_row(wh, pid, variant, lo, hi))


def test_changed_history_recomputes_from_the_changed_month(tmp_path):
    wh = build_warehouse(str(tmp_path / "w.duckdb"))
    refresh_metrics(wh, RF)
    before = table(wh)
    # a restated NAV day in January 2021 of portfolio 1 (e.g. a corrected price)
    restated = wh.read_table("portfolio_daily_nav", "portfolio_id = 1 AND trade_date = ?", [dt.date(2021, 1, 14)])
    wh.replace(Write("portfolio_daily_nav", restated.assign(daily_return=restated["daily_return"] + 0.001),
                     {"portfolio_id": [1], "trade_date": ("2021-01-14", "2021-01-14")}))
    update = refresh_metrics(wh, RF)
    assert update.plan.to_dicts() == [{"portfolio_id": 1, "since": dt.date(2021, 1, 1), "full": False}]
    after = table(wh)

    def rows(frame, keep):
        return frame[keep(frame)].reset_index(drop=True)

    def two(f):
        return f["portfolio_id"] == 2

    def one_before_change(f):
        return (f["portfolio_id"] == 1) & (f["period_end"] < pd.Timestamp("2020-12-28"))

    def one_january(f):
        return ((f["portfolio_id"] == 1) & (f["variant"] == "raw") & (f["period_type"] == "month")
                & (f["period_start"] == pd.Timestamp("2021-01-04")))

    assert rows(after, two).equals(rows(before, two))
    assert rows(after, one_before_change).equals(rows(before, one_before_change))
    assert rows(after, one_january).at[0, "total_return"] != rows(before, one_january).at[0, "total_return"]
    refresh_metrics(wh, RF, full=True)
    pd.testing.assert_frame_equal(after, table(wh), check_exact=False, rtol=1e-12, atol=1e-15)

    # a history that shrank (NAV rows deleted at the end) is recomputed in full
    wh.replace(Write("portfolio_daily_nav", pd.DataFrame(columns=["portfolio_id", "trade_date", "variant"]),
                     {"portfolio_id": [2], "trade_date": ("2021-03-01", "2021-12-31")}))
    update = refresh_metrics(wh, RF)
    assert update.plan.to_dicts() == [{"portfolio_id": 2, "since": dt.date(2020, 12, 28), "full": True}]
    assert table(wh)[lambda f: f["portfolio_id"] == 2]["period_end"].max() == pd.Timestamp("2021-02-26")


def test_bad_returns_skip_only_that_portfolio_with_a_clear_error(tmp_path):
    wh = build_warehouse(str(tmp_path / "w.duckdb"))
    wh.replace(Write("price_data", pd.DataFrame(columns=["trade_date", "ticker"]),
                     {"ticker": ["BMB"], "trade_date": ("2021-02-10", "2021-02-10")}))
    refresh = refresh_metrics(wh, RF)
    assert list(refresh.errors) == ["Two"]
    assert "benchmark BMB has no adj_close in price_data on 2021-02-10" in refresh.errors["Two"]
    assert refresh.plan["portfolio_id"].to_list() == [1]
    assert set(table(wh)["portfolio_id"]) == {1}

    wh.replace(Write("portfolio_daily_nav", wh.read_table(
        "portfolio_daily_nav", "portfolio_id = 1 AND trade_date = ? AND variant = 'half'", [dt.date(2021, 2, 3)]
    ).assign(daily_return=np.nan), {"portfolio_id": [1], "trade_date": ("2021-02-03", "2021-02-03"),
                                    "variant": ["half"]}))
    refresh = refresh_metrics(wh, RF)
    assert "One: metrics not updated; half daily_return is null or not finite on 2021-02-03" in refresh.errors["One"]
    assert refresh.plan.is_empty()


def test_undefined_values_are_stored_as_null(tmp_path):
    """A period with one return, all-zero returns and a cash-like constant return store NULL, never 0/inf."""
    wh = open_warehouse(str(tmp_path / "w.duckdb"))
    days = sessions_between("2021-01-04", "2021-02-26")
    wh.replace(Write("price_data", pd.DataFrame({"trade_date": days, "ticker": "BM",
                                                 "adj_close": np.linspace(100, 90, len(days))}), None))
    wh.replace(Write("portfolio_definitions", pd.DataFrame(
        [_definition(1, "Zero", "2021-01-04", "BM", ["raw"]), _definition(2, "Cash", "2021-01-04", "BM", ["raw"]),
         _definition(3, "Rising", "2021-02-25", "BM", ["raw"])]), None))
    n = len(days) - 1
    wh.replace(Write("portfolio_daily_nav", pd.concat([
        _nav_rows(1, "raw", days, np.zeros(n)), _nav_rows(2, "raw", days, np.full(n, RF_D)),
        _nav_rows(3, "raw", days[days >= pd.Timestamp("2021-02-25")], np.array([0.01]))]), None))
    refresh_metrics(wh, RF)
    rows = table(wh).set_index(["portfolio_id", "variant", "period_type"])
    zero = rows.loc[(1, "raw", "all")]
    assert zero["total_return"] == 0 and zero["volatility"] == 0 and zero["max_drawdown"] == 0
    for m in ("win_rate", "calmar_ratio", "sharpe_ratio"):
        assert pd.isna(zero[m]), m
    assert zero["sortino_ratio"] < 0  # every excess return is -rf_d: defined, negative
    cash = rows.loc[(2, "raw", "all")]
    assert cash["win_rate"] == 1 and cash["volatility"] == 0 and cash["max_drawdown"] == 0
    assert cash["beta"] == pytest.approx(0, abs=1e-12)
    for m in ("sharpe_ratio", "sortino_ratio", "calmar_ratio"):
        assert pd.isna(cash[m]), m
    one = rows.loc[(3, "raw", "week")]
    assert one["total_return"] == pytest.approx(0.01, abs=1e-15) and one["win_rate"] == 1
    for m in ("volatility", "sharpe_ratio", "sortino_ratio", "calmar_ratio", "beta", "alpha", "tracking_error",
              "information_ratio"):
        assert pd.isna(one[m]), m
    # the linearly falling benchmark's drawdown is its total return; two months are not annualised
    bench = rows.loc[(1, BENCHMARK, "all")]
    assert bench["max_drawdown"] == pytest.approx(90 / 100 - 1, abs=1e-12)
    assert pd.isna(bench["cagr"]) and pd.isna(bench["calmar_ratio"])
    assert bench["max_drawdown_start"] == pd.Timestamp("2021-01-04") and pd.isna(bench["max_drawdown_recovery"])
    assert bench["max_drawdown_trough"] == pd.Timestamp("2021-02-26")
    assert bench["max_drawdown_duration"] == bench["current_drawdown_duration"] == len(days) - 1


def test_get_metrics_reads_stored_periods_and_computes_other_ranges_live(warehouse_url):
    wh = build_warehouse(warehouse_url)
    refresh_metrics(wh, RF)
    stored = table(wh)

    # calendar bounds of a stored month snap to its first/last return days
    got = get_metrics(wh, 1, "half", "2021-02-01", "2021-02-28", rf_annual=RF)
    assert got["source"] == "table" and got["period_type"] == "month"
    assert (got["period_start"], got["period_end"]) == (dt.date(2021, 2, 1), dt.date(2021, 2, 26))

    # the same period computed live (the stored row removed) gives the same numbers
    wh.replace(Write("portfolio_metrics", pd.DataFrame(columns=["portfolio_id"]),
                     {"portfolio_id": [1], "variant": ["half"], "period_type": ["month"],
                      "period_start": ("2021-02-01", "2021-02-01")}))
    live = get_metrics(wh, 1, "half", "2021-02-01", "2021-02-28", rf_annual=RF)
    assert live["source"] == "live" and live["period_type"] is None
    for m in METRIC_COLUMNS:
        assert (live[m] is None) == (got[m] is None), m
        assert got[m] is None or live[m] == pytest.approx(got[m], rel=1e-12, abs=1e-15), m
    assert got["cagr"] is None and got["volatility"] is None  # a month is not annualised; 19 returns: no risk
    assert {m: live[m] for m in DRAWDOWN_COLUMNS} == {m: got[m] for m in DRAWDOWN_COLUMNS}

    # every stored `all` row equals the live computation over the same days (benchmark included)
    for row in stored[stored["period_type"] == "all"].itertuples():
        via_table = get_metrics(wh, row.portfolio_id, row.variant, row.period_start, row.period_end, RF)
        assert via_table["source"] == "table"
        day_before = get_metrics(wh, row.portfolio_id, row.variant, row.period_start - pd.Timedelta(days=1),
                                 row.period_end, RF)
        assert day_before["source"] == "table"  # the day before has no return: the same period
    # an arbitrary range: live, equal to empyrical on the stored NAV
    for pid, variant in ((1, "raw"), (2, "half"), (2, BENCHMARK)):
        live = get_metrics(wh, pid, variant, "2021-01-13", "2021-03-10", rf_annual=RF)
        assert live["source"] == "live"
        assert_matches(live, reference_row(wh, pid, variant, "2021-01-13", "2021-03-10"))
    assert get_metrics(wh, 1, "raw", "2022-01-01", "2022-02-01") is None
    assert get_metrics(wh, 99, "raw", "2021-01-01", "2021-02-01") is None
    assert get_metrics(wh, 2, "raw", "2020-11-01", "2020-12-24") is None  # before its first return


def test_checks_flag_stale_and_invalid_rows(tmp_path):
    from tracking_pipeline.defs.performance.checks import metrics_check_results

    wh = build_warehouse(str(tmp_path / "w.duckdb"), end="2021-03-30")
    refresh = refresh_metrics(wh, RF)
    assert all(c.passed for c in metrics_check_results(wh, refresh))

    append_day(wh, "2021-03-31", {(1, "raw"): 0.01, (1, "half"): 0.005})
    row = wh.read_table("portfolio_metrics", "portfolio_id = 2 AND variant = 'raw' AND period_type = 'all'")
    wh.replace(Write("portfolio_metrics", row.assign(max_drawdown=0.5, sharpe_ratio=math.inf),
                     {"portfolio_id": [2], "variant": ["raw"], "period_type": ["all"]}))
    up_to_date, valid = metrics_check_results(wh, refresh)
    assert not up_to_date.passed
    assert set(up_to_date.metadata["behind"].value) == {"One / raw", "One / half", "One / benchmark"}
    assert not valid.passed
    assert valid.metadata["bad_rows"].value == {"max_drawdown_positive": 1, "sharpe_ratio_not_finite": 1,
                                                "current_drawdown_outside_range": 1}


def test_nav_and_returns_equal_nav_history_and_return_series(warehouse_url):
    """The report reads a batch's NAV once for its charts and its window metrics: the same two frames as reading
    them apart, with a benchmark price missing (the chart's benchmark return 0 there, the series' null on that day
    and the next) and for no portfolio at all."""
    wh = build_warehouse(warehouse_url)
    gap = pd.Timestamp("2021-01-15")
    wh.replace(Write("price_data", pd.DataFrame({"trade_date": pd.Series([], dtype="datetime64[ns]"),
                                                 "ticker": pd.Series([], dtype=str), "adj_close": []}),
                     {"ticker": ["BMA"], "trade_date": (gap.date(), gap.date())}))
    listed = tracker.portfolio_list(wh)
    for portfolios in (listed, listed.iloc[1:], listed.iloc[0:0]):
        nav, series = tracker.nav_and_returns(wh, portfolios)
        pd.testing.assert_frame_equal(nav, tracker.nav_history(wh, portfolios))
        assert_frame_equal(series, tracker.return_series(wh, portfolios["portfolio_id"].tolist()))
    nav, series = tracker.nav_and_returns(wh, listed)
    bench = series.filter((pl.col("portfolio_id") == 1) & (pl.col("variant") == BENCHMARK))
    assert bench.filter(pl.col("r").is_null())["trade_date"].to_list() == [gap.date(), dt.date(2021, 1, 19)]
    chart = nav[(nav["portfolio_id"] == 1) & (nav["variant"] == BENCHMARK)].set_index("trade_date")
    assert chart.at[gap, "daily_return"] == 0.0 and np.isnan(chart.at[gap, "nav"])
    assert len(nav) == len(tracker.nav_history(wh, listed)) > 0 and series.height > 0


def test_batches_of_portfolios_give_the_same_rows(tmp_path):
    wh = build_warehouse(str(tmp_path / "wh.duckdb"))
    series = load_series(wh, active_portfolios(wh))
    for plan in (full_plan(series),
                 pl.DataFrame({"portfolio_id": [1, 2], "since": [dt.date(2021, 2, 10)] * 2, "full": [False] * 2})):
        together = compute_rows(series, plan, 0.02)
        one_by_one = compute_rows(series, plan, 0.02, batch=1)
        assert together.height > 50 and together["portfolio_id"].n_unique() == 2
        assert_frame_equal(one_by_one, together, rel_tol=1e-12, abs_tol=1e-15)  # equal to rounding
    bad = series.with_columns(pl.when(pl.col("trade_date") == pl.col("trade_date").max())
                              .then(float("nan")).otherwise(pl.col("r")).alias("r"))
    with pytest.raises(ValueError, match="daily return r is nan"):
        compute_rows(bad, full_plan(series), 0.0)


def test_rows_of_an_earlier_version_are_recomputed(tmp_path):
    """Rows stored before the drawdown figures existed (NULL durations after the column migration) count as
    changed: the next refresh recomputes them and equals a full recompute."""
    wh = build_warehouse(str(tmp_path / "w.duckdb"))
    refresh_metrics(wh, RF)
    fresh = table(wh)
    old = fresh.assign(**{c: None for c in ("var_99", "cvar_99", "var_95_1m", "treynor_ratio", "current_drawdown",
                                             *DRAWDOWN_COLUMNS)})
    wh.replace(Write("portfolio_metrics", old, None))
    update = refresh_metrics(wh, RF)
    assert update.plan["full"].all() and sorted(update.plan["portfolio_id"]) == [1, 2]
    pd.testing.assert_frame_equal(table(wh), fresh, check_exact=False, rtol=1e-12, atol=1e-15)
