"""Indicators against values computed by hand on short series."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tracking_pipeline.analytics import indicators as ind

IDX = pd.bdate_range("2024-01-01", periods=8)
P = pd.Series([10.0, 11.0, 10.5, 12.0, 12.0, 11.0, 13.0, 14.0], index=IDX, name="X")


def test_simple_returns_no_fill_across_gaps() -> None:
    p = pd.Series([10.0, 11.0, np.nan, 12.0, 13.2])
    r = ind.simple_returns(p)
    assert math.isnan(r[0]) and math.isnan(r[2]) and math.isnan(r[3])
    assert r[1] == pytest.approx(0.1)
    assert r[4] == pytest.approx(0.1)


def test_sma_and_ema_by_hand() -> None:
    s = ind.sma(P, 3)
    assert s.iloc[:2].isna().all()
    assert s.iloc[2] == pytest.approx((10 + 11 + 10.5) / 3)
    assert s.iloc[7] == pytest.approx((11 + 13 + 14) / 3)
    e = ind.ema(P, 3)  # alpha = 0.5
    exp = [10.0]
    for v in P.iloc[1:]:
        exp.append(0.5 * v + 0.5 * exp[-1])
    np.testing.assert_allclose(e.to_numpy(), exp, rtol=1e-12)
    assert e.iloc[2] == pytest.approx(0.5 * 10.5 + 0.5 * (0.5 * 11 + 0.5 * 10))  # 10.5


def test_rsi_wilder_by_hand() -> None:
    p = pd.Series([1.0, 2.0, 1.5, 2.5])
    r = ind.rsi(p, window=2)
    # changes +1, -0.5, +1; Wilder alpha 1/2 seeded with the first change:
    # avg gain 1, 0.5, 0.75; avg loss 0, 0.25, 0.125 -> RS 2 (row 2), 6 (row 3)
    assert r.iloc[:2].isna().all()
    assert r.iloc[2] == pytest.approx(100 - 100 / 3)
    assert r.iloc[3] == pytest.approx(100 - 100 / 7)


def test_rsi_longer_series_matches_recursion() -> None:
    rsi = ind.rsi(P, window=3)
    d = np.diff(P.to_numpy())
    ag, al = max(d[0], 0), max(-d[0], 0)
    expected = [np.nan, np.nan, np.nan]
    for i, di in enumerate(d[1:], start=2):
        ag = (2 * ag + max(di, 0)) / 3
        al = (2 * al + max(-di, 0)) / 3
        if i >= 3:
            expected.append(100 - 100 / (1 + ag / al))
    np.testing.assert_allclose(rsi.to_numpy()[3:], expected[3:], rtol=1e-12)


def test_rsi_edge_cases() -> None:
    up = pd.Series(np.arange(1.0, 21.0))
    assert (ind.rsi(up, 14).dropna() == 100.0).all()
    assert ind.rsi(up, 14).notna().sum() == 20 - 14
    flat = pd.Series(np.full(20, 5.0))
    assert (ind.rsi(flat, 14).dropna() == 50.0).all()


def test_momentum_drawdown_realized_vol() -> None:
    m = ind.momentum(P, 2)
    assert m.iloc[2] == pytest.approx(10.5 / 10 - 1)
    assert m.iloc[1] != m.iloc[1]  # NaN
    dd = ind.drawdown(P)
    assert dd.iloc[2] == pytest.approx(10.5 / 11 - 1)
    assert dd.iloc[5] == pytest.approx(11 / 12 - 1)
    assert dd.iloc[7] == 0.0
    r = ind.simple_returns(P)
    rv = ind.realized_volatility(r, 3)
    assert rv.iloc[:3].isna().all()
    assert rv.iloc[5] == pytest.approx(np.std(r.iloc[3:6].to_numpy(), ddof=1) * math.sqrt(252))


def test_macd_bollinger() -> None:
    macd, signal, hist = ind.macd(P, fast=2, slow=4, signal=3)
    e2 = P.ewm(alpha=2 / 3, adjust=False).mean()
    e4 = P.ewm(alpha=2 / 5, adjust=False).mean()
    np.testing.assert_allclose(macd, e2 - e4, rtol=1e-12)
    np.testing.assert_allclose(hist, macd - signal, rtol=1e-12)
    assert macd.iloc[1] == pytest.approx((2 / 3 * 11 + 1 / 3 * 10) - (2 / 5 * 11 + 3 / 5 * 10))
    mid, up, lo = ind.bollinger(P, 3, 2.0)
    w = np.array([12.0, 12.0, 11.0])
    sd0 = math.sqrt(((w - w.mean()) ** 2).sum() / 3)  # population std
    assert mid.iloc[5] == pytest.approx(w.mean())
    assert up.iloc[5] == pytest.approx(w.mean() + 2 * sd0)
    assert lo.iloc[5] == pytest.approx(w.mean() - 2 * sd0)


def test_atr_stochastic_obv_by_hand() -> None:
    high = pd.Series([10.0, 11.0, 12.0, 11.5])
    low = pd.Series([9.0, 10.0, 10.5, 9.0])
    close = pd.Series([9.5, 10.8, 11.0, 9.5])
    # TR: 1 (h-l), max(1, 1.5, .5)=1.5, max(1.5, 1.2, .3)=1.5, max(2.5, .5, 2)=2.5
    a = ind.atr(high, low, close, window=2)
    assert math.isnan(a.iloc[0])
    assert a.iloc[1] == pytest.approx(0.5 * 1 + 0.5 * 1.5)
    assert a.iloc[2] == pytest.approx(0.5 * 1.25 + 0.5 * 1.5)
    assert a.iloc[3] == pytest.approx(0.5 * 1.375 + 0.5 * 2.5)
    k, d = ind.stochastic(high, low, close, k=2, d=2)
    assert k.iloc[1] == pytest.approx(100 * (10.8 - 9) / (11 - 9))
    assert k.iloc[2] == pytest.approx(100 * (11 - 10) / (12 - 10))
    assert k.iloc[3] == pytest.approx(100 * (9.5 - 9) / (12 - 9))
    assert d.iloc[2] == pytest.approx((90 + 50) / 2)
    vol = pd.Series([100.0, 200.0, 300.0, 400.0])
    o = ind.obv(pd.Series([10.0, 11.0, 11.0, 10.0]), vol)
    assert o.tolist() == [0.0, 200.0, 200.0, -200.0]


def test_wide_frames_keep_shape_and_columns() -> None:
    wide = pd.DataFrame({"A": P, "B": P * 2})
    for out in (ind.rsi(wide, 3), ind.sma(wide, 3), ind.momentum(wide, 2), ind.drawdown(wide)):
        assert out.shape == wide.shape and list(out.columns) == ["A", "B"]
    np.testing.assert_allclose(ind.rsi(wide, 3)["B"], ind.rsi(P, 3), equal_nan=True)
    a_wide = ind.atr(wide * 1.01, wide * 0.99, wide, 3)
    np.testing.assert_allclose(a_wide["A"], ind.atr(P * 1.01, P * 0.99, P, 3), equal_nan=True)
