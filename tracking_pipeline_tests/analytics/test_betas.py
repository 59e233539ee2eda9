"""Rolling OLS betas against statsmodels on real prices (AAPL, JNJ, NVDA, XOM vs SPY)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.regression.rolling import RollingOLS

from tracking_pipeline.analytics.betas import (
    PARALLEL_MIN_CELLS, cap_beta, ols_beta, rolling_market_betas, rolling_ols, two_sided_t_p_value,
)
from tracking_pipeline_tests.helpers import demo_returns

TICKERS = ["AAPL", "JNJ", "NVDA", "XOM"]
RTOL = 1e-8


@lru_cache(maxsize=1)
def _returns() -> pd.DataFrame:
    return demo_returns([*TICKERS, "SPY"], "2018-12-01", "2020-12-31")


def _with_gaps() -> pd.DataFrame:
    r = _returns().copy()
    # gaps in a stock, in the market, and a stretch that leaves < 30 paired observations
    r.iloc[100:110, r.columns.get_loc("AAPL")] = np.nan
    r.iloc[105:112, r.columns.get_loc("SPY")] = np.nan
    r.iloc[300:370, r.columns.get_loc("JNJ")] = np.nan
    return r


def _statsmodels(y: np.ndarray, x: np.ndarray) -> dict[str, float]:
    m = np.isfinite(y) & np.isfinite(x)
    fit = sm.OLS(y[m], sm.add_constant(x[m])).fit()
    return {
        "alpha": fit.params[0],
        "beta": fit.params[1],
        "r_squared": fit.rsquared,
        "std_error": fit.bse[1],
        "p_value": fit.pvalues[1],
        "observations": fit.nobs,
    }


@pytest.mark.parametrize("t", [29, 89, 108, 250, 320, 369, 420, -1])
def test_rolling_ols_matches_statsmodels_every_output(t: int) -> None:
    r = _with_gaps()
    y = r[TICKERS].to_numpy()
    x = r["SPY"].to_numpy()
    res = rolling_ols(y, x, window=90, min_obs=30)
    t = t % len(r)
    lo = max(t - 89, 0)
    for j, ticker in enumerate(TICKERS):
        yy, xx = y[lo : t + 1, j], x[lo : t + 1]
        n = int((np.isfinite(yy) & np.isfinite(xx)).sum())
        assert res["observations"][t, j] == n
        if n < 30:
            for key in ("beta", "alpha", "r_squared", "std_error", "p_value"):
                assert np.isnan(res[key][t, j]), (ticker, t, key)
            continue
        exp = _statsmodels(yy, xx)
        for key, value in exp.items():
            assert res[key][t, j] == pytest.approx(value, rel=RTOL, abs=1e-300), (ticker, t, key)


def test_windows_with_missing_values_and_too_few_observations() -> None:
    r = _with_gaps()
    res = rolling_ols(r[TICKERS].to_numpy(), r["SPY"].to_numpy(), window=90, min_obs=30)
    j_aapl, j_jnj = TICKERS.index("AAPL"), TICKERS.index("JNJ")
    # AAPL gap 100-109 and SPY gap 105-111 overlap: 12 pairs lost in the window ending at 150
    assert res["observations"][150, j_aapl] == 90 - 12
    assert np.isfinite(res["beta"][150, j_aapl])
    # JNJ missing 300..369: window ending at 369 has 20 pairs -> no output
    assert res["observations"][369, j_jnj] == 20
    assert np.isnan(res["beta"][369, j_jnj]) and np.isnan(res["p_value"][369, j_jnj])
    # the first 29 rows never have 30 observations
    assert np.isnan(res["beta"][:29]).all() and np.isfinite(res["beta"][29]).all()
    # JNJ comes back once 30 pairs are in the window again (row 399)
    assert np.isnan(res["beta"][398, j_jnj]) and np.isfinite(res["beta"][399, j_jnj])


def test_matches_statsmodels_rolling_ols_on_full_windows() -> None:
    r = _returns()
    res = rolling_ols(r[TICKERS].to_numpy(), r["SPY"].to_numpy(), window=90, min_obs=30)
    exog = sm.add_constant(r["SPY"].to_numpy())
    for j, ticker in enumerate(TICKERS):
        roll = RollingOLS(r[ticker].to_numpy(), exog, window=90).fit(use_t=True)
        full = slice(89, None)
        np.testing.assert_allclose(res["beta"][full, j], roll.params[full, 1], rtol=RTOL)
        np.testing.assert_allclose(res["alpha"][full, j], roll.params[full, 0], rtol=1e-7, atol=1e-12)
        np.testing.assert_allclose(res["r_squared"][full, j], roll.rsquared[full], rtol=RTOL)
        np.testing.assert_allclose(res["std_error"][full, j], roll.bse[full, 1], rtol=RTOL)
        np.testing.assert_allclose(res["p_value"][full, j], roll.pvalues[full, 1], rtol=1e-7)
        assert (res["observations"][full, j] == 90).all()


def test_ols_beta_single_window_and_perfect_fit() -> None:
    r = _returns().iloc[-90:]
    one = ols_beta(r["NVDA"], r["SPY"])
    exp = _statsmodels(r["NVDA"].to_numpy(), r["SPY"].to_numpy())
    for key, value in exp.items():
        assert one[key] == pytest.approx(value, rel=RTOL)
    # market on itself: beta 1, R^2 1, zero standard error, p-value 0
    self_fit = ols_beta(r["SPY"], r["SPY"])
    assert self_fit["beta"] == pytest.approx(1.0, rel=1e-12)
    assert self_fit["r_squared"] == pytest.approx(1.0, rel=1e-12)
    assert self_fit["std_error"] == pytest.approx(0.0, abs=1e-12)
    assert self_fit["p_value"] == pytest.approx(0.0, abs=1e-12)


def test_cap_and_long_table() -> None:
    rng = np.random.default_rng(1)
    idx = pd.bdate_range("2020-01-01", periods=120)
    mkt = pd.Series(rng.normal(0, 0.01, 120), index=idx)
    wide = pd.DataFrame({"LEV": 8 * mkt + rng.normal(0, 0.002, 120), "INV": -0.5 * mkt + rng.normal(0, 0.01, 120)})
    table = rolling_market_betas(wide, mkt, window=90, min_obs=30)
    assert set(table.columns) == {"calc_date", "ticker", "beta", "alpha", "r_squared", "std_error", "p_value", "observations"}
    assert len(table) == 2 * (120 - 29)  # rows only from the 30th observation on
    lev = table[table.ticker == "LEV"]
    assert (lev.beta == 5.0).all()  # capped
    raw = rolling_ols(wide["LEV"].to_numpy(), mkt.to_numpy(), 90, 30)
    # std_error / p_value are those of the uncapped fit
    np.testing.assert_allclose(lev.std_error.to_numpy(), raw["std_error"][29:], rtol=1e-12)
    assert (raw["beta"][29:] > 7.5).all()
    assert table.observations.dtype == np.int64 and table.observations.max() == 90
    np.testing.assert_array_equal(cap_beta(np.array([-7.0, np.nan, 2.0, 6.0])), [-5.0, np.nan, 2.0, 5.0])


@pytest.mark.parametrize("block", [1, 3])
def test_column_blocks_give_the_same_fit(block: int) -> None:
    r = _with_gaps()
    y, x = r[TICKERS].to_numpy(), r["SPY"].to_numpy()
    whole = rolling_ols(y, x, window=90, min_obs=30, block=len(TICKERS))
    blocked = rolling_ols(y, x, window=90, min_obs=30, block=block)
    assert whole.keys() == blocked.keys()
    for key in whole:
        np.testing.assert_allclose(blocked[key], whole[key], rtol=1e-12, atol=1e-17, err_msg=key)
    assert np.isfinite(whole["beta"]).any() and np.isnan(whole["beta"]).any()
    with pytest.raises(ValueError, match="block"):
        rolling_ols(y, x, block=0)


def test_long_table_is_date_major_with_the_wide_values() -> None:
    r = _with_gaps()
    table = rolling_market_betas(r[TICKERS], r["SPY"], window=90, min_obs=30)
    assert table["calc_date"].is_monotonic_increasing
    res = rolling_ols(r[TICKERS].to_numpy(), r["SPY"].to_numpy(), window=90, min_obs=30)
    wide = table.pivot(index="calc_date", columns="ticker", values="alpha").reindex(index=r.index, columns=TICKERS)
    np.testing.assert_array_equal(wide.to_numpy(), res["alpha"])
    assert len(table) == int(np.isfinite(res["beta"]).sum())


@pytest.mark.parametrize("cells", [7, PARALLEL_MIN_CELLS + 1001])
def test_t_p_values_equal_scipy_in_one_call_and_in_chunks(cells: int) -> None:
    rng = np.random.default_rng(3)
    t = rng.standard_t(5, cells) * 4
    dof = rng.integers(1, 120, cells).astype(float)
    t[:3], dof[3] = [np.inf, -np.inf, np.nan], np.nan
    got = two_sided_t_p_value(t.reshape(-1, 1), dof.reshape(-1, 1))
    assert got.shape == (cells, 1)
    want = 2 * stats.t.sf(np.abs(t), dof)
    np.testing.assert_allclose(got[:, 0], want, rtol=1e-12, atol=1e-300)
    assert got[0, 0] == 0.0 and got[1, 0] == 0.0 and np.isnan(got[2, 0]) and np.isnan(got[3, 0])
