"""Rolling single-factor OLS (market betas) computed with cumulative sums.

For every column of ``y`` and every row ``t`` we fit ``y = alpha + beta * x + e`` by OLS over the
last ``window`` rows ending at ``t`` (inclusive), using only rows where *both* ``y`` and ``x`` are
finite (pairwise-complete).  The window is counted in rows (trading days), not in observations:
missing values shrink the sample instead of extending the window backwards.

All moments come from differences of cumulative sums of the masked, centred data, so the cost is
O(T * N) whatever the window.  Data are centred by a per-column reference (the column's mean over
all valid rows) before summing, which keeps the ``S_xx - n * mean^2`` cancellations harmless; the
results agree with ``statsmodels.OLS(y, add_constant(x))`` to ~1e-10 relative.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

__all__ = [
    "BETA_CAP",
    "rolling_ols",
    "ols_beta",
    "cap_beta",
    "rolling_market_betas",
    "two_sided_t_p_value",
    "SIGNIFICANCE_LEVEL",
    "beta_is_significant",
]

BETA_CAP = 5.0
COLUMN_BLOCK = 256
"""Columns fitted at a time by ``rolling_ols`` (bounds its temporaries; results equal to rounding whatever it is)."""
PARALLEL_MIN_CELLS = 50_000
"""Below this many cells the Student-t p-values are computed in one call; above, in one chunk per core."""
WORKERS = max(1, min(4, os.cpu_count() or 1))

_OUTPUTS = ("beta", "alpha", "r_squared", "std_error", "p_value", "observations")


@lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="t-pvalue")


def two_sided_t_p_value(t: np.ndarray, dof: np.ndarray) -> np.ndarray:
    """``2 * P(T_dof > |t|)`` (as ``2 * scipy.stats.t.sf(|t|, dof)``), NaN where dof or t is NaN.

    The Student-t CDF is about half of a rolling fit's cost; ``scipy.special.stdtr`` releases the GIL, so large
    arrays are split across the cores."""
    neg = -np.abs(np.asarray(t, dtype=float))
    dof = np.broadcast_to(np.asarray(dof, dtype=float), neg.shape)
    flat_t, flat_d = neg.reshape(-1), np.ascontiguousarray(dof).reshape(-1)
    out = np.empty_like(flat_t)
    if flat_t.size < PARALLEL_MIN_CELLS or WORKERS == 1:
        special.stdtr(flat_d, flat_t, out=out)
    else:
        bounds = np.linspace(0, flat_t.size, WORKERS + 1).astype(int)
        parts = [slice(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]
        list(_pool().map(lambda sl: special.stdtr(flat_d[sl], flat_t[sl], out=out[sl]), parts))
    return (2.0 * out).reshape(neg.shape)


def _window_sums(a: np.ndarray, window: int) -> np.ndarray:
    """Sum of the last ``window`` rows ending at each row (fewer at the start), via cumsum."""
    c = np.cumsum(a, axis=0, dtype=float)
    out = c.copy()
    out[window:] -= c[:-window]  # rows before `window` sum from the first row
    return out


def rolling_ols(
    y: np.ndarray, x: np.ndarray, window: int = 90, min_obs: int = 30, block: int = COLUMN_BLOCK
) -> dict[str, np.ndarray]:
    """Rolling OLS with a constant of each column of ``y`` (T x N) on ``x`` (T,).

    Returns a dict of (T x N) float arrays:

    - ``beta``, ``alpha`` (intercept, in the units of ``y``: daily for daily returns),
    - ``r_squared`` (centred R^2, ``1 - SSR / TSS``; NaN when ``y`` is constant in the window),
    - ``std_error`` of beta, ``sqrt(SSR / (n - 2) / Sxx)``,
    - ``p_value`` of beta, two-sided Student t test with ``n - 2`` degrees of freedom,
    - ``observations``: the number of pairwise-complete rows in the window, reported on every row.

    All outputs except ``observations`` are NaN where ``observations < max(min_obs, 3)`` or where
    ``x`` has no variance in the window.  ``beta`` is *uncapped*; see ``cap_beta``.  A perfect fit
    gives ``std_error = 0`` and ``p_value = 0``.  A 1-D ``y`` is accepted and gives (T,) arrays.

    Columns are independent, so they are fitted ``block`` at a time: the ~20 (T x block) temporaries
    stay small while only the six outputs are held at full size.
    """
    y_arr = np.asarray(y, dtype=float)
    squeeze = y_arr.ndim == 1
    if squeeze:
        y_arr = y_arr[:, None]
    x_arr = np.asarray(x, dtype=float).reshape(-1)
    if y_arr.shape[0] != x_arr.shape[0]:
        raise ValueError(f"y has {y_arr.shape[0]} rows but x has {x_arr.shape[0]}")
    if window < 1:
        raise ValueError("window must be >= 1")
    if block < 1:
        raise ValueError("block must be >= 1")
    out = {k: np.empty(y_arr.shape, dtype=float) for k in _OUTPUTS}
    for lo in range(0, y_arr.shape[1], block):
        part = _rolling_ols_block(y_arr[:, lo:lo + block], x_arr, window, min_obs)
        for k, v in part.items():
            out[k][:, lo:lo + block] = v
    if squeeze:
        out = {k: v[:, 0] for k, v in out.items()}
    return out


def _rolling_ols_block(y_arr: np.ndarray, x_arr: np.ndarray, window: int, min_obs: int) -> dict[str, np.ndarray]:
    """rolling_ols for one (T x n) block of columns."""
    valid = np.isfinite(y_arr) & np.isfinite(x_arr)[:, None]
    m = valid.astype(float)
    n_valid = m.sum(axis=0)
    x_b = np.broadcast_to(x_arr[:, None], y_arr.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        # per-column centring references (means over all pairwise-valid rows)
        cx = np.where(n_valid > 0, np.where(valid, x_b, 0.0).sum(axis=0) / n_valid, 0.0)
        cy = np.where(n_valid > 0, np.where(valid, y_arr, 0.0).sum(axis=0) / n_valid, 0.0)
    xc = np.where(valid, x_b - cx, 0.0)
    yc = np.where(valid, y_arr - cy, 0.0)

    n = _window_sums(m, window)
    sx = _window_sums(xc, window)
    sy = _window_sums(yc, window)
    sxx = _window_sums(xc * xc, window)
    syy = _window_sums(yc * yc, window)
    sxy = _window_sums(xc * yc, window)
    n = np.rint(n)  # counts are exact integers; remove cumsum round-off

    enough = n >= max(min_obs, 3)
    with np.errstate(invalid="ignore", divide="ignore"):
        nn = np.where(enough, n, np.nan)
        mx = sx / nn
        my = sy / nn
        cxx = sxx - nn * mx * mx
        cyy = syy - nn * my * my
        cxy = sxy - nn * mx * my
        ok = enough & (cxx > 0)
        cxx = np.where(ok, cxx, np.nan)
        beta = cxy / cxx
        alpha = (my + cy) - beta * (mx + cx)
        ssr = np.maximum(cyy - beta * cxy, 0.0)
        r2 = np.where(cyy > 0, 1.0 - ssr / cyy, np.nan)
        dof = nn - 2.0
        se = np.sqrt(ssr / dof / cxx)
        tstat = beta / se  # +-inf for a perfect fit -> p = 0
        p = two_sided_t_p_value(tstat, dof)
    p = np.where(np.isnan(beta), np.nan, p)
    return {
        "beta": beta,
        "alpha": alpha,
        "r_squared": np.where(ok, r2, np.nan),
        "std_error": se,
        "p_value": p,
        "observations": n,
    }


def ols_beta(y: Any, x: Any, min_obs: int = 3) -> dict[str, float]:
    """Single-window OLS of ``y`` on a constant and ``x`` over all (pairwise-finite) rows.

    Same definitions as ``rolling_ols`` (used e.g. for the portfolio's direct beta); returns
    floats, NaN when fewer than ``min_obs`` pairs.
    """
    y_arr = np.asarray(y, dtype=float).reshape(-1)
    x_arr = np.asarray(x, dtype=float).reshape(-1)
    res = rolling_ols(y_arr, x_arr, window=max(len(y_arr), 1), min_obs=min_obs)
    if len(y_arr) == 0:
        return {k: (0.0 if k == "observations" else float("nan")) for k in _OUTPUTS}
    return {k: float(v[-1]) for k, v in res.items()}


def cap_beta(beta: Any, cap: float = BETA_CAP) -> Any:
    """Clip betas to ``[-cap, cap]`` (contract: published beta in [-5, 5]); NaN stays NaN.

    Only the beta is capped: ``std_error`` and ``p_value`` always describe the uncapped fit.
    """
    if isinstance(beta, (pd.Series, pd.DataFrame)):
        return beta.clip(lower=-cap, upper=cap)
    return np.clip(beta, -cap, cap)


def rolling_market_betas(
    returns_wide: pd.DataFrame,
    market_returns: pd.Series,
    window: int = 90,
    min_obs: int = 30,
    cap: float = BETA_CAP,
) -> pd.DataFrame:
    """Long table of rolling market betas for every ticker column of ``returns_wide``.

    ``market_returns`` is aligned on the index of ``returns_wide`` (missing dates -> NaN).
    Returns columns ``calc_date, ticker, beta (capped), alpha, r_squared, std_error, p_value,
    observations (int)``, one row per (date, ticker) with at least ``min_obs`` paired
    observations and a defined beta.
    """
    mkt = market_returns.reindex(returns_wide.index)
    res = rolling_ols(returns_wide.to_numpy(dtype=float), mkt.to_numpy(dtype=float), window, min_obs)
    n_cols = returns_wide.shape[1]
    kept = np.flatnonzero(np.isfinite(res["beta"]).reshape(-1))  # row-major: date, then ticker
    columns = {k: res.pop(k).reshape(-1)[kept] for k in _OUTPUTS}
    columns["beta"] = cap_beta(columns["beta"], cap)
    columns["observations"] = columns["observations"].astype("int64")
    return pd.DataFrame(
        {
            "calc_date": returns_wide.index.to_numpy()[kept // n_cols],
            "ticker": returns_wide.columns.to_numpy()[kept % n_cols],
            **columns,
        }
    )


SIGNIFICANCE_LEVEL = 0.10
"""A beta is significant when its two-sided p-value is below this (90% confidence, seed 003)."""


def beta_is_significant(p_value: pd.Series, level: float = SIGNIFICANCE_LEVEL) -> pd.Series:
    """``p_value < level`` per row (seed 003's ``is_significant``); None where the p-value is missing."""
    p = p_value.to_numpy(dtype=float)
    out = np.where(np.isnan(p), None, p < level).astype(object)
    return pd.Series(out, index=p_value.index, name="is_significant", dtype=object)
