"""Overlay-variant NAV math (pure numpy/pandas).

A variant ``v`` of a portfolio holds ``equity_allocation(t)`` of its NAV in the raw portfolio and
the rest in cash earning ``rf_d``:

* ``equity_allocation(t) = actual_allocation(t-1)`` of the model (decided at the previous close,
  effective for day ``t``'s return); on ``start_date`` itself the allocation decided at
  ``start_date`` (that row's return is 0) - :func:`equity_allocation_for_days`;
* ``daily_return_v(t) = eq(t) * r_raw(t) + (1 - eq(t)) * rf_d - cost_bps / 1e4 * |eq(t) - eq(t-1)|``
  - :func:`variant_returns`.  The cost term (default 0, i.e. the CONTRACT formula exactly) is
  charged on the day the new allocation takes effect, proportional to the traded fraction of NAV;
  the first day has no cost (no previous allocation is known there, and the initial allocation
  is not charged);
* ``nav_v(start) = initial_nav``, ``nav_v(t) = nav_v(t-1) * (1 + daily_return_v(t))`` -
  :func:`variant_nav`.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

__all__ = ["variant_returns", "variant_nav", "equity_allocation_for_days"]

_ALLOC_TOL = 1e-9


def _arrays(raw_returns, equity_allocation) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(raw_returns, dtype=float)
    eq = np.asarray(equity_allocation, dtype=float)
    if r.ndim != 1 or eq.ndim != 1 or len(r) != len(eq):
        raise ValueError(f"raw_returns and equity_allocation must be 1-D of equal length, "
                         f"got shapes {r.shape} and {eq.shape}")
    if not np.isfinite(eq).all() or (eq < -_ALLOC_TOL).any() or (eq > 1 + _ALLOC_TOL).any():
        j = int(np.flatnonzero(~np.isfinite(eq) | (eq < -_ALLOC_TOL) | (eq > 1 + _ALLOC_TOL))[0])
        raise ValueError(f"equity_allocation[{j}] must be in [0, 1], got {eq[j]!r}")
    return r, eq


def variant_returns(
    raw_returns: np.ndarray,
    equity_allocation: np.ndarray,
    rf_d: float,
    cost_bps: float = 0.0,
) -> np.ndarray:
    """``eq*r + (1-eq)*rf_d - cost_bps/1e4*|eq_t - eq_{t-1}|`` per day (no cost on element 0).

    NaN raw returns propagate (the caller decides what a missing return means).
    """
    if cost_bps < 0:
        raise ValueError(f"cost_bps must be >= 0, got {cost_bps!r}")
    r, eq = _arrays(raw_returns, equity_allocation)
    out = eq * r + (1.0 - eq) * float(rf_d)
    if cost_bps and len(eq) > 1:
        turnover = np.abs(np.diff(eq))
        out[1:] -= float(cost_bps) / 1e4 * turnover
    return out


def variant_nav(
    raw_returns: np.ndarray,
    equity_allocation: np.ndarray,
    rf_d: float,
    initial_nav: float = 100.0,
    cost_bps: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``(nav, daily_return)`` of a variant whose element 0 is ``start_date``.

    ``daily_return[0] = 0`` and ``nav[0] = initial_nav`` whatever ``raw_returns[0]`` is; later
    days follow :func:`variant_returns` and ``nav(t) = nav(t-1) * (1 + daily_return(t))``.
    """
    rets = variant_returns(raw_returns, equity_allocation, rf_d, cost_bps)
    if len(rets) == 0:
        return np.empty(0), np.empty(0)
    rets[0] = 0.0
    nav = float(initial_nav) * np.cumprod(1.0 + rets)
    return nav, rets


def equity_allocation_for_days(
    actual_allocation: pd.Series,
    days: pd.DatetimeIndex | Iterable,
    start_date,
) -> pd.Series:
    """Equity allocation of the variant on each of ``days`` from ``start_date`` on.

    ``actual_allocation``: a model's ``actual_allocation`` indexed by trade date.  ``days``: the
    portfolio's trading days (any order; days before ``start_date`` are dropped).  The first
    remaining day is the start row and gets the allocation decided on that day; every later day
    ``days[i]`` gets ``actual_allocation(days[i-1])``.  A needed date without an allocation raises
    ``ValueError`` naming it.  Returns a float Series named ``equity_allocation`` on those days.
    """
    index = pd.DatetimeIndex(pd.to_datetime(list(days) if not isinstance(days, pd.Index) else days))
    index = index.sort_values().unique()
    start = pd.Timestamp(start_date)
    index = index[index >= start]
    if len(index) == 0:
        return pd.Series(np.empty(0), index=pd.DatetimeIndex([], name="trade_date"), name="equity_allocation")
    alloc = actual_allocation.copy()
    alloc.index = pd.DatetimeIndex(pd.to_datetime(alloc.index))
    if not alloc.index.is_unique:
        raise ValueError("actual_allocation has duplicate dates")
    decided_on = index[:1].append(index[:-1])  # start row: its own day; later rows: the previous day
    values = alloc.reindex(decided_on).to_numpy(dtype=float, na_value=np.nan)
    if np.isnan(values).any():
        j = int(np.flatnonzero(np.isnan(values))[0])
        raise ValueError(f"no actual_allocation for {decided_on[j].date()} "
                         f"(needed for the equity allocation of {index[j].date()})")
    return pd.Series(values, index=pd.DatetimeIndex(index, name="trade_date"), name="equity_allocation")
