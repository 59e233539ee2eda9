"""Concentration, sector exposure and allocation drift of a portfolio.

Weights are position market value / NAV, so they may sum below 1 (the rest is cash; cash is not
a position and not a sector).  Single-date functions accept a mapping or Series ``ticker -> w``;
the ``*_frame`` variants take a wide (dates x tickers) weight frame and return one value per date.
Missing weights count as 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "GICS_SECTORS",
    "UNCLASSIFIED",
    "SEED_SP500_SECTOR_WEIGHTS",
    "SEED_TO_GICS",
    "BUILTIN_SP500_SECTOR_WEIGHTS",
    "to_gics_sector",
    "hhi",
    "effective_num_positions",
    "top_k_concentration",
    "hhi_frame",
    "effective_num_positions_frame",
    "top_k_concentration_frame",
    "sector_exposure",
    "sector_weights_frame",
    "sector_exposure_records",
    "allocation_drift",
    "allocation_drift_frame",
    "drift_exceeds",
    "DEFAULT_DRIFT_THRESHOLD",
    "sector_position_counts",
    "largest_sector_gaps",
    "unclassified_tickers",
    "top_positions",
    "bounds_breaches",
    "BOUNDS_TOLERANCE",
]

UNCLASSIFIED = "Unclassified"

#: The 11 GICS sectors (2018+ structure).
GICS_SECTORS: tuple[str, ...] = (
    "Communication Services",
    "Consumer Discretionary",
    "Consumer Staples",
    "Energy",
    "Financials",
    "Health Care",
    "Industrials",
    "Information Technology",
    "Materials",
    "Real Estate",
    "Utilities",
)

#: S&P 500 sector weights exactly as given in seed 003 (short names, "Other" bucket, sum 1.00).
SEED_SP500_SECTOR_WEIGHTS: dict[str, float] = {
    "Technology": 0.28,
    "Healthcare": 0.13,
    "Financials": 0.13,
    "Consumer Discretionary": 0.10,
    "Industrials": 0.08,
    "Communication Services": 0.08,
    "Consumer Staples": 0.06,
    "Energy": 0.04,
    "Utilities": 0.03,
    "Real Estate": 0.02,
    "Materials": 0.02,
    "Other": 0.03,
}

#: Short / vendor sector names (seed 003, FMP/Yahoo style) -> GICS sector names.
SEED_TO_GICS: dict[str, str] = {
    "Technology": "Information Technology",
    "Information Technology": "Information Technology",
    "Healthcare": "Health Care",
    "Health Care": "Health Care",
    "Financials": "Financials",
    "Financial Services": "Financials",
    "Financial": "Financials",
    "Consumer Discretionary": "Consumer Discretionary",
    "Consumer Cyclical": "Consumer Discretionary",
    "Consumer Staples": "Consumer Staples",
    "Consumer Defensive": "Consumer Staples",
    "Industrials": "Industrials",
    "Communication Services": "Communication Services",
    "Telecommunication Services": "Communication Services",
    "Energy": "Energy",
    "Utilities": "Utilities",
    "Real Estate": "Real Estate",
    "Materials": "Materials",
    "Basic Materials": "Materials",
}

#: Built-in S&P 500 benchmark weights on the 11 GICS sectors: the seed-003 figures mapped with
#: ``SEED_TO_GICS``; the seed's non-GICS "Other" bucket (0.03) is dropped and the 11 weights are
#: renormalised to sum to 1 (so a portfolio matching the index shows zero diffs).
BUILTIN_SP500_SECTOR_WEIGHTS: dict[str, float] = {
    SEED_TO_GICS[name]: w / (1.0 - SEED_SP500_SECTOR_WEIGHTS["Other"])
    for name, w in SEED_SP500_SECTOR_WEIGHTS.items()
    if name != "Other"
}

DEFAULT_DRIFT_THRESHOLD = 0.05
BOUNDS_TOLERANCE = 1e-9
"""A weight beyond its bound by at most this much is inside (rebalance weights equal their targets to rounding)."""


def to_gics_sector(name: Any) -> str:
    """Normalise a sector label to its GICS name; blank/missing -> 'Unclassified'.

    Known short names are mapped with ``SEED_TO_GICS`` (case-insensitive); other non-empty labels
    are returned stripped and unchanged.
    """
    if name is None or (isinstance(name, float) and np.isnan(name)):
        return UNCLASSIFIED
    text = str(name).strip()
    if not text or text.lower() in _MISSING_LABELS:
        return UNCLASSIFIED
    return _GICS_BY_LOWER.get(text.lower(), text)


_MISSING_LABELS = frozenset({"nan", "none", "null", "unknown"})
_GICS_BY_LOWER = {k.lower(): v for k, v in SEED_TO_GICS.items()}


def _as_weights(weights: Mapping[str, float] | pd.Series) -> pd.Series:
    s = pd.Series(weights, dtype=float) if not isinstance(weights, pd.Series) else weights.astype(float)
    return s.fillna(0.0)


def hhi(weights: Mapping[str, float] | pd.Series) -> float:
    """Herfindahl-Hirschman index ``sum(w_i^2) * 10000`` (10000 = one position at 100%)."""
    w = _as_weights(weights).to_numpy()
    return float(np.sum(w * w) * 10000.0)


def effective_num_positions(hhi_value: float) -> float:
    """Effective number of positions ``10000 / HHI``; NaN when HHI is 0 (no positions)."""
    if hhi_value is None or not np.isfinite(hhi_value) or hhi_value <= 0:
        return float("nan")
    return 10000.0 / float(hhi_value)


def top_k_concentration(weights: Mapping[str, float] | pd.Series, k: int) -> float:
    """Sum of the ``k`` largest weights (all of them when fewer than ``k`` positions)."""
    w = np.sort(_as_weights(weights).to_numpy())[::-1]
    return float(w[:k].sum())


def hhi_frame(weights_wide: pd.DataFrame) -> pd.Series:
    """``hhi`` per row of a (dates x tickers) weight frame."""
    w = weights_wide.fillna(0.0).to_numpy(dtype=float)
    return pd.Series((w * w).sum(axis=1) * 10000.0, index=weights_wide.index, name="hhi")


def effective_num_positions_frame(weights_wide: pd.DataFrame) -> pd.Series:
    """``10000 / hhi`` per row (NaN for rows without positions)."""
    h = hhi_frame(weights_wide)
    return (10000.0 / h.where(h > 0)).rename("effective_num_positions")


def top_k_concentration_frame(weights_wide: pd.DataFrame, k: int) -> pd.Series:
    """Sum of the ``k`` largest weights per row."""
    w = -np.sort(-weights_wide.fillna(0.0).to_numpy(dtype=float), axis=1)
    return pd.Series(w[:, :k].sum(axis=1), index=weights_wide.index, name=f"top_{k}_concentration")


def sector_exposure(
    weights: Mapping[str, float] | pd.Series,
    sectors: Mapping[str, str] | pd.Series,
    benchmark: Mapping[str, float] | pd.Series | None = None,
) -> dict[str, dict[str, float]]:
    """Per-sector ``{portfolio, benchmark, diff}`` with ``diff = portfolio - benchmark``.

    ``portfolio`` is the sum of the weights of the tickers in the sector (so the total equals the
    invested share, cash excluded); tickers absent from ``sectors`` (or with a blank sector) go
    to 'Unclassified'.  Sector names on both sides are normalised with ``to_gics_sector``; the
    benchmark defaults to ``BUILTIN_SP500_SECTOR_WEIGHTS``.  The result covers every benchmark
    sector and every sector held with a non-zero weight, sorted by name.
    """
    w = _as_weights(weights)
    w = w[w != 0.0]
    sec_map = dict(sectors.items()) if isinstance(sectors, pd.Series) else dict(sectors)
    port: dict[str, float] = {}
    for ticker, value in w.items():
        sec = to_gics_sector(sec_map.get(ticker))
        port[sec] = port.get(sec, 0.0) + float(value)
    bench = _benchmark_by_sector(benchmark)
    out: dict[str, dict[str, float]] = {}
    for sec in sorted(set(port) | set(bench)):
        p = port.get(sec, 0.0)
        b = bench.get(sec, 0.0)
        out[sec] = {"portfolio": p, "benchmark": b, "diff": p - b}
    return out


def _benchmark_by_sector(benchmark: Mapping[str, float] | pd.Series | None) -> dict[str, float]:
    bench_src = BUILTIN_SP500_SECTOR_WEIGHTS if benchmark is None else benchmark
    bench: dict[str, float] = {}
    for name, value in dict(bench_src.items()).items():
        sec = to_gics_sector(name)
        bench[sec] = bench.get(sec, 0.0) + float(value)
    return bench


def sector_weights_frame(weights_wide: pd.DataFrame, sectors: Mapping[str, str] | pd.Series) -> pd.DataFrame:
    """Per row of a (dates x tickers) weight frame, the summed weight of each sector (dates x sectors).

    Sector labels are normalised with ``to_gics_sector`` (unknown tickers -> 'Unclassified'); columns are
    the sectors of the frame's tickers, sorted.  One matrix product, no loop over dates.
    """
    sec_map = dict(sectors.items()) if isinstance(sectors, pd.Series) else dict(sectors)
    labels = [to_gics_sector(sec_map.get(t)) for t in weights_wide.columns]
    names = sorted(set(labels))
    indicator = np.zeros((len(labels), len(names)))
    indicator[np.arange(len(labels)), [names.index(s) for s in labels]] = 1.0
    w = weights_wide.fillna(0.0).to_numpy(dtype=float)
    return pd.DataFrame(w @ indicator, index=weights_wide.index, columns=names)


def sector_exposure_records(
    weights_wide: pd.DataFrame,
    sectors: Mapping[str, str] | pd.Series,
    benchmark: Mapping[str, float] | pd.Series | None = None,
) -> list[dict[str, dict[str, float]]]:
    """``sector_exposure`` for every row of a (dates x tickers) weight frame, one dict per row.

    Same content and rules as ``sector_exposure`` (benchmark sectors plus sectors held with a non-zero
    weight, sorted); the sums are one matrix product for all rows, only the dicts are built per row.
    """
    port = sector_weights_frame(weights_wide, sectors)
    held = sector_weights_frame((weights_wide.fillna(0.0) != 0.0).astype(float), sectors) > 0
    bench = _benchmark_by_sector(benchmark)
    names = sorted(set(port.columns) | set(bench))
    p = port.reindex(columns=names, fill_value=0.0).to_numpy(dtype=float)
    show = held.reindex(columns=names, fill_value=False).to_numpy(dtype=bool) | np.array(
        [name in bench for name in names])[None, :]
    shown = [(name, bench.get(name, 0.0)) for name in names]
    return [{name: {"portfolio": value, "benchmark": b, "diff": value - b}
             for (name, b), value, on in zip(shown, values, flags) if on}
            for values, flags in zip(p.tolist(), show.tolist())]


def allocation_drift(
    current_weights: Mapping[str, float] | pd.Series,
    target_weights: Mapping[str, float] | pd.Series,
) -> tuple[float, str | None]:
    """Largest absolute drift ``|current_i - target_i|`` over the tickers held or targeted (a nonzero weight on
    either side), and its ticker.

    A ticker missing on one side counts as weight 0 there; one at 0 on both sides is not a candidate (a listed
    zero must not name a ticker the book neither holds nor targets).  Ties (within 1e-12) go to the
    alphabetically first ticker.  ``(0.0, None)`` when neither side holds anything.
    """
    cur = _as_weights(current_weights)
    tgt = _as_weights(target_weights)
    idx = sorted(set(cur.index[cur != 0]) | set(tgt.index[tgt != 0]), key=str)
    if not idx:
        return 0.0, None
    diff = (cur.reindex(idx, fill_value=0.0) - tgt.reindex(idx, fill_value=0.0)).abs()
    values = diff.to_numpy()
    pos = int(np.argmax(values >= values.max() - 1e-12))
    return float(diff.iloc[pos]), str(idx[pos])


def allocation_drift_frame(current_wide: pd.DataFrame, target_wide: pd.DataFrame) -> pd.DataFrame:
    """``allocation_drift`` for every row: columns ``max_allocation_drift`` and ``max_drift_ticker``.

    Rows are ``current_wide``'s index (``target_wide`` is aligned on it); a row's candidates are the
    tickers with a nonzero weight on either side that day (missing weights count as 0), ties go to the
    alphabetically first ticker; a row holding and targeting nothing gives ``(0.0, None)``.
    """
    tickers = sorted(set(current_wide.columns) | set(target_wide.columns), key=str)
    if not tickers:
        return pd.DataFrame({"max_allocation_drift": 0.0, "max_drift_ticker": None}, index=current_wide.index)
    cur = current_wide.reindex(columns=tickers).fillna(0.0).to_numpy(dtype=float)
    tgt = target_wide.reindex(index=current_wide.index, columns=tickers).fillna(0.0).to_numpy(dtype=float)
    diff = np.abs(cur - tgt)
    candidate = (cur != 0) | (tgt != 0)
    top = diff.max(axis=1)
    pos = np.argmax((diff >= top[:, None] - 1e-12) & candidate, axis=1)
    names = np.asarray(tickers, dtype=object)[pos]
    names[~candidate.any(axis=1)] = None
    return pd.DataFrame({"max_allocation_drift": top, "max_drift_ticker": names}, index=current_wide.index)


def drift_exceeds(max_abs_drift: float, threshold: float = DEFAULT_DRIFT_THRESHOLD) -> bool:
    """Rebalance flag: True when the largest absolute drift is strictly above ``threshold``."""
    return bool(max_abs_drift > threshold)


def _held(weights_wide: pd.DataFrame) -> np.ndarray:
    """Cells holding a position (weight > 0)."""
    return weights_wide.fillna(0.0).to_numpy(dtype=float) > 0.0


def sector_position_counts(weights_wide: pd.DataFrame, sectors: Mapping[str, str] | pd.Series) -> list[dict[str, int]]:
    """Per row of a (dates x tickers) weight frame, the number of positions held (weight > 0) in each sector
    (seed 003's ``positions_by_sector``), sectors with none left out; unknown tickers count as 'Unclassified'."""
    counts = sector_weights_frame(pd.DataFrame(_held(weights_wide).astype(float), index=weights_wide.index,
                                               columns=weights_wide.columns), sectors)
    names = list(counts.columns)
    return [{name: n for name, n in zip(names, row) if n}
            for row in counts.to_numpy().round().astype(int).tolist()]


def largest_sector_gaps(
    weights_wide: pd.DataFrame,
    sectors: Mapping[str, str] | pd.Series,
    benchmark: Mapping[str, float] | pd.Series | None = None,
) -> pd.DataFrame:
    """Per row, the sector most over- and most underweight against the benchmark (``diff`` of
    ``sector_exposure``) and the gap: columns ``largest_overweight_sector``, ``largest_overweight`` (> 0),
    ``largest_underweight_sector``, ``largest_underweight`` (< 0).

    'Unclassified' is left out (it has no benchmark weight, so its gap says nothing about a sector bet); a row
    with no sector above (below) its benchmark weight has None / NaN there. Ties go to the alphabetically first
    sector. One matrix product for all rows."""
    port = sector_weights_frame(weights_wide, sectors)
    bench = _benchmark_by_sector(benchmark)
    names = sorted((set(port.columns) | set(bench)) - {UNCLASSIFIED})
    index = weights_wide.index
    if not names:
        none = pd.Series(None, index=index, dtype=object)
        return pd.DataFrame({"largest_overweight_sector": none, "largest_overweight": np.nan,
                             "largest_underweight_sector": none, "largest_underweight": np.nan}, index=index)
    diff = (port.reindex(columns=names, fill_value=0.0).to_numpy(dtype=float)
            - np.array([bench.get(name, 0.0) for name in names])[None, :])
    labels = np.asarray(names, dtype=object)
    over, under = diff.argmax(axis=1), diff.argmin(axis=1)  # the first of equal values: alphabetical
    rows = np.arange(len(diff))
    top, bottom = diff[rows, over], diff[rows, under]
    return pd.DataFrame({
        "largest_overweight_sector": pd.Series(np.where(top > 0, labels[over], None), index=index, dtype=object),
        "largest_overweight": np.where(top > 0, top, np.nan),
        "largest_underweight_sector": pd.Series(np.where(bottom < 0, labels[under], None), index=index, dtype=object),
        "largest_underweight": np.where(bottom < 0, bottom, np.nan),
    }, index=index)


def unclassified_tickers(weights_wide: pd.DataFrame, sectors: Mapping[str, str] | pd.Series) -> list[list[str]]:
    """Per row, the tickers held (weight > 0) that have no sector (they count as 'Unclassified'), sorted."""
    sec_map = dict(sectors.items()) if isinstance(sectors, pd.Series) else dict(sectors)
    unknown = np.array([to_gics_sector(sec_map.get(t)) == UNCLASSIFIED for t in weights_wide.columns], dtype=bool)
    tickers = np.asarray([str(t) for t in weights_wide.columns], dtype=object)
    order = np.argsort(tickers, kind="stable")
    held = (_held(weights_wide) & unknown[None, :])[:, order]
    if not held.any():
        return [[] for _ in range(len(held))]
    names = tickers[order]
    return [names[row].tolist() for row in held]


def top_positions(weights_wide: pd.DataFrame, k: int) -> list[list[dict[str, float]]]:
    """Per row, the ``k`` largest positions as ``[{"ticker", "weight"}, ...]`` by weight descending (ties by
    ticker), only positions held; their weights sum to ``top_k_concentration``."""
    tickers = np.asarray([str(t) for t in weights_wide.columns], dtype=object)
    alphabetical = np.argsort(tickers, kind="stable")
    w = weights_wide.fillna(0.0).to_numpy(dtype=float)[:, alphabetical]
    names = tickers[alphabetical].tolist()
    order = np.argsort(-w, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(w, order, axis=1)
    return [[{"ticker": names[j], "weight": x} for j, x in zip(rows, weights) if x > 0]
            for rows, weights in zip(order.tolist(), top.tolist())]


def bounds_breaches(
    weights_wide: pd.DataFrame,
    bounds: Mapping[str, tuple[float, float]],
    tolerance: float = BOUNDS_TOLERANCE,
) -> list[list[dict[str, float | str]]]:
    """Per row, each bounded ticker whose weight (0 when not held) lies outside its ``[min, max]`` by more than
    ``tolerance``: ``[{"ticker", "weight", "min", "max"}, ...]`` sorted by ticker (an empty list when none)."""
    names = sorted(bounds)
    if not names:
        return [[] for _ in range(len(weights_wide))]
    w = weights_wide.reindex(columns=names).fillna(0.0).to_numpy(dtype=float)
    lo = np.array([bounds[t][0] for t in names], dtype=float)
    hi = np.array([bounds[t][1] for t in names], dtype=float)
    outside = (w < lo - tolerance) | (w > hi + tolerance)
    return [[{"ticker": names[j], "weight": float(w[i, j]), "min": float(lo[j]), "max": float(hi[j])}
             for j in np.flatnonzero(outside[i])] for i in range(len(w))]
