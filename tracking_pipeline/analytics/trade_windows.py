"""Trailing windows over closed trades: which trades each (as-of day, period) covers, and sums over them.

A window of period N days ending on day D holds the trades with an exit date in [D - (N - 1) days, D]; the `all`
period holds every trade closed on or before D. With a group's trades sorted by exit date, each window is a
contiguous slice [lo, hi), so every sum is a difference of prefix sums: all days of a backfill in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

PERIODS: dict[str, int | None] = {"30d": 30, "90d": 90, "365d": 365, "all": None}
"""Period type -> trailing calendar days (None: all time)."""
HIGH_CONFIDENCE, LOW_CONFIDENCE = 0.8, 0.5
BANDS = ("high", "medium", "low")


@dataclass(frozen=True)
class Windows:
    """One row per (as-of day, period) of a group: the slice [lo, hi) of its exit-sorted trades."""

    period_type: np.ndarray
    period_start: np.ndarray
    period_end: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    @property
    def n(self) -> np.ndarray:
        return self.hi - self.lo

    def total(self, values: np.ndarray) -> np.ndarray:
        """Sum of `values` (aligned with the sorted trades; NaN counts as 0) over each window."""
        prefix = np.concatenate([[0.0], np.cumsum(np.nan_to_num(np.asarray(values, dtype=float)))])
        return prefix[self.hi] - prefix[self.lo]

    def count(self, mask: np.ndarray) -> np.ndarray:
        prefix = np.concatenate([[0], np.cumsum(np.asarray(mask, dtype=np.int64))])
        return prefix[self.hi] - prefix[self.lo]

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({"period_type": self.period_type, "period_start": self.period_start,
                             "period_end": self.period_end})


def windows(exit_dates: np.ndarray, entry_dates: np.ndarray, as_of: pd.DatetimeIndex,
            periods: dict[str, int | None] = PERIODS) -> Windows:
    """The windows of a group whose trades (sorted by exit date) have these exit and entry dates, for every day
    of `as_of` on which at least one of them is closed. The `all` period starts at the earliest entry among the
    trades closed by its end; a trailing one N - 1 days before its end."""
    exits = np.asarray(exit_dates, dtype="datetime64[D]")
    entries = np.asarray(entry_dates, dtype="datetime64[D]")
    days = np.asarray(as_of.values, dtype="datetime64[D]")
    closed_by = np.searchsorted(exits, days, side="right")
    days, closed_by = days[closed_by > 0], closed_by[closed_by > 0]
    first_entry = np.minimum.accumulate(entries) if len(entries) else entries
    parts = []
    for name, length in periods.items():
        if length is None:
            start, lo = first_entry[closed_by - 1], np.zeros(len(days), dtype=np.int64)
        else:
            start = days - np.timedelta64(length - 1, "D")
            lo = np.searchsorted(exits, start, side="left")
        parts.append((np.full(len(days), name, dtype=object), start, days, lo, closed_by))
    return Windows(*(np.concatenate([p[i] for p in parts]) for i in range(5)))


def confidence_band(confidence: np.ndarray) -> np.ndarray:
    """'high' above 0.8, 'low' below 0.5, 'medium' from 0.5 to 0.8 inclusive, None without a confidence."""
    c = np.asarray(confidence, dtype=float)
    out = np.where(c > HIGH_CONFIDENCE, "high", np.where(c < LOW_CONFIDENCE, "low", "medium")).astype(object)
    out[np.isnan(c)] = None
    return out


def predictions(confidence: np.ndarray, profitable: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Seed 001's confidence accuracy: a trade routed with confidence above 80% predicts a profit, one below 50%
    predicts none (a loss or a zero P&L); 50-80% predicts nothing. Returns (is a prediction, was correct)."""
    c = np.asarray(confidence, dtype=float)
    won = np.asarray(profitable, dtype=bool)
    high, low = c > HIGH_CONFIDENCE, c < LOW_CONFIDENCE
    return high | low, (high & won) | (low & ~won)


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN (NULL) where the denominator is 0."""
    num, den = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    out = np.full(len(num), np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def sample_std(values: np.ndarray, w: Windows) -> np.ndarray:
    """Standard deviation (ddof 1) of `values` over each window; NaN under 2 values or when all are equal.

    From prefix sums of the values centred on the first one (small sums for trade returns, and a window's
    result does not depend on the values after it); equality is exact: a window is constant when no value in it
    differs from its predecessor."""
    x = np.asarray(values, dtype=float)
    centred = x - (x[0] if len(x) else 0.0)
    n = w.n.astype(float)
    s1, s2 = w.total(centred), w.total(centred ** 2)
    var = ratio(s2 - ratio(s1 ** 2, n), n - 1.0)
    changes = np.concatenate([[0], np.cumsum(np.r_[False, x[1:] != x[:-1]]).astype(np.int64)]) if len(x) else \
        np.zeros(1, dtype=np.int64)
    inner = changes[w.hi] - changes[np.minimum(w.lo + 1, w.hi)]
    std = np.sqrt(np.maximum(var, 0.0))
    std[(w.n < 2) | (inner == 0)] = np.nan
    return std


def max_drawdown(values: np.ndarray, w: Windows) -> np.ndarray:
    """Deepest fall of the running sum of `values` (in window order) below its running peak, the level before
    the window included (so <= 0; 0 for an empty window or one that never falls)."""
    level = np.concatenate([[0.0], np.cumsum(np.asarray(values, dtype=float))])
    from_start = np.minimum.accumulate(level - np.maximum.accumulate(level))
    out = from_start[w.hi].copy()
    inner = np.flatnonzero(w.lo > 0)
    if len(inner):
        pairs, back = np.unique(np.stack([w.lo[inner], w.hi[inner]], axis=1), axis=0, return_inverse=True)
        depth = np.empty(len(pairs))
        for k, (lo, hi) in enumerate(pairs):
            seq = level[lo:hi + 1]
            depth[k] = (seq - np.maximum.accumulate(seq)).min()
        out[inner] = depth[back.ravel()]
    return out
