"""Realised volatility, HAR-RV forecast (vs an independent statsmodels fit), trend and percentile."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from tracking_pipeline.analytics.volatility import (
    har_rv_forecast,
    har_rv_forecast_frame,
    realized_vol_sqrt_sum,
    volatility_percentile,
    volatility_trend,
)
from tracking_pipeline_tests.helpers import demo_returns


@lru_cache(maxsize=1)
def _returns() -> pd.DataFrame:
    return demo_returns(["AAPL", "XOM", "SPY"], "2018-01-02", "2023-10-27")


def test_realized_vol_sqrt_sum_by_hand() -> None:
    r = pd.Series([0.01, -0.02, 0.03, np.nan, 0.01, 0.02])
    v = realized_vol_sqrt_sum(r, 3)
    assert v.iloc[:2].isna().all()
    assert v.iloc[2] == pytest.approx(math.sqrt(252 / 3 * (0.0001 + 0.0004 + 0.0009)))
    assert v.iloc[3:5].isna().all()  # a missing return inside the window
    wide = pd.DataFrame({"a": r, "b": -r})
    np.testing.assert_allclose(realized_vol_sqrt_sum(wide, 3)["b"], v, equal_nan=True)


def test_two_stock_portfolio_vol_is_quadratic_form_and_diversifies() -> None:
    r = _returns().loc["2019-01-01":"2019-12-31", ["AAPL", "XOM"]].dropna()
    w = np.array([0.6, 0.4])
    port = r @ w  # daily-rebalanced portfolio returns
    n = 63
    window = r.to_numpy()[-n:]
    sigma = window.T @ window * 252 / n  # annualised (uncentred) second-moment matrix
    expected = math.sqrt(w @ sigma @ w)
    got = realized_vol_sqrt_sum(port, n).iloc[-1]
    assert got == pytest.approx(expected, rel=1e-12)
    stock_vols = realized_vol_sqrt_sum(r, n).iloc[-1].to_numpy()
    assert got < w @ stock_vols  # diversification: below the weighted average of stock vols
    assert w @ stock_vols - got > 0.01  # and materially so (correlation well below 1)


def _har_reference(r: pd.Series, t: int) -> float:
    """Independent construction of the contract's HAR-RV specification, fitted with statsmodels, with the
    insanity filter (a prediction <= 0 or above the training set's largest target -> the targets' mean)."""
    rv = r**2
    d = pd.DataFrame({"rv_d": rv})
    d["rv_w"] = sum(rv.shift(i) for i in range(5)) / 5
    d["rv_m"] = sum(rv.shift(i) for i in range(22)) / 22
    d["target"] = sum(rv.shift(-i) for i in range(1, 22)) / 21
    d["pos"] = np.arange(len(d))
    train = d[(d.pos + 21 <= t)].dropna().tail(504)
    if len(train) < 126:
        return float("nan")
    fit = sm.OLS(train["target"], sm.add_constant(train[["rv_d", "rv_w", "rv_m"]])).fit()
    x = d.iloc[t]
    pred = fit.params["const"] + sum(fit.params[c] * x[c] for c in ("rv_d", "rv_w", "rv_m"))
    if pred <= 0 or pred > train["target"].max():
        pred = train["target"].mean()
    return min(math.sqrt(252 * pred), 3.0)


def test_har_forecast_matches_statsmodels_fit() -> None:
    r = _returns()["SPY"]
    fc = har_rv_forecast(r)
    # first valid date: 126 complete rows need s = 21..146 -> t = 167
    assert fc.iloc[:167].isna().all() and np.isfinite(fc.iloc[167])
    covid = r.index.get_loc(pd.Timestamp("2020-03-16"))
    dates = [167, 300, 700, covid, covid + 10, len(r) - 250, len(r) - 1]  # incl. the COVID spike
    for t in dates:
        assert fc.iloc[t] == pytest.approx(_har_reference(r, t), rel=1e-8), r.index[t]
    assert 0.05 < fc.loc["2019-06-03"] < 0.4


def test_har_forecast_uses_no_future_data() -> None:
    r = _returns()["SPY"].iloc[:900]
    full = har_rv_forecast(r)
    cut = har_rv_forecast(r.iloc[:600])
    np.testing.assert_allclose(cut.to_numpy(), full.iloc[:600].to_numpy(), rtol=1e-12, equal_nan=True)


def test_har_gap_reaches_back_and_cap() -> None:
    r = _returns()["SPY"].iloc[:800].copy()
    r.iloc[400] = np.nan
    fc = har_rv_forecast(r)
    # regressor at t missing for 22 days after the gap -> NaN; then valid again
    assert fc.iloc[400:422].isna().all() and np.isfinite(fc.iloc[422])
    assert fc.iloc[700] == pytest.approx(_har_reference(r, 700), rel=1e-8)
    huge = pd.Series(np.tile([0.5, -0.5], 200))  # ~800% annualised volatility
    assert har_rv_forecast(huge).dropna().eq(3.0).all()
    assert har_rv_forecast(r.iloc[:150]).isna().all()  # fewer than 126 complete observations


def test_volatility_trend() -> None:
    assert volatility_trend(0.23, 0.20) == "increasing"
    assert volatility_trend(0.2199, 0.20) == "stable"
    assert volatility_trend(0.2201, 0.20) == "increasing"
    assert volatility_trend(0.17, 0.20) == "decreasing"
    assert volatility_trend(0.1801, 0.20) == "stable"
    assert volatility_trend(0.1799, 0.20) == "decreasing"
    assert volatility_trend(float("nan"), 0.2) is None
    s = volatility_trend(pd.Series([0.3, 0.2, 0.1, np.nan]), pd.Series([0.2, 0.2, 0.2, 0.2]))
    assert s.tolist() == ["increasing", "stable", "decreasing", None]


def test_volatility_percentile_by_hand() -> None:
    rv = pd.Series([np.nan, 0.3, 0.1, 0.2, 0.2, 0.5, 0.05])
    pct = volatility_percentile(rv, lookback=4)
    assert math.isnan(pct.iloc[0])
    assert pct.iloc[1] == 1.0  # only one value so far
    assert pct.iloc[2] == pytest.approx(1 / 2)  # 0.1 among {0.3, 0.1}
    assert pct.iloc[3] == pytest.approx(2 / 3)  # 0.2 among {0.3, 0.1, 0.2}
    assert pct.iloc[4] == pytest.approx(3 / 4)  # ties count as <=: {0.3, 0.1, 0.2, 0.2}
    assert pct.iloc[5] == pytest.approx(4 / 4)  # window {0.1, 0.2, 0.2, 0.5}
    assert pct.iloc[6] == pytest.approx(1 / 4)  # window {0.2, 0.2, 0.5, 0.05}
    long = pd.Series(np.arange(300.0))
    assert volatility_percentile(long).iloc[-1] == 1.0
    assert volatility_percentile(long[::-1].reset_index(drop=True)).iloc[-1] == pytest.approx(1 / 252)


def _spike(seed: int = 3) -> pd.Series:
    """Two calm years, a two-week crash (daily moves of 6-12%), then calm again."""
    rng = np.random.default_rng(seed)
    calm = rng.normal(0.0, 0.008, 600)
    crash = rng.choice([-1.0, 1.0], 10) * rng.uniform(0.06, 0.12, 10)
    after = rng.normal(0.0, 0.008, 120)
    return pd.Series(np.r_[calm, crash, after], index=pd.bdate_range("2018-01-02", periods=730))


def test_insanity_filter_on_a_crafted_spike() -> None:
    """Right after a spike the linear HAR predicts a negative variance: the forecast is the training targets' mean
    (never 0), the row is flagged, and every value equals the statsmodels reference with the filter."""
    r = _spike()
    frame = har_rv_forecast_frame(r)
    negative = frame.index[frame["prediction"] <= 0]
    above = frame.index[frame["prediction"] > 0].intersection(frame.index[frame["filtered"] == True])  # noqa: E712
    assert len(negative) > 0, "the crafted spike must drive the raw prediction below zero"
    assert (frame.loc[negative, "filtered"] == True).all()  # noqa: E712
    assert (frame["expected_volatility"].dropna() > 0).all()
    for day in [*negative[:3], *negative[-2:], *above[:2]]:
        t = r.index.get_loc(day)
        assert frame["expected_volatility"].iloc[t] == pytest.approx(_har_reference(r, t), rel=1e-8), day
    # the filtered value is the mean of the training targets, by hand
    t = r.index.get_loc(negative[0])
    rv = r.to_numpy() ** 2
    s = np.arange(21, t - 20)  # complete observations: 22 days of history, target known at t
    s = s[-504:]
    targets = np.array([rv[i + 1:i + 22].mean() for i in s])
    assert frame["expected_volatility"].iloc[t] == pytest.approx(min(math.sqrt(252 * targets.mean()), 3.0), rel=1e-9)
    unfiltered = frame["filtered"] == False  # noqa: E712
    assert unfiltered.sum() > 300
    p = frame.loc[unfiltered, "prediction"]
    np.testing.assert_allclose(frame.loc[unfiltered, "expected_volatility"], np.minimum(np.sqrt(252 * p), 3.0))


def test_no_forecast_is_zero_on_demo_series() -> None:
    """Across 2018-2023 (the COVID spike included) no forecast of a demo series is 0, and each filtered date
    equals the statsmodels reference."""
    for ticker in ("AAPL", "XOM", "SPY"):
        r = _returns()[ticker]
        frame = har_rv_forecast_frame(r)
        valid = frame["expected_volatility"].dropna()
        assert len(valid) > 1000 and (valid > 0).all(), ticker
        for day in frame.index[frame["filtered"] == True][:3]:  # noqa: E712
            t = r.index.get_loc(day)
            assert frame["expected_volatility"].iloc[t] == pytest.approx(_har_reference(r, t), rel=1e-8), day


def test_a_series_without_variance_has_no_forecast() -> None:
    assert har_rv_forecast(pd.Series(np.zeros(400))).isna().all()
