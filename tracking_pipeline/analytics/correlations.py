"""Pairwise return correlations with significance (Pearson r and its two-sided p-value)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

__all__ = ["pair_statistics", "pairwise_correlations", "pearson_p_value", "rolling_correlation"]

_COLUMNS = ["ticker_a", "ticker_b", "correlation", "p_value", "observations"]


def pearson_p_value(r: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Two-sided p-value of Pearson ``r`` on ``n`` pairs (H0: rho = 0), as ``scipy.stats.pearsonr``.

    ``t = r * sqrt((n - 2) / (1 - r^2))`` with ``n - 2`` degrees of freedom; |r| = 1 gives 0,
    ``n < 3`` or a missing r gives NaN.
    """
    r = np.asarray(r, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        dof = n - 2.0
        t = np.abs(r) * np.sqrt(dof / np.maximum(1.0 - r * r, 0.0))
        p = 2.0 * special.stdtr(dof, -t)
    return np.where(np.isfinite(r) & (n >= 3), np.where(np.abs(r) >= 1.0, 0.0, p), np.nan)


_CHUNK_CELLS = 1 << 22
"""Rows x pairs gathered at once by :func:`pair_statistics` (bounds memory: ~32 MB per gathered array)."""


def pair_statistics(x: np.ndarray, min_obs: int = 3, a: np.ndarray | None = None,
                    b: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """Pearson r, p-value and pair count of column pairs ``(a[i], b[i])`` of ``x`` (rows x columns, NaN = missing).

    Without ``a``/``b``: every upper-triangle pair (a < b). Returns ``(a, b, r, p, n)``; each pair uses its
    pairwise-complete rows (centred on their own means, as ``scipy.stats.pearsonr``), and r/p are NaN below
    ``max(min_obs, 3)`` pairs or for a constant series. Vectorised over pairs in bounded chunks, so the cost is
    rows x pairs asked for, not the square of the columns. Pairs of two columns without a gap (most of them) share
    their columns' means and sums of squares, so only their cross products are summed per pair; the same sums in
    the same order, so the same bits as the general path.
    """
    if a is None or b is None:
        a, b = np.triu_indices(x.shape[1], k=1)
    a, b = np.asarray(a, dtype=np.intp), np.asarray(b, dtype=np.intp)
    r = np.full(len(a), np.nan)
    n = np.zeros(len(a), dtype="int64")
    complete = np.isfinite(x).all(axis=0)
    dense = complete[a] & complete[b]
    if dense.any():
        _complete_pairs(x, complete, a, b, np.flatnonzero(dense), min_obs, r, n)
    if not dense.all():
        _gapped_pairs(x, a, b, np.flatnonzero(~dense), min_obs, r, n)
    return a, b, r, pearson_p_value(r, n), n


def _complete_pairs(x: np.ndarray, complete: np.ndarray, a: np.ndarray, b: np.ndarray, pairs: np.ndarray,
                    min_obs: int, r: np.ndarray, n: np.ndarray) -> None:
    """`pair_statistics` of `pairs` (positions in a/b) whose two columns have every row: into r and n."""
    rows = x.shape[0]
    position = np.cumsum(complete) - 1  # a complete column's position among the complete columns
    centred = x[:, complete]
    centred = centred - centred.sum(axis=0) / rows
    squares = (centred * centred).sum(axis=0)
    step = max(_CHUNK_CELLS // max(rows, 1), 1)
    for lo in range(0, len(pairs), step):
        chunk = pairs[lo:lo + step]
        ca, cb = position[a[chunk]], position[b[chunk]]
        var_a, var_b = squares[ca], squares[cb]
        with np.errstate(divide="ignore", invalid="ignore"):
            rho = np.clip((centred[:, ca] * centred[:, cb]).sum(axis=0) / np.sqrt(var_a * var_b), -1.0, 1.0)
        ok = (rows >= max(min_obs, 3)) & (var_a > 0) & (var_b > 0)
        r[chunk] = np.where(ok, rho, np.nan)
        n[chunk] = rows


def _gapped_pairs(x: np.ndarray, a: np.ndarray, b: np.ndarray, pairs: np.ndarray, min_obs: int, r: np.ndarray,
                  n: np.ndarray) -> None:
    """`pair_statistics` of `pairs` (positions in a/b) on each pair's complete rows: into r and n."""
    step = max(_CHUNK_CELLS // max(x.shape[0], 1), 1)
    for lo in range(0, len(pairs), step):
        chunk = pairs[lo:lo + step]
        xa, xb = x[:, a[chunk]], x[:, b[chunk]]
        both = np.isfinite(xa) & np.isfinite(xb)
        count = both.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            da = np.where(both, xa - np.where(both, xa, 0.0).sum(axis=0) / count, 0.0)
            db = np.where(both, xb - np.where(both, xb, 0.0).sum(axis=0) / count, 0.0)
            var_a, var_b = (da * da).sum(axis=0), (db * db).sum(axis=0)
            rho = np.clip((da * db).sum(axis=0) / np.sqrt(var_a * var_b), -1.0, 1.0)
        ok = (count >= max(min_obs, 3)) & (var_a > 0) & (var_b > 0)
        r[chunk] = np.where(ok, rho, np.nan)
        n[chunk] = count


def pairwise_correlations(
    returns_wide: pd.DataFrame, window: int | None = None, min_obs: int = 3
) -> pd.DataFrame:
    """Pearson correlations of every column pair (a < b by column order) over the last ``window`` rows.

    A long frame ``ticker_a, ticker_b, correlation, p_value, observations`` (see :func:`pair_statistics`);
    ``window=None`` uses all rows.
    """
    data = returns_wide if window is None else returns_wide.iloc[-window:]
    cols = np.asarray(list(data.columns), dtype=object)
    if len(cols) < 2:
        return pd.DataFrame({c: pd.Series(dtype=object if c.startswith("ticker") else float) for c in _COLUMNS})
    iu, ju, r, p, n = pair_statistics(data.to_numpy(dtype=float), min_obs)
    return pd.DataFrame({"ticker_a": cols[iu], "ticker_b": cols[ju], "correlation": r, "p_value": p,
                         "observations": n})


def rolling_correlation(a: pd.Series, b: pd.Series, window: int, min_periods: int | None = None) -> pd.Series:
    """Rolling Pearson correlation of two return series over ``window`` rows (pairwise-complete)."""
    return a.rolling(window=window, min_periods=min_periods or window).corr(b)
