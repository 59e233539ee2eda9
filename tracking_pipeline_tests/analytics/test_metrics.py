"""Reference tests for tracking_pipeline.analytics.metrics (CONTRACT section 4, as amended).

Every figure is checked against empyrical-reloaded / quantstats (through
``tracking_pipeline_tests.metrics_reference``) on realistic random series, per series and per
period, to 1e-9. The calls that match the contract are::

    cagr              empyrical.annual_return(r, period="daily")
    volatility        empyrical.annual_volatility(r, period="daily")
    sharpe_ratio      empyrical.sharpe_ratio(r, risk_free=rf_d, period="daily")
    sortino_ratio     empyrical.sortino_ratio(r, required_return=rf_d, period="daily")
    max_drawdown      empyrical.max_drawdown(r)
    calmar_ratio      empyrical.calmar_ratio(r, period="daily")
    var_95 / var_99   empyrical.value_at_risk(r, cutoff=0.05 / 0.01)
    cvar_95 / cvar_99 empyrical.conditional_value_at_risk(r, cutoff=0.05 / 0.01)
    alpha, beta       empyrical.alpha_beta_aligned(r, b, risk_free=rf_d, period="daily")
    win_rate          quantstats.stats.win_rate(pd.Series(r, index=dates))
    treynor_ratio     quantstats.stats.treynor_ratio(r, b, periods=252, rf=rf_annual)
    var_95_1m         np.percentile of pandas' rolling 21-day product of (1 + r), minus 1

with ``rf_d = (1 + rf_annual)^(1/252) - 1``; the drawdown dates and durations against a plain
loop over the NAV path. Where the libraries return inf or NaN, or the short-period rules apply
(cagr/calmar under 360 calendar days, risk figures under 20 returns, var_95_1m under 252), the
contract wants null.
"""

from __future__ import annotations

import datetime as dt
import math

import empyrical as ep
import numpy as np
import pandas as pd
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tracking_pipeline.analytics.metrics import (
    BENCHMARK_METRICS,
    CONTRACT_RULES,
    METRIC_COLUMNS,
    OUTPUT_COLUMNS,
    PERIOD_TYPES,
    FORMULAS_ONLY,
    PeriodRules,
    assign_periods,
    compute_metrics,
    daily_risk_free,
    period_metrics,
)
from tracking_pipeline_tests.metrics_reference import assert_figures_match, library_figures

TOL = 1e-9
SQRT252 = math.sqrt(252)


# --------------------------------------------------------------------------- helpers


def business_days(start: dt.date, n: int) -> list[dt.date]:
    """``n`` weekdays from ``start`` (holidays do not matter for the metrics)."""
    return [d.date() for d in pd.bdate_range(start, periods=n)]


def frame(r, b=None, start=dt.date(2021, 3, 1), dates=None, **keys) -> pl.DataFrame:
    """A one-series returns frame with constant key columns."""
    r = np.asarray(r, dtype=float)
    dates = dates if dates is not None else business_days(start, len(r))
    data = {**{k: [v] * len(r) for k, v in keys.items()}, "trade_date": dates, "r": r}
    if b is not None:
        data["b"] = np.asarray(b, dtype=float)
    return pl.DataFrame(data, schema_overrides={"trade_date": pl.Date})


def reference_metrics(r: np.ndarray, b: np.ndarray | None, rf_annual: float, dates: list[dt.date] | None = None,
                      anchor: dt.date | None = None, rules: PeriodRules = CONTRACT_RULES) -> dict:
    """The contract's figures from the libraries, for returns on `dates` (default: the weekdays from 2021-03-01,
    as `frame`) measured from `anchor` (default: the weekday before the first date)."""
    dates = dates if dates is not None else business_days(dt.date(2021, 3, 1), len(r))
    anchor = anchor if anchor is not None else (pd.Timestamp(dates[0]) - pd.offsets.BDay(1)).date()
    index = pd.DatetimeIndex(dates)
    bench = None if b is None else pd.Series(np.asarray(b, dtype=float), index=index)
    return library_figures(pd.Series(np.asarray(r, dtype=float), index=index), bench, rf_annual, anchor, rules)


def assert_metrics_close(row: dict, ref: dict, context: str, diffs: dict | None = None) -> None:
    """Each figure equals the reference to TOL; null exactly where the reference is."""
    found = assert_figures_match(row, ref, context, TOL, OUTPUT_COLUMNS)
    if diffs is not None:
        for name, diff in found.items():
            diffs[name] = max(diffs.get(name, 0.0), diff)


def random_returns(seed: int = 7) -> pl.DataFrame:
    """Several series with different spans (one without a benchmark) in one frame."""
    rng = np.random.default_rng(seed)
    frames = []
    specs = [  # (series id, start, n days, has benchmark)
        ("alpha", dt.date(2019, 6, 3), 500, True),
        ("beta", dt.date(2020, 1, 2), 500, True),
        ("gamma", dt.date(2020, 11, 16), 300, True),
        ("delta", dt.date(2019, 12, 30), 120, False),
    ]
    for sid, start, n, has_b in specs:
        bench = rng.normal(0.0004, 0.009, n)
        r = 0.9 * bench + rng.normal(0.0001, 0.006, n)
        frames.append(frame(r, bench if has_b else None, start=start, sid=sid, variant="raw"))
    return pl.concat(frames, how="diagonal_relaxed")


@pytest.fixture(scope="module")
def returns_df() -> pl.DataFrame:
    return random_returns()


# --------------------------------------------------------------------------- agreement with empyrical


@pytest.mark.parametrize("rf_annual", [0.0, 0.02])
def test_whole_series_metrics_match_empyrical(returns_df: pl.DataFrame, rf_annual: float) -> None:
    got = compute_metrics(returns_df, ["sid"], rf_annual=rf_annual)
    assert got["sid"].to_list() == sorted(returns_df["sid"].unique().to_list())
    for row in got.iter_rows(named=True):
        series = returns_df.filter(pl.col("sid") == row["sid"]).sort("trade_date")
        b = series["b"].to_numpy() if series["b"].null_count() == 0 else None
        ref = reference_metrics(series["r"].to_numpy(), b, rf_annual, series["trade_date"].to_list())
        assert_metrics_close(row, ref, f"sid={row['sid']} rf={rf_annual}")
        assert row["n_returns"] == series.height
        assert row["period_start"] == series["trade_date"][0]
        assert row["period_end"] == series["trade_date"][-1]
    # the series without a benchmark has NULL benchmark metrics, the others do not
    delta = got.filter(pl.col("sid") == "delta").row(0, named=True)
    assert all(delta[k] is None for k in BENCHMARK_METRICS)
    others = got.filter(pl.col("sid") != "delta")
    assert all(others[k].null_count() == 0 for k in METRIC_COLUMNS)
    assert delta["var_95_1m"] is None and delta["cagr"] is None  # 120 returns: under a year, under 252 returns
    assert delta["volatility"] is not None


@pytest.mark.parametrize("rf_annual", [0.0, 0.02])
def test_every_period_matches_empyrical(returns_df: pl.DataFrame, rf_annual: float) -> None:
    got = period_metrics(returns_df, ["sid", "variant"], rf_annual=rf_annual)
    assert set(got["period_type"].unique()) == set(PERIOD_TYPES)
    checked = 0
    for row in got.iter_rows(named=True):
        mine = returns_df.filter(pl.col("sid") == row["sid"]).sort("trade_date")
        series = mine.filter(pl.col("trade_date").is_between(row["period_start"], row["period_end"]))
        assert series.height == row["n_returns"]
        before = mine.filter(pl.col("trade_date") < row["period_start"])["trade_date"]
        b = series["b"].to_numpy() if series["b"].null_count() == 0 else None
        ref = reference_metrics(series["r"].to_numpy(), b, rf_annual, series["trade_date"].to_list(),
                                before[-1] if before.len() else None)
        assert_metrics_close(row, ref, f"{row['sid']} {row['period_type']} {row['period_start']}")
        checked += 1
    assert checked == got.height > 300
    # no week or month is annualised, every year-long period is
    short = got.filter(pl.col("period_type").is_in(["week", "month", "quarter"]))
    assert short["cagr"].null_count() == short["calmar_ratio"].null_count() == short.height
    assert got.filter(pl.col("period_type") == "week")["volatility"].null_count() == got.filter(
        pl.col("period_type") == "week").height


def test_reference_helper_would_catch_a_wrong_metric(returns_df: pl.DataFrame) -> None:
    """Guard against a vacuous comparison: a perturbed metric must be rejected."""
    row = compute_metrics(returns_df, ["sid"]).row(0, named=True)
    series = returns_df.filter(pl.col("sid") == row["sid"]).sort("trade_date")
    ref = reference_metrics(series["r"].to_numpy(), series["b"].to_numpy(), 0.0, series["trade_date"].to_list())
    assert_metrics_close(row, ref, "unperturbed")
    for name in METRIC_COLUMNS:
        bad = dict(row, **{name: row[name] + 1e-6})
        with pytest.raises(AssertionError):
            assert_metrics_close(bad, ref, "perturbed")
    for name in ("max_drawdown_start", "max_drawdown_trough"):
        with pytest.raises(AssertionError):
            assert_metrics_close(dict(row, **{name: row[name] + dt.timedelta(days=1)}), ref, "perturbed")
    for name in ("max_drawdown_duration", "current_drawdown_duration"):
        with pytest.raises(AssertionError):
            assert_metrics_close(dict(row, **{name: row[name] + 1}), ref, "perturbed")


def test_rf_changes_only_excess_metrics(returns_df: pl.DataFrame) -> None:
    zero = compute_metrics(returns_df, ["sid"], rf_annual=0.0)
    two = compute_metrics(returns_df, ["sid"], rf_annual=0.02)
    same = ["total_return", "cagr", "max_drawdown", "calmar_ratio", "volatility", "win_rate",
            "var_95", "cvar_95", "beta", "tracking_error", "information_ratio"]
    assert_frame_equal(zero.select(same), two.select(same), abs_tol=1e-12)
    assert (zero["sharpe_ratio"] - two["sharpe_ratio"]).drop_nulls().min() > 0
    rf_d = daily_risk_free(0.02)
    assert rf_d == pytest.approx(0.02 / 252, rel=0.01)
    assert (1 + rf_d) ** 252 == pytest.approx(1.02, abs=1e-12)


def test_hand_computed_values() -> None:
    """Contract formulas evaluated by hand on a tiny series (no library involved)."""
    r = [0.01, -0.02, 0.03, 0.0, -0.01]
    b = [0.005, -0.01, 0.02, 0.001, -0.004]
    row = compute_metrics(frame(r, b, series="s"), ["series"], rules=FORMULAS_ONLY).row(0, named=True)
    ra, ba = np.array(r), np.array(b)
    nav = np.cumprod(1 + ra)
    assert row["total_return"] == pytest.approx(nav[-1] - 1, abs=1e-15)
    assert row["cagr"] == pytest.approx(nav[-1] ** (252 / 5) - 1, rel=1e-12)
    # NAV path 1, 1.01, 0.9898, 1.019494, 1.019494, 1.00929906: the deepest fall is
    # 1.01 -> 0.9898 (-2%); the later 1.019494 -> 1.00929906 is only -1%
    assert row["max_drawdown"] == pytest.approx(nav[1] / nav[0] - 1, abs=1e-15)
    assert row["max_drawdown"] == pytest.approx(-0.02, abs=1e-15)
    assert row["win_rate"] == pytest.approx(2 / 4)
    assert row["var_95"] == pytest.approx(-0.02 + 0.2 * 0.01)  # index 0.2 between -0.02 and -0.01
    assert row["cvar_95"] == pytest.approx(-0.02)  # floor(4 * 0.05) + 1 = 1 return
    downside = math.sqrt(np.mean(np.minimum(ra, 0) ** 2))
    assert row["sortino_ratio"] == pytest.approx(np.mean(ra) * 252 / (downside * SQRT252))
    assert row["sharpe_ratio"] == pytest.approx(np.mean(ra) / np.std(ra, ddof=1) * SQRT252)
    beta = np.cov(ra, ba, ddof=1)[0, 1] / np.var(ba, ddof=1)
    assert row["beta"] == pytest.approx(beta, rel=1e-12)
    assert row["alpha"] == pytest.approx((1 + np.mean(ra - beta * ba)) ** 252 - 1, rel=1e-10)
    assert row["tracking_error"] == pytest.approx(np.std(ra - ba, ddof=1) * SQRT252)
    assert row["calmar_ratio"] == pytest.approx(row["cagr"] / 0.02)


# --------------------------------------------------------------------------- periods


def test_iso_week_crosses_the_year_boundary() -> None:
    dates = [dt.date(2020, 12, 30), dt.date(2020, 12, 31), dt.date(2021, 1, 1), dt.date(2021, 1, 4)]
    df = frame([0.01, 0.02, -0.01, 0.03], dates=dates, sid="a")
    weeks = assign_periods(df, ["sid"], ["week"]).sort("trade_date")
    assert weeks["period_type"].to_list() == ["week"] * 4
    assert weeks["period_key"].to_list() == [dt.date(2020, 12, 28)] * 3 + [dt.date(2021, 1, 4)]

    got = period_metrics(df, ["sid"], period_types=["week"])
    assert got.select("period_start", "period_end", "n_returns").rows() == [
        (dt.date(2020, 12, 30), dt.date(2021, 1, 1), 3),
        (dt.date(2021, 1, 4), dt.date(2021, 1, 4), 1),
    ]
    assert got["total_return"][0] == pytest.approx(1.01 * 1.02 * 0.99 - 1, abs=1e-15)


def test_week_keys_follow_iso_year_and_week(returns_df: pl.DataFrame) -> None:
    weeks = assign_periods(returns_df, ["sid"], ["week"])
    assert weeks.height == returns_df.height
    key, day = pl.col("period_key"), pl.col("trade_date")
    assert weeks.select((key.dt.weekday() == 1).all()).item()  # Mondays
    same = weeks.select(
        ((key.dt.iso_year() == day.dt.iso_year()) & (key.dt.week() == day.dt.week())).all()
    ).item()
    assert same


def test_calendar_labels_ytd_and_all() -> None:
    a = frame([0.01] * 4, dates=[dt.date(2020, 12, 31), dt.date(2021, 1, 4),
                                 dt.date(2021, 5, 17), dt.date(2021, 7, 1)], sid="a")
    b = frame([0.02] * 2, dates=[dt.date(2020, 3, 31), dt.date(2020, 12, 31)], sid="b")
    out = assign_periods(pl.concat([a, b]), ["sid"])
    assert set(out["period_type"].unique()) == set(PERIOD_TYPES)

    def keys(sid: str, ptype: str) -> list[tuple[dt.date, dt.date]]:
        sel = out.filter((pl.col("sid") == sid) & (pl.col("period_type") == ptype))
        return sorted(sel.select("trade_date", "period_key").rows())

    d = dt.date
    assert keys("a", "month") == [(d(2020, 12, 31), d(2020, 12, 1)), (d(2021, 1, 4), d(2021, 1, 1)),
                                  (d(2021, 5, 17), d(2021, 5, 1)), (d(2021, 7, 1), d(2021, 7, 1))]
    assert keys("a", "quarter") == [(d(2020, 12, 31), d(2020, 10, 1)), (d(2021, 1, 4), d(2021, 1, 1)),
                                    (d(2021, 5, 17), d(2021, 4, 1)), (d(2021, 7, 1), d(2021, 7, 1))]
    assert keys("a", "year") == [(d(2020, 12, 31), d(2020, 1, 1)), (d(2021, 1, 4), d(2021, 1, 1)),
                                 (d(2021, 5, 17), d(2021, 1, 1)), (d(2021, 7, 1), d(2021, 1, 1))]
    # ytd: only the year of each series' own last date
    assert keys("a", "ytd") == [(d(2021, 1, 4), d(2021, 1, 1)), (d(2021, 5, 17), d(2021, 1, 1)),
                                (d(2021, 7, 1), d(2021, 1, 1))]
    assert keys("b", "ytd") == [(d(2020, 3, 31), d(2020, 1, 1)), (d(2020, 12, 31), d(2020, 1, 1))]
    # all: every row, keyed by the series' first date
    assert keys("a", "all") == [(x, d(2020, 12, 31)) for x, _ in keys("a", "month")]
    assert keys("b", "all") == [(d(2020, 3, 31), d(2020, 3, 31)), (d(2020, 12, 31), d(2020, 3, 31))]

    pm = period_metrics(pl.concat([a, b]), ["sid"])
    first_rows = pm.group_by("sid", "period_type").agg(pl.len().alias("k"))
    counts = {(s, p): k for s, p, k in first_rows.rows()}
    assert counts == {("a", "week"): 4, ("a", "month"): 4, ("a", "quarter"): 4, ("a", "year"): 2,
                      ("a", "ytd"): 1, ("a", "all"): 1, ("b", "week"): 2, ("b", "month"): 2,
                      ("b", "quarter"): 2, ("b", "year"): 1, ("b", "ytd"): 1, ("b", "all"): 1}
    ytd_a = pm.filter((pl.col("sid") == "a") & (pl.col("period_type") == "ytd")).row(0, named=True)
    assert (ytd_a["period_start"], ytd_a["period_end"], ytd_a["n_returns"]) == (
        d(2021, 1, 4), d(2021, 7, 1), 3)
    assert ytd_a["total_return"] == pytest.approx(1.01**3 - 1, abs=1e-15)
    all_b = pm.filter((pl.col("sid") == "b") & (pl.col("period_type") == "all")).row(0, named=True)
    assert (all_b["period_start"], all_b["period_end"]) == (d(2020, 3, 31), d(2020, 12, 31))
    # output columns and ordering
    assert pm.columns == ["sid", "period_type", "period_start", "period_end", "n_returns",
                          *OUTPUT_COLUMNS]
    order = pm.filter(pl.col("sid") == "a")["period_type"].unique(maintain_order=True).to_list()
    assert order == list(PERIOD_TYPES)


def test_period_types_subset_and_unknown() -> None:
    df = frame([0.01, 0.02], sid="a")
    assert period_metrics(df, ["sid"], period_types=["month", "all"])["period_type"].to_list() == [
        "month", "all"]
    with pytest.raises(ValueError, match="unknown period_type"):
        assign_periods(df, ["sid"], ["decade"])


def test_multi_group_call_equals_single_group_calls(returns_df: pl.DataFrame) -> None:
    together = period_metrics(returns_df, ["sid", "variant"], rf_annual=0.02)
    parts = [
        period_metrics(returns_df.filter(pl.col("sid") == sid), ["sid", "variant"], rf_annual=0.02)
        for sid in sorted(returns_df["sid"].unique())
    ]
    assert_frame_equal(together, pl.concat(parts), check_exact=False, rel_tol=1e-13, abs_tol=1e-15)
    # the input order does not matter either
    shuffled = returns_df.sample(fraction=1.0, shuffle=True, seed=3)
    assert_frame_equal(together, period_metrics(shuffled, ["sid", "variant"], rf_annual=0.02),
                       check_exact=False, rel_tol=1e-13, abs_tol=1e-15)


def test_compute_metrics_without_group_cols() -> None:
    df = frame([0.01, -0.02, 0.015], sid="a")
    whole = compute_metrics(df, [])
    assert whole.height == 1
    assert_frame_equal(whole, compute_metrics(df, ["sid"]).drop("sid"))


# --------------------------------------------------------------------------- edge cases


def test_single_return_period() -> None:
    row = compute_metrics(frame([-0.02], [0.01], sid="a"), ["sid"], rf_annual=0.02,
                          rules=FORMULAS_ONLY).row(0, named=True)
    assert row["n_returns"] == 1
    assert row["total_return"] == pytest.approx(-0.02, abs=1e-15)
    assert row["cagr"] == pytest.approx(0.98**252 - 1)
    assert row["max_drawdown"] == pytest.approx(-0.02, abs=1e-15)  # NAV before the period counts
    assert row["calmar_ratio"] == pytest.approx(row["cagr"] / 0.02)
    assert row["var_95"] == row["cvar_95"] == -0.02
    assert row["win_rate"] == 0.0
    for name in ["volatility", "sharpe_ratio", "sortino_ratio", *BENCHMARK_METRICS]:
        assert row[name] is None, name


@pytest.mark.parametrize("rf_annual", [0.0, 0.02])
def test_all_zero_returns(rf_annual: float) -> None:
    row = compute_metrics(frame([0.0] * 10, [0.0] * 10, sid="a"), ["sid"], rf_annual,
                          rules=FORMULAS_ONLY).row(0, named=True)
    assert row["total_return"] == 0.0 and row["cagr"] == 0.0
    assert row["max_drawdown"] == 0.0
    assert row["volatility"] == 0.0
    assert row["var_95"] == 0.0 and row["cvar_95"] == 0.0
    for name in ["win_rate", "sharpe_ratio", "calmar_ratio", "beta", "alpha", "information_ratio"]:
        assert row[name] is None, name
    assert row["tracking_error"] == 0.0
    if rf_annual == 0.0:
        assert row["sortino_ratio"] is None
    else:  # every excess return is -rf_d: mean(e)*252 / (rf_d*sqrt(252)) = -sqrt(252)
        assert row["sortino_ratio"] == pytest.approx(-SQRT252, rel=1e-12)


def test_constant_nonzero_returns_have_null_sharpe_and_zero_volatility() -> None:
    row = compute_metrics(frame([0.01] * 1000, sid="a"), ["sid"], rules=FORMULAS_ONLY).row(0, named=True)
    assert row["volatility"] == 0.0  # empyrical: 0 (to 1e-8 in its own tests)
    assert row["sharpe_ratio"] is None  # empyrical: inf
    assert row["sortino_ratio"] is None  # empyrical: inf
    assert row["cagr"] == pytest.approx(11.274002099240256, abs=1e-8)  # empyrical test_cagr


def test_monotonically_rising_nav() -> None:
    r = [0.001, 0.004, 0.002, 0.01, 0.0005]
    row = compute_metrics(frame(r, sid="a"), ["sid"], rules=FORMULAS_ONLY).row(0, named=True)
    assert row["max_drawdown"] == 0.0
    assert row["calmar_ratio"] is None
    assert row["sortino_ratio"] is None
    assert row["win_rate"] == 1.0
    assert row["sharpe_ratio"] == pytest.approx(np.mean(r) / np.std(r, ddof=1) * SQRT252)
    assert row["cagr"] == pytest.approx(np.prod(1 + np.array(r)) ** (252 / 5) - 1)


def test_drawdown_includes_the_nav_before_the_period() -> None:
    row = compute_metrics(frame([-0.1, 0.05, 0.2], sid="a"), ["sid"], rules=FORMULAS_ONLY).row(0, named=True)
    assert row["max_drawdown"] == pytest.approx(-0.1, abs=1e-15)
    # within a longer series the monthly drawdown restarts from the month's opening NAV
    df = frame([0.1, -0.05, -0.05, 0.02], dates=[dt.date(2021, 1, 28), dt.date(2021, 1, 29),
                                                 dt.date(2021, 2, 1), dt.date(2021, 2, 2)], sid="a")
    months = period_metrics(df, ["sid"], period_types=["month"], rules=FORMULAS_ONLY)
    assert months["max_drawdown"].to_list() == pytest.approx([-0.05, -0.05], abs=1e-15)
    whole = period_metrics(df, ["sid"], period_types=["all"], rules=FORMULAS_ONLY)
    assert whole["max_drawdown"][0] == pytest.approx(0.95 * 0.95 - 1, abs=1e-15)


@pytest.mark.parametrize("bad", [float("nan"), None, float("inf")])
def test_missing_or_non_finite_return_raises(bad) -> None:
    r = pl.Series("r", [0.01, bad, 0.02], dtype=pl.Float64)
    df = frame([0.01, 0.0, 0.02], sid="beta", variant="raw").with_columns(r)
    df = pl.concat([frame([0.01, 0.02, 0.03], sid="alpha", variant="raw"), df])
    with pytest.raises(ValueError, match=r"sid='beta'.*2021-03-02"):
        compute_metrics(df, ["sid", "variant"])
    with pytest.raises(ValueError, match=r"sid='beta', variant='raw'.*2021-03-02"):
        period_metrics(df, ["sid", "variant"])


def test_missing_columns_and_duplicates_raise() -> None:
    df = frame([0.01, 0.02], sid="a")
    with pytest.raises(ValueError, match="missing column"):
        compute_metrics(df.drop("r"), ["sid"])
    with pytest.raises(ValueError, match="missing column"):
        compute_metrics(df, ["portfolio"])
    with pytest.raises(ValueError, match=r"duplicate trade_date 2021-03-01 for sid='a'"):
        compute_metrics(pl.concat([df, df.head(1)]), ["sid"])


def test_zero_variance_benchmark_gives_null_beta() -> None:
    r = [0.01, -0.02, 0.015, 0.003]
    row = compute_metrics(frame(r, [0.001] * 4, sid="a"), ["sid"], rules=FORMULAS_ONLY).row(0, named=True)
    assert row["beta"] is None and row["alpha"] is None
    active = np.array(r) - 0.001
    assert row["tracking_error"] == pytest.approx(np.std(active, ddof=1) * SQRT252)
    assert row["information_ratio"] == pytest.approx(np.mean(active) / np.std(active, ddof=1) * SQRT252)
    with np.errstate(all="ignore"):
        _, ep_beta = ep.alpha_beta_aligned(np.array(r), np.full(4, 0.001))
    assert math.isnan(ep_beta)  # empyrical agrees it is undefined


def test_identical_to_benchmark() -> None:
    r = [0.01, -0.02, 0.015, 0.003]
    row = compute_metrics(frame(r, r, sid="a"), ["sid"], rules=FORMULAS_ONLY).row(0, named=True)
    assert row["beta"] == pytest.approx(1.0, abs=1e-12)
    assert row["alpha"] == pytest.approx(0.0, abs=1e-12)
    assert row["tracking_error"] == 0.0
    assert row["information_ratio"] is None


def test_missing_benchmark_values_null_only_their_groups() -> None:
    a = frame([0.01, -0.02, 0.015], [0.005, -0.01, float("nan")], sid="a")
    c = frame([0.01, -0.02, 0.015], [0.005, None, 0.01], sid="c")
    z = frame([0.01, -0.02, 0.015], [0.005, -0.01, 0.002], sid="z")
    got = compute_metrics(pl.concat([a, c, z]), ["sid"], rules=FORMULAS_ONLY)
    for sid in ("a", "c"):
        row = got.filter(pl.col("sid") == sid).row(0, named=True)
        assert all(row[k] is None for k in BENCHMARK_METRICS)
        assert row["sharpe_ratio"] is not None
    assert got.filter(pl.col("sid") == "z")["beta"].null_count() == 0
    # and without a b column at all
    no_b = compute_metrics(frame([0.01, -0.02], sid="n"), ["sid"], rules=FORMULAS_ONLY)
    assert no_b.select(BENCHMARK_METRICS).null_count().row(0) == (1,) * len(BENCHMARK_METRICS)


def test_results_are_never_nan_or_inf() -> None:
    # a NAV that goes negative (r < -100%) makes cagr undefined: NULL, not NaN
    row = compute_metrics(frame([-1.5, 0.1], sid="a"), ["sid"], rules=FORMULAS_ONLY).row(0, named=True)
    assert row["cagr"] is None and row["calmar_ratio"] is None
    # a total loss is a defined -100%
    row = compute_metrics(frame([0.05, -1.0], sid="a"), ["sid"], rules=FORMULAS_ONLY).row(0, named=True)
    assert row["total_return"] == -1.0 and row["cagr"] == -1.0 and row["max_drawdown"] == -1.0
    # huge returns overflow cagr: NULL rather than inf
    row = compute_metrics(frame([50.0, 80.0], sid="a"), ["sid"], rules=FORMULAS_ONLY).row(0, named=True)
    assert row["cagr"] is None and row["total_return"] == pytest.approx(51 * 81 - 1)
    for metric in METRIC_COLUMNS:
        assert row[metric] is None or math.isfinite(row[metric])


def test_empty_input_gives_empty_output_with_schema() -> None:
    empty = frame([], sid="a")
    got = compute_metrics(empty, ["sid"])
    assert got.height == 0
    assert got.columns == ["sid", "period_start", "period_end", "n_returns", *OUTPUT_COLUMNS]
    assert got.schema["max_drawdown"] == pl.Float64
    assert period_metrics(empty, ["sid"]).height == 0
