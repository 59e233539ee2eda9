"""Snapshot figures of issue 15 (seed 003): risk level bands, positions per sector, largest sector over- and
underweights, unclassified tickers, top-3/top-10 names, allocation bounds; by hand and against the single-date
functions on many days."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tracking_pipeline.analytics.concentration import (
    UNCLASSIFIED, bounds_breaches, largest_sector_gaps, sector_exposure, sector_position_counts,
    top_k_concentration_frame, top_positions, unclassified_tickers,
)
from tracking_pipeline.analytics.volatility import risk_level

SECTORS = {"AAPL": "Information Technology", "MSFT": "Technology", "XOM": "Energy", "JNJ": "Health Care",
           "CVX": "Energy"}
DAYS = pd.bdate_range("2021-03-01", periods=3)
WEIGHTS = pd.DataFrame({"AAPL": [0.30, 0.25, 0.0], "MSFT": [0.20, 0.20, 0.0], "XOM": [0.10, 0.0, 0.0],
                        "JNJ": [0.15, 0.15, 0.0], "ZZZZ": [0.05, 0.05, 0.0], "SPY": [0.0, 0.30, 0.5],
                        "CVX": [0.05, 0.0, 0.0]}, index=DAYS)


def test_risk_level_bands_from_seed_003() -> None:
    vols = pd.Series([0.0, 0.1499, 0.15, 0.2499, 0.25, 0.3499, 0.35, 0.4999, 0.50, 1.2, np.nan])
    assert risk_level(vols).tolist() == ["Very Low", "Very Low", "Low", "Low", "Moderate", "Moderate", "High",
                                         "High", "Very High", "Very High", None]


def test_positions_per_sector_by_hand() -> None:
    assert sector_position_counts(WEIGHTS, SECTORS) == [
        {"Energy": 2, "Health Care": 1, "Information Technology": 2, UNCLASSIFIED: 1},
        {"Health Care": 1, "Information Technology": 2, UNCLASSIFIED: 2},
        {UNCLASSIFIED: 1},
    ]


def test_unclassified_tickers_are_the_held_ones_without_a_sector() -> None:
    assert unclassified_tickers(WEIGHTS, SECTORS) == [["ZZZZ"], ["SPY", "ZZZZ"], ["SPY"]]


def test_largest_gaps_equal_the_sector_exposure_diffs() -> None:
    bench = {"Information Technology": 0.3, "Energy": 0.1, "Health Care": 0.2, "Financials": 0.4}
    gaps = largest_sector_gaps(WEIGHTS, SECTORS, bench)
    # day 1: IT 0.50 (+0.20), Energy 0.15 (+0.05), Health Care 0.15 (-0.05), Financials 0 (-0.40)
    first = gaps.iloc[0]
    assert first["largest_overweight_sector"] == "Information Technology"
    assert first["largest_overweight"] == pytest.approx(0.20)
    assert first["largest_underweight_sector"] == "Financials"
    assert first["largest_underweight"] == pytest.approx(-0.40)
    # day 3: only an unclassified ETF is held: no sector above its benchmark weight
    last = gaps.iloc[2]
    assert last["largest_overweight_sector"] is None and np.isnan(last["largest_overweight"])
    assert last["largest_underweight_sector"] == "Financials"
    for day, row in gaps.iterrows():
        diffs = {s: v["diff"] for s, v in sector_exposure(WEIGHTS.loc[day], SECTORS, bench).items()
                 if s != UNCLASSIFIED}
        assert row["largest_underweight"] == pytest.approx(min(diffs.values()))
        top = max(diffs.values())
        assert (row["largest_overweight"] == pytest.approx(top)) if top > 0 else np.isnan(row["largest_overweight"])


def test_largest_gaps_with_the_built_in_benchmark_and_ties() -> None:
    gaps = largest_sector_gaps(pd.DataFrame({"A": [0.5], "B": [0.5]}), {"A": "Energy", "B": "Utilities"},
                               {"Energy": 0.25, "Utilities": 0.25})
    assert gaps.iloc[0]["largest_overweight_sector"] == "Energy"  # a tie goes to the alphabetically first
    assert gaps.iloc[0]["largest_underweight_sector"] is None
    builtin = largest_sector_gaps(WEIGHTS.iloc[[2]], SECTORS)
    assert builtin.iloc[0]["largest_underweight_sector"] == "Information Technology"  # 28/97 of the S&P 500


def test_top_positions_list_names_and_weights() -> None:
    tops = top_positions(WEIGHTS, 3)
    assert tops[0] == [{"ticker": "AAPL", "weight": 0.30}, {"ticker": "MSFT", "weight": 0.20},
                       {"ticker": "JNJ", "weight": 0.15}]
    assert tops[1] == [{"ticker": "SPY", "weight": 0.30}, {"ticker": "AAPL", "weight": 0.25},
                       {"ticker": "MSFT", "weight": 0.20}]
    assert tops[2] == [{"ticker": "SPY", "weight": 0.5}]  # only positions held
    ten = top_positions(WEIGHTS, 10)
    np.testing.assert_allclose([sum(p["weight"] for p in row) for row in ten],
                               top_k_concentration_frame(WEIGHTS, 10).to_numpy(), rtol=1e-15)
    assert [p["ticker"] for p in ten[0]] == ["AAPL", "MSFT", "JNJ", "XOM", "CVX", "ZZZZ"]  # ties by ticker


def test_bounds_breaches_flag_each_position_outside_its_bounds() -> None:
    bounds = {"AAPL": (0.05, 0.28), "SPY": (0.0, 0.4), "XOM": (0.05, 0.2)}
    got = bounds_breaches(WEIGHTS, bounds)
    assert got[0] == [{"ticker": "AAPL", "weight": 0.30, "min": 0.05, "max": 0.28}]
    assert got[1] == [{"ticker": "XOM", "weight": 0.0, "min": 0.05, "max": 0.2}]  # not held: 0 < min
    assert got[2] == [{"ticker": "AAPL", "weight": 0.0, "min": 0.05, "max": 0.28},
                      {"ticker": "SPY", "weight": 0.5, "min": 0.0, "max": 0.4},
                      {"ticker": "XOM", "weight": 0.0, "min": 0.05, "max": 0.2}]
    assert bounds_breaches(WEIGHTS, {"AAPL": (0.0, 0.3 - 1e-12)})[0] == []  # rounding is not a breach
    assert bounds_breaches(WEIGHTS, {}) == [[], [], []]
