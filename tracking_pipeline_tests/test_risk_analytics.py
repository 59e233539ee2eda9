"""The frame versions of the risk functions (sector exposure, drift, historical replays) agree row by row with
their single-date counterparts and with hand computations; the rebalance threshold setting."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from tracking_pipeline.analytics.concentration import (
    BUILTIN_SP500_SECTOR_WEIGHTS, UNCLASSIFIED, allocation_drift, allocation_drift_frame, sector_exposure,
    sector_exposure_records, sector_weights_frame,
)
from tracking_pipeline.analytics.stress import (
    HistoricalScenario, episode_rows, historical_replay, historical_replays_frame,
)
from tracking_pipeline.services.portfolio_risk import THRESHOLD_ENV, rebalance_threshold

DAYS = pd.date_range("2024-01-01", periods=4, freq="D")
WEIGHTS = pd.DataFrame({"AAPL": [0.3, 0.32, 0.0, 0.1], "MSFT": [0.2, 0.18, 0.5, np.nan],
                        "SPY": [0.1, 0.1, 0.1, 0.0], "XOM": [0.0, 0.05, 0.2, 0.3]}, index=DAYS)
SECTORS = {"AAPL": "Information Technology", "MSFT": "Technology", "XOM": "Energy"}  # SPY unknown


def test_sector_weights_frame_by_hand() -> None:
    frame = sector_weights_frame(WEIGHTS, SECTORS)
    assert list(frame.columns) == ["Energy", "Information Technology", UNCLASSIFIED]
    np.testing.assert_allclose(frame["Information Technology"], [0.5, 0.5, 0.5, 0.1])
    np.testing.assert_allclose(frame[UNCLASSIFIED], [0.1, 0.1, 0.1, 0.0])
    np.testing.assert_allclose(frame["Energy"], [0.0, 0.05, 0.2, 0.3])


@pytest.mark.parametrize("benchmark", [None, {"Technology": 0.6, "Energy": 0.3, "Healthcare": 0.1}])
def test_sector_exposure_records_equal_single_date_function(benchmark) -> None:
    records = sector_exposure_records(WEIGHTS, SECTORS, benchmark)
    assert len(records) == len(WEIGHTS)
    for (_, row), got in zip(WEIGHTS.iterrows(), records):
        want = sector_exposure(row.dropna(), SECTORS, benchmark)
        assert list(got) == list(want)
        for sector, values in want.items():
            assert got[sector] == pytest.approx(values, abs=1e-12)
    # row 0 holds no Energy but the benchmark lists it; row 3 holds no Unclassified (SPY at 0) -> not shown
    assert records[0]["Energy"]["portfolio"] == 0.0
    assert UNCLASSIFIED not in records[3]
    if benchmark is None:
        assert records[0]["Health Care"]["benchmark"] == pytest.approx(BUILTIN_SP500_SECTOR_WEIGHTS["Health Care"])


def test_allocation_drift_frame_equals_single_date_function() -> None:
    target = pd.DataFrame({"AAPL": [0.3, 0.3, 0.1, 0.1], "MSFT": [0.2, 0.2, 0.5, 0.0], "GE": [0.0, 0.0, 0.0, 0.2]},
                          index=DAYS)
    frame = allocation_drift_frame(WEIGHTS, target)
    for day in DAYS:
        value, ticker = allocation_drift(WEIGHTS.loc[day].dropna(), target.loc[day])
        assert frame.loc[day, "max_allocation_drift"] == pytest.approx(value)
        assert frame.loc[day, "max_drift_ticker"] == ticker
    # by hand, day 3: |0.1-0.1|, |0-0|, |0-0|, |0.3-0|, GE |0-0.2| -> XOM 0.3
    assert frame.loc[DAYS[3], "max_allocation_drift"] == pytest.approx(0.3)
    assert frame.loc[DAYS[3], "max_drift_ticker"] == "XOM"


def test_zero_drift_names_a_held_ticker_never_one_only_listed() -> None:
    """On a rebalance day every drift is 0: the tie goes to the first ticker held or targeted, not to a ticker
    listed at 0 on both sides (e.g. one the book buys only at a later rebalance: no look-ahead)."""
    days = pd.DatetimeIndex(["2024-01-02", "2024-01-03", "2024-01-04"])
    current = pd.DataFrame({"AAA": [0.0, 0.0, 0.0], "MSFT": [0.5, 0.52, 0.0], "XOM": [0.5, 0.48, 0.0]}, index=days)
    target = pd.DataFrame({"AAA": [0.0, 0.0, 0.0], "MSFT": [0.5, 0.5, 0.0], "XOM": [0.5, 0.5, 0.0]}, index=days)
    frame = allocation_drift_frame(current, target)
    assert list(frame["max_drift_ticker"].iloc[:2]) == ["MSFT", "MSFT"] and pd.isna(frame["max_drift_ticker"].iloc[2])
    assert frame["max_allocation_drift"].tolist() == pytest.approx([0.0, 0.02, 0.0])
    assert [allocation_drift(current.loc[day], target.loc[day]) for day in days] == [
        (0.0, "MSFT"), (pytest.approx(0.02), "MSFT"), (0.0, None)]


def test_historical_replays_frame_equals_single_replay_and_has_no_look_ahead() -> None:
    index = pd.bdate_range("2020-01-01", periods=30)
    rng = np.random.default_rng(3)
    prices = pd.DataFrame(100 * np.exp(np.cumsum(rng.normal(0, 0.02, (30, 3)), axis=0)), index=index,
                          columns=["A", "B", "M"])
    prices.iloc[6, 1] = np.nan  # B unpriced on the second scenario's first day
    scenarios = {"first": HistoricalScenario(date(2020, 1, 2), date(2020, 1, 8), "x"),
                 "second": HistoricalScenario(index[6].date(), index[12].date(), "y")}
    dates = index[[3, 10, 20, 25, 29]]
    weights = pd.DataFrame({"A": [0.5, 0.2, 0.6, 0.4, 0.0], "B": [0.3, 0.7, 0.1, 0.0, 0.0]}, index=dates)
    frame = historical_replays_frame(weights, prices, scenarios, market_ticker="M")
    got = {(r.date, r.scenario): r for r in frame.itertuples()}
    for day in dates:
        for name, sc in scenarios.items():
            want = historical_replay(weights.loc[day], prices, sc.start, sc.end)
            over = day >= pd.Timestamp(sc.end)
            if want is None or not over:
                assert (day, name) not in got
            else:
                assert got[(day, name)].portfolio_return == pytest.approx(want)
                assert got[(day, name)].market_return == pytest.approx(
                    prices.loc[pd.Timestamp(sc.end), "M"] / prices.loc[pd.Timestamp(sc.start), "M"] - 1)
    # first scenario by hand on index[10]: 0.2 * A move + 0.7 * B move
    move = prices.loc["2020-01-08"] / prices.loc["2020-01-02"] - 1
    assert got[(index[10], "first")].portfolio_return == pytest.approx(0.2 * move["A"] + 0.7 * move["B"])
    assert (index[25], "second") in got and (index[20], "second") not in got  # B held but unpriced -> skipped
    assert got[(index[29], "first")].portfolio_return == 0.0  # all cash


def test_rebalance_threshold_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(THRESHOLD_ENV, raising=False)
    assert rebalance_threshold() == 0.05
    monkeypatch.setenv(THRESHOLD_ENV, "0.02")
    assert rebalance_threshold() == 0.02
    for bad in ("five", "1.5", "-0.1"):
        monkeypatch.setenv(THRESHOLD_ENV, bad)
        with pytest.raises(ValueError, match=THRESHOLD_ENV):
            rebalance_threshold()


def test_episode_rows_are_the_rows_a_replay_reads() -> None:
    days = pd.bdate_range("2020-01-01", "2020-06-30")
    prices = pd.DataFrame({"A": np.linspace(100, 130, len(days))}, index=days)
    scenarios = {"covered": HistoricalScenario(date(2020, 2, 15), date(2020, 3, 23), "weekend start"),
                 "open": HistoricalScenario(date(2020, 6, 1), date(2020, 12, 31), "not over in the data"),
                 "before": HistoricalScenario(date(2019, 1, 1), date(2019, 6, 1), "before the data")}
    rows = episode_rows(days, scenarios)
    first, last = days.get_loc(pd.Timestamp("2020-02-17")), days.get_loc(pd.Timestamp("2020-03-23"))
    assert rows[:2].tolist() == [first, last]
    a, b = prices["A"].iloc[first], prices["A"].iloc[last]
    assert historical_replay({"A": 1.0}, prices, *scenarios["covered"][:2]) == pytest.approx(b / a - 1, rel=1e-12)
    assert rows[2:].tolist() == [days.get_loc(pd.Timestamp("2020-06-01")), len(days) - 1]  # clipped to the data
    assert len(rows) == 4  # the window before the data is left out
