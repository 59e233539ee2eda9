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


def pair_statistics(x: np.ndarray, min_obs: int = 3) -> tuple[np.ndarray, ...]:
    """Pearson r, p-value and pair count of every column pair (a < b) of ``x`` (rows x columns, NaN = missing).

    Returns ``(a, b, r, p, n)`` arrays over the upper-triangle pairs; each pair uses its pairwise-complete rows,
    and r/p are NaN below ``max(min_obs, 3)`` pairs or for a constant series. Vectorised as masked matrix
    products (centred per column first for precision).
    """
    k = x.shape[1]
    mask = np.isfinite(x)
    m = mask.astype(float)
    with np.errstate(invalid="ignore"):
        centre = np.nanmean(np.where(mask, x, np.nan), axis=0) if mask.any() else np.zeros(k)
    centre = np.nan_to_num(centre)
    xc = np.where(mask, x - centre, 0.0)

    n = m.T @ m  # n[a, b] = pairs where both valid
    sa = xc.T @ m  # sa[a, b] = sum of a over rows where b valid (a valid implied by zeros)
    saa = (xc * xc).T @ m
    sab = xc.T @ xc
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = sab - sa * sa.T / n
        var_a = saa - sa * sa / n
        var_b = var_a.T
        r = cov / np.sqrt(var_a * var_b)
    r = np.clip(r, -1.0, 1.0)
    iu, ju = np.triu_indices(k, k=1)
    n_pairs = n[iu, ju]
    bad = (n_pairs < max(min_obs, 3)) | ~(var_a[iu, ju] > 0) | ~(var_b[iu, ju] > 0)
    r_pairs = np.where(bad, np.nan, r[iu, ju])
    return iu, ju, r_pairs, pearson_p_value(r_pairs, n_pairs), n_pairs.astype("int64")


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
