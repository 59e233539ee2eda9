"""Volume-spike scan (seed 004's pattern detector): tickers trading a multiple of their average volume inside a
price band, each scored for similarity to reference patterns (seed 004's VIGL by default).

Pure and vectorised over wide (sessions x tickers) frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class ReferencePattern:
    """A past spike to compare candidates with: its volume multiple and price on the spike day."""

    name: str
    volume_multiple: float
    price: float


VIGL = ReferencePattern("VIGL", 20.9, 2.94)
"""Seed 004's reference: volume 20.9x its average, entry at $2.94."""


@dataclass(frozen=True)
class ScanConfig:
    """Seed 004's defaults: volume at least 15x the average of the previous 20 sessions, price in [$1, $8]."""

    min_volume_multiple: float = 15.0
    min_price: float = 1.0
    max_price: float = 8.0
    average_sessions: int = 20
    patterns: tuple[ReferencePattern, ...] = field(default_factory=lambda: (VIGL,))


def ratio_similarity(value: np.ndarray, reference: float) -> np.ndarray:
    """min(value, reference) / max(value, reference): 1 when equal, towards 0 as they part (both positive)."""
    v = np.asarray(value, dtype=float)
    return np.minimum(v, reference) / np.maximum(v, reference)


def pattern_similarity(volume_multiple: np.ndarray, price: np.ndarray, pattern: ReferencePattern) -> np.ndarray:
    """Similarity in (0, 1] of candidates to a pattern: the mean of the ratio similarities of the volume multiple
    and of the price."""
    return (ratio_similarity(volume_multiple, pattern.volume_multiple) + ratio_similarity(price, pattern.price)) / 2


def volume_spikes(price: pd.DataFrame, volume: pd.DataFrame, config: ScanConfig,
                  start: pd.Timestamp | None = None) -> pd.DataFrame:
    """Candidates on the sessions of `price`/`volume` (same index and columns) from `start` on: avg_volume = mean
    volume of the previous `average_sessions` sessions (all present and positive), volume_multiple = volume /
    avg_volume >= min_volume_multiple and min_price <= price <= max_price. Each row carries its similarity to
    every pattern (a dict), the best pattern and its score; ordered by day, then volume multiple (highest
    first)."""
    n = config.average_sessions
    average = volume.rolling(n, min_periods=n).mean().shift(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        multiple = volume / average.where(average > 0)
    hit = ((multiple >= config.min_volume_multiple) & (price >= config.min_price)
           & (price <= config.max_price)).to_numpy().copy()
    if start is not None:
        hit &= np.asarray(price.index >= pd.Timestamp(start))[:, None]
    rows, cols = np.nonzero(hit)
    out = pd.DataFrame({
        "trade_date": price.index[rows], "ticker": price.columns[cols].astype(str),
        "price": price.to_numpy()[rows, cols], "volume": volume.to_numpy()[rows, cols],
        "avg_volume": average.to_numpy()[rows, cols], "volume_multiple": multiple.to_numpy()[rows, cols],
    })
    if config.patterns:
        scores = np.column_stack([pattern_similarity(out["volume_multiple"], out["price"], p)
                                  for p in config.patterns])
        names = [p.name for p in config.patterns]
        best = scores.argmax(axis=1) if len(out) else np.zeros(0, dtype=int)
        out["best_pattern"] = np.array(names, dtype=object)[best]
        out["similarity"] = scores[np.arange(len(out)), best]
        out["similarities"] = [dict(zip(names, map(float, row))) for row in scores]
    else:
        out["best_pattern"], out["similarity"], out["similarities"] = None, np.nan, None
    return out.sort_values(["trade_date", "volume_multiple", "ticker"], ascending=[True, False, True],
                           ignore_index=True)
