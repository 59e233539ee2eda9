"""HHI, effective N, top-k, sector exposure and allocation drift, checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tracking_pipeline.analytics.concentration import (
    BUILTIN_SP500_SECTOR_WEIGHTS,
    GICS_SECTORS,
    SEED_SP500_SECTOR_WEIGHTS,
    SEED_TO_GICS,
    allocation_drift,
    drift_exceeds,
    effective_num_positions,
    effective_num_positions_frame,
    hhi,
    hhi_frame,
    sector_exposure,
    to_gics_sector,
    top_k_concentration,
    top_k_concentration_frame,
)

W = {"AAPL": 0.30, "MSFT": 0.20, "XOM": 0.10, "JNJ": 0.15, "ZZZZ": 0.05}  # sum 0.80, 20% cash


def test_hhi_effective_n_top_k_by_hand() -> None:
    # 0.09 + 0.04 + 0.01 + 0.0225 + 0.0025 = 0.165
    assert hhi(W) == pytest.approx(1650.0)
    assert effective_num_positions(hhi(W)) == pytest.approx(10000 / 1650)
    assert top_k_concentration(W, 3) == pytest.approx(0.65)
    assert top_k_concentration(W, 10) == pytest.approx(0.80)
    assert hhi({"A": 1.0}) == pytest.approx(10000.0)
    assert effective_num_positions(hhi({f"T{i}": 0.1 for i in range(10)})) == pytest.approx(10.0)
    assert math.isnan(effective_num_positions(0.0))


def test_frame_versions_match_scalars() -> None:
    wide = pd.DataFrame(
        [W, {"AAPL": 0.5, "MSFT": 0.5}, {}],
        index=pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04"]),
    )
    h = hhi_frame(wide)
    assert h.tolist() == pytest.approx([1650.0, 5000.0, 0.0])
    eff = effective_num_positions_frame(wide)
    assert eff.iloc[1] == pytest.approx(2.0) and math.isnan(eff.iloc[2])
    assert top_k_concentration_frame(wide, 3).tolist() == pytest.approx([0.65, 1.0, 0.0])


def test_builtin_benchmark_weights_are_gics_and_sum_to_one() -> None:
    assert set(BUILTIN_SP500_SECTOR_WEIGHTS) == set(GICS_SECTORS)
    assert sum(BUILTIN_SP500_SECTOR_WEIGHTS.values()) == pytest.approx(1.0)
    assert sum(SEED_SP500_SECTOR_WEIGHTS.values()) == pytest.approx(1.0)
    assert BUILTIN_SP500_SECTOR_WEIGHTS["Information Technology"] == pytest.approx(0.28 / 0.97)
    assert BUILTIN_SP500_SECTOR_WEIGHTS["Health Care"] == pytest.approx(0.13 / 0.97)
    assert SEED_TO_GICS["Technology"] == "Information Technology"
    assert SEED_TO_GICS["Healthcare"] == "Health Care"
    assert to_gics_sector("technology") == "Information Technology"
    assert to_gics_sector(None) == "Unclassified" and to_gics_sector(" ") == "Unclassified"
    assert to_gics_sector("Health Care") == "Health Care"


def test_sector_exposure_with_unclassified_ticker() -> None:
    sectors = {"AAPL": "Information Technology", "MSFT": "Technology", "XOM": "Energy", "JNJ": "Health Care"}
    bench = {"Technology": 0.30, "Energy": 0.05, "Healthcare": 0.15, "Financials": 0.50}
    exp = sector_exposure(W, sectors, bench)
    assert exp["Information Technology"] == pytest.approx({"portfolio": 0.50, "benchmark": 0.30, "diff": 0.20})
    assert exp["Energy"] == pytest.approx({"portfolio": 0.10, "benchmark": 0.05, "diff": 0.05})
    assert exp["Health Care"] == pytest.approx({"portfolio": 0.15, "benchmark": 0.15, "diff": 0.0})
    assert exp["Financials"] == pytest.approx({"portfolio": 0.0, "benchmark": 0.50, "diff": -0.50})
    assert exp["Unclassified"] == pytest.approx({"portfolio": 0.05, "benchmark": 0.0, "diff": 0.05})
    assert set(exp) == {"Information Technology", "Energy", "Health Care", "Financials", "Unclassified"}
    # cash is not a sector: portfolio weights sum to the invested share
    assert sum(v["portfolio"] for v in exp.values()) == pytest.approx(0.80)
    default = sector_exposure(W, pd.Series(sectors))
    assert set(default) == set(GICS_SECTORS) | {"Unclassified"}
    assert default["Utilities"]["diff"] == pytest.approx(-0.03 / 0.97)


def test_allocation_drift() -> None:
    current = {"AAPL": 0.33, "MSFT": 0.17, "TSLA": 0.02}
    target = {"AAPL": 0.30, "MSFT": 0.20, "XOM": 0.10}
    drift, ticker = allocation_drift(current, target)
    assert drift == pytest.approx(0.10) and ticker == "XOM"
    assert not drift_exceeds(0.05) and drift_exceeds(0.0501) and drift_exceeds(drift)
    assert not drift_exceeds(drift, threshold=0.2)
    d2, t2 = allocation_drift(pd.Series({"A": 0.5, "B": np.nan}), {"A": 0.45, "B": 0.05})
    assert d2 == pytest.approx(0.05) and t2 == "A"  # tie -> alphabetical
    assert allocation_drift({}, {}) == (0.0, None)
