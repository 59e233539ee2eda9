"""Rebalancing events (seed 002) by hand: threshold crossings, trades that reproduce the post weights exactly,
one-way turnover and the cost estimate; the cost setting."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tracking_pipeline.analytics.rebalancing import SCHEDULED, THRESHOLD, event_rows, threshold_crossings
from tracking_pipeline.services.rebalancing import COST_ENV, rebalance_cost_bps

DAY = pd.Timestamp("2021-03-01")


def test_threshold_crossings_are_the_days_the_drift_rises_above_it() -> None:
    drift = pd.Series([0.0, 0.03, 0.051, 0.06, 0.049, 0.05, 0.07, 0.02], index=pd.bdate_range("2021-03-01", periods=8))
    assert threshold_crossings(drift, 0.05).tolist() == [False, False, True, False, False, False, True, False]
    assert threshold_crossings(drift.iloc[3:], 0.05, previous=0.051).tolist() == [False, False, False, True, False]
    assert threshold_crossings(drift.iloc[3:], 0.05).tolist()[0]  # without a previous day the first counts


def test_trades_reproduce_the_post_weights_exactly() -> None:
    pre = pd.Series({"AAPL": 0.42, "MSFT": 0.31, "XOM": 0.20})
    post = pd.Series({"AAPL": 0.35, "MSFT": 0.35, "JNJ": 0.25})
    prices = pd.DataFrame({"AAPL": [120.0], "MSFT": [230.0], "XOM": [55.0], "JNJ": [160.0]}, index=[DAY])
    nav = pd.Series([1_000_000.0], index=[DAY])
    row = event_rows([(DAY, SCHEDULED, pre, post)], nav, prices, cost_bps=12.0).iloc[0]
    trades = {t["ticker"]: t for t in row["trades"]}
    assert sorted(trades) == ["AAPL", "JNJ", "MSFT", "XOM"]
    for ticker in trades:
        assert pre.get(ticker, 0.0) + trades[ticker]["weight_change"] == post.get(ticker, 0.0)  # exactly
        shares_before = pre.get(ticker, 0.0) * 1e6 / prices.at[DAY, ticker]
        assert (shares_before + trades[ticker]["shares"]) * prices.at[DAY, ticker] / 1e6 == pytest.approx(
            post.get(ticker, 0.0), rel=1e-14, abs=1e-15)
    assert trades["XOM"]["value"] == pytest.approx(-200_000.0) and trades["XOM"]["shares"] == pytest.approx(-200e3 / 55)
    changes = np.array([-0.07, 0.04, -0.20, 0.25])
    assert row["turnover"] == pytest.approx(np.abs(changes).sum() / 2)
    assert row["traded_value"] == pytest.approx(np.abs(changes).sum() * 1e6)
    assert row["estimated_cost"] == pytest.approx(row["traded_value"] * 12 / 10_000)
    assert row["max_drift"] == pytest.approx(0.25)
    assert row["pre_weights"] == pre.to_dict() and row["post_weights"] == post.to_dict()


def test_an_unchanged_weight_is_not_a_trade() -> None:
    same = pd.Series({"SPY": 0.6, "AGG": 0.4})
    prices = pd.DataFrame({"SPY": [400.0], "AGG": [100.0]}, index=[DAY])
    row = event_rows([(DAY, THRESHOLD, same, same.copy())], pd.Series([100.0], index=[DAY]), prices).iloc[0]
    assert row["trades"] == [] and row["turnover"] == 0.0 and row["estimated_cost"] == 0.0


def test_cost_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(COST_ENV, raising=False)
    assert rebalance_cost_bps() == 10.0
    monkeypatch.setenv(COST_ENV, "2.5")
    assert rebalance_cost_bps() == 2.5
    for bad in ("cheap", "-1"):
        monkeypatch.setenv(COST_ENV, bad)
        with pytest.raises(ValueError, match=COST_ENV):
            rebalance_cost_bps()
