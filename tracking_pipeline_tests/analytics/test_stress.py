"""Beta shock scenarios and historical replays, by hand."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tracking_pipeline.analytics.stress import (
    HISTORICAL_SCENARIOS,
    beta_shock_scenarios,
    historical_replay,
    historical_replays,
)

DATA = Path("/work/shared/data")


def test_beta_shock_scenarios_by_hand() -> None:
    df = beta_shock_scenarios(1.2, 1_000_000.0)
    assert df.scenario.tolist() == ["Market -10%", "Market -20%", "Market -30%", "Market +10%"]
    assert df.market_shock.tolist() == pytest.approx([-0.10, -0.20, -0.30, 0.10])
    assert df.expected_return.tolist() == pytest.approx([-0.12, -0.24, -0.36, 0.12])
    assert df.expected_pnl.tolist() == pytest.approx([-120_000.0, -240_000.0, -360_000.0, 120_000.0])
    neg = beta_shock_scenarios(-0.5, 200.0, shocks=(-0.2,))
    assert neg.expected_pnl.iloc[0] == pytest.approx(20.0)


def _prices() -> pd.DataFrame:
    idx = pd.to_datetime(["2020-02-18", "2020-02-19", "2020-02-20", "2020-03-20", "2020-03-23", "2020-03-24"])
    return pd.DataFrame(
        {"A": [99.0, 100.0, 101.0, 70.0, 60.0, 65.0], "B": [49.0, 50.0, 50.0, 45.0, 40.0, 44.0], "C": [np.nan, np.nan, 1.0, 1.0, 1.0, 1.0]},
        index=idx,
    )


def test_historical_replay_buy_and_hold_with_cash() -> None:
    prices = _prices()
    # A: 60/100 - 1 = -0.40; B: 40/50 - 1 = -0.20; 30% cash earns 0
    ret = historical_replay({"A": 0.5, "B": 0.2}, prices, "2020-02-19", "2020-03-23")
    assert ret == pytest.approx(0.5 * -0.40 + 0.2 * -0.20)
    # bounds missing from the index snap inward: start forward to 02-19, end back to 03-20
    assert historical_replay({"A": 1.0}, prices, "2020-02-18 12:00", "2020-03-22") == pytest.approx(70 / 100 - 1)
    # missing price on the start day -> skipped
    assert historical_replay({"A": 0.5, "C": 0.5}, prices, "2020-02-19", "2020-03-23") is None
    # ticker without prices or window outside the data -> skipped; zero weight ignored
    assert historical_replay({"A": 0.5, "Q": 0.1}, prices, "2020-02-19", "2020-03-23") is None
    assert historical_replay({"A": 0.5}, prices, "2018-09-20", "2018-12-24") is None
    assert historical_replay({"A": 0.5, "C": 0.0}, prices, "2020-02-19", "2020-03-23") == pytest.approx(-0.2)


def test_historical_replays_table() -> None:
    table = historical_replays({"A": 0.5, "B": 0.2}, _prices(), market_ticker="A")
    assert table.scenario.tolist() == ["COVID crash"]  # the other scenarios lack prices
    assert table.portfolio_return.iloc[0] == pytest.approx(-0.24)
    assert table.market_return.iloc[0] == pytest.approx(-0.40)


def test_scenario_dates_are_spy_peaks_and_troughs() -> None:
    if not (DATA / "etfs_daily.csv.gz").exists():  # the scenarios reach back to 2007, before the demo lake
        message = f"{DATA} (the shared market data, SPY since 2007) is not on this machine"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    etfs = pd.read_csv(DATA / "etfs_daily.csv.gz", usecols=["date", "ticker", "close"])
    spy = etfs[etfs.ticker == "SPY"].set_index(pd.to_datetime(etfs.loc[etfs.ticker == "SPY", "date"]))["close"]
    for name, sc in HISTORICAL_SCENARIOS.items():
        start, end = pd.Timestamp(sc.start), pd.Timestamp(sc.end)
        around = spy.loc[start - pd.Timedelta(days=60) : end + pd.Timedelta(days=30)]
        assert around.loc[:end].idxmax() == start, name
        assert around.loc[start:].idxmin() == end, name
        assert start in spy.index and end in spy.index
    covid = historical_replay({"SPY": 1.0}, spy.to_frame("SPY"), "2020-02-19", "2020-03-23")
    assert covid == pytest.approx(222.949997 / 338.339996 - 1, rel=1e-5)
