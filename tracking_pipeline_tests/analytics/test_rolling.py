"""Rolling Sharpe, Sortino, volatility, beta and max drawdown against quantstats and empyrical on real demo
series (2018-2023, the COVID crash included), and the edge cases: windows not yet full, missing returns,
constant windows, windows without a loss."""

from __future__ import annotations

import math
import warnings

import empyrical as ep
import numpy as np
import pandas as pd
import pytest
import quantstats as qs

from tracking_pipeline.analytics.rolling import ROLLING_WINDOWS, rolling_columns, rolling_max_drawdown, rolling_metrics
from tracking_pipeline_tests.helpers import demo_returns

RF = 0.03
TICKERS = ["AAPL", "XOM", "AGG", "QQQ"]


@pytest.fixture(scope="module")
def demo() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Four real series and SPY as the benchmark of each; AGG starts late (NaN before) to check not-full windows."""
    returns = demo_returns([*TICKERS, "SPY"], "2018-01-02", "2023-10-27")
    returns.loc[:"2018-06-29", "AGG"] = np.nan
    bench = pd.DataFrame({t: returns["SPY"] for t in TICKERS})
    return returns[TICKERS], bench


def _same(got: pd.Series, want: pd.Series, what: str, tol: float = 1e-9) -> None:
    """Equal where both are defined (relative to max(1, |want|)); NaN in ours exactly where the reference is not a
    finite number."""
    want = want.replace([np.inf, -np.inf], np.nan)
    differs = got.index[got.isna() != want.isna()]
    assert differs.empty, f"{what}: NULL pattern differs at {differs[:3]}"
    both = got.notna()
    diff = (got[both] - want[both]).abs() / np.maximum(1.0, want[both].abs())
    assert both.sum() > 0 and diff.max() <= tol, f"{what}: largest difference {diff.max():.3g}"


@pytest.mark.parametrize("window", ROLLING_WINDOWS)
def test_rolling_figures_equal_quantstats_and_empyrical(demo, window: int) -> None:
    returns, bench = demo
    got = rolling_metrics(returns, bench, window, RF)
    assert sorted(got) == sorted(rolling_columns((window,)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for t in TICKERS:
            r = returns[t].dropna()
            b = bench[t].loc[r.index]
            at = r.index
            _same(got[f"sharpe_{window}"][t].loc[at],
                  qs.stats.rolling_sharpe(r, rf=RF, rolling_period=window, periods_per_year=252), f"{t} sharpe")
            _same(got[f"sortino_{window}"][t].loc[at],
                  qs.stats.rolling_sortino(r, rf=RF, rolling_period=window, periods_per_year=252), f"{t} sortino")
            _same(got[f"volatility_{window}"][t].loc[at],
                  qs.stats.rolling_volatility(r, rolling_period=window, periods_per_year=252), f"{t} volatility")
            greeks = qs.stats.rolling_greeks(r, b, periods=window)
            _same(got[f"beta_{window}"][t].loc[at], greeks["beta"].where(r.rolling(window).count() == window),
                  f"{t} beta", 1e-8)
            mdd = ep.roll_max_drawdown(r, window=window)
            _same(got[f"max_drawdown_{window}"][t].loc[at], mdd.reindex(at), f"{t} max drawdown")
    # NaN until the window is full: AAPL's first full window ends on its window-th return
    first = got[f"sharpe_{window}"]["AAPL"].first_valid_index()
    assert returns.index.get_loc(first) == window - 1
    agg_first = got[f"volatility_{window}"]["AGG"].first_valid_index()
    assert returns["AGG"].loc[:agg_first].notna().sum() == window


def test_beta_by_hand_and_covid_drawdown(demo) -> None:
    returns, bench = demo
    got = rolling_metrics(returns, bench, 63, RF)
    day = pd.Timestamp("2020-03-23")
    w = returns.loc[:day].tail(63)
    x, y = w["QQQ"].to_numpy(), bench.loc[w.index, "QQQ"].to_numpy()
    assert got["beta_63"].at[day, "QQQ"] == pytest.approx(np.cov(x, y)[0, 1] / np.var(y, ddof=1), rel=1e-10)
    nav = np.r_[1.0, np.cumprod(1 + x)]
    assert got["max_drawdown_63"].at[day, "QQQ"] == pytest.approx((nav / np.maximum.accumulate(nav) - 1).min(),
                                                                 abs=1e-14)
    assert got["max_drawdown_63"].at[day, "QQQ"] < -0.25  # the COVID crash


def test_undefined_windows_are_nan_never_zero_or_inf() -> None:
    days = pd.bdate_range("2021-01-04", periods=8)
    r = pd.DataFrame({"flat": [0.01] * 8, "up": [0.01, 0.02, 0.01, 0.03, 0.02, 0.01, 0.02, 0.01],
                      "gap": [0.01, -0.02, np.nan, 0.01, 0.02, -0.01, 0.01, -0.01]}, index=days)
    b = pd.DataFrame({"flat": [0.001] * 8, "up": r["up"] * 2, "gap": r["up"]}, index=days)
    got = rolling_metrics(r, b, 3)
    assert got["sharpe_3"]["flat"].isna().all()  # zero dispersion
    assert got["volatility_3"]["flat"].iloc[2:].eq(0.0).all()  # volatility of a constant is 0
    assert got["beta_3"]["flat"].isna().all()  # constant benchmark
    assert got["sortino_3"]["up"].isna().all()  # no loss in any window
    assert got["beta_3"]["up"].iloc[2:].to_numpy() == pytest.approx(0.5)
    assert got["max_drawdown_3"]["up"].iloc[2:].eq(0.0).all()
    # the windows holding the missing return are NaN, the others are computed
    assert got["volatility_3"]["gap"].isna().tolist() == [True, True, True, True, True, False, False, False]
    assert got["max_drawdown_3"]["gap"].iloc[5] == pytest.approx(-0.01, abs=1e-15)
    for frame in got.values():
        assert np.isfinite(frame.to_numpy()[~np.isnan(frame.to_numpy())]).all()


def test_max_drawdown_includes_the_nav_before_the_window() -> None:
    r = pd.DataFrame({"a": [0.1, -0.05, 0.02, -0.1, 0.5]})
    got = rolling_max_drawdown(r, 2)["a"].tolist()
    assert math.isnan(got[0])
    assert got[1:] == pytest.approx([-0.05, -0.05, -0.1, -0.1], abs=1e-15)
