"""Portfolio volatility measures for the snapshot: realised vol, HAR-RV forecast, trend, percentile.

Conventions: inputs are daily simple returns (pandas Series indexed by trading date, or a wide
DataFrame for ``realized_vol_sqrt_sum``); annualisation uses 252 trading days.  Everything is
vectorised (rolling sums / cumulative sums), no Python loop over dates.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
import pandas as pd

__all__ = [
    "TRADING_DAYS",
    "realized_vol_sqrt_sum",
    "har_rv_design",
    "har_rv_forecast",
    "har_rv_forecast_frame",
    "volatility_trend",
    "volatility_percentile",
    "RISK_LEVEL_BANDS",
    "risk_level",
]

TRADING_DAYS = 252

RISK_LEVEL_BANDS: tuple[tuple[float, str], ...] = (
    (0.15, "Very Low"), (0.25, "Low"), (0.35, "Moderate"), (0.50, "High"), (float("inf"), "Very High"))
"""Seed 003's bands on annualised volatility: a level applies below its upper bound (Very Low < 15%, ...)."""

PandasT = TypeVar("PandasT", pd.Series, pd.DataFrame)


def realized_vol_sqrt_sum(returns: PandasT, window: int) -> PandasT:
    """Realised volatility ``sqrt(252 / N * sum of the last N squared daily returns)`` (N = window).

    This is the contract's snapshot definition (not demeaned, unlike the market-feature
    ``indicators.realized_volatility``).  NaN unless all N returns of the window are present.
    """
    sq = returns * returns
    total = sq.rolling(window=window, min_periods=window).sum()
    return np.sqrt(total.clip(lower=0.0) * (TRADING_DAYS / window))


def har_rv_design(returns: pd.Series, horizon: int = 21) -> pd.DataFrame:
    """The HAR-RV regression variables per date ``t`` (``rv_t = r_t^2``).

    Columns: ``rv_d = rv_t``, ``rv_w`` = mean of rv over ``t-4..t``, ``rv_m`` = mean over
    ``t-21..t`` (NaN unless all values present), and ``target`` = mean of rv over the next
    ``horizon`` days ``t+1..t+horizon`` (NaN when not all of them are known in the series).
    """
    rv = returns.astype(float) ** 2
    rv_w = rv.rolling(5, min_periods=5).mean()
    rv_m = rv.rolling(22, min_periods=22).mean()
    target = rv.rolling(horizon, min_periods=horizon).mean().shift(-horizon)
    return pd.DataFrame({"rv_d": rv, "rv_w": rv_w, "rv_m": rv_m, "target": target}, index=returns.index)


def har_rv_forecast(
    returns: pd.Series,
    horizon: int = 21,
    window: int = 504,
    min_obs: int = 126,
    cap: float = 3.0,
) -> pd.Series:
    """Annualised HAR-RV volatility forecast per date: the ``expected_volatility`` column of
    :func:`har_rv_forecast_frame`."""
    return har_rv_forecast_frame(returns, horizon, window, min_obs, cap)["expected_volatility"]


def har_rv_forecast_frame(
    returns: pd.Series,
    horizon: int = 21,
    window: int = 504,
    min_obs: int = 126,
    cap: float = 3.0,
) -> pd.DataFrame:
    """Annualised HAR-RV volatility forecast for the next ``horizon`` days, per date (no look-ahead).

    Exact reading of the contract (CONTRACT §4 as amended), for row position ``t`` of the series:

    - observation ``s`` has target ``mean(rv_{s+1..s+horizon})`` and regressors
      ``(1, rv_s, mean(rv_{s-4..s}), mean(rv_{s-21..s}))``; it is *complete at t* when
      ``s + horizon <= t`` (its target is known at the close of ``t``) and all five values are finite;
    - the training set is the last ``window`` (504) complete observations at ``t``, counted in
      complete observations (a gap in the data reaches further back rather than shrinking the set);
      with fewer than ``min_obs`` (126), or with a regressor missing at ``t``, the result is NaN;
    - OLS on that set and prediction from the regressors at ``t``. The *insanity filter* of
      Bollerslev, Patton and Quaedvlieg (2016, J. Econometrics 192, "Exploiting the errors"):
      a prediction that is not positive or exceeds the largest target of the training set is
      replaced by the mean of the training set's targets (a linear HAR can turn negative right
      after a volatility spike, when the daily term's coefficient is negative);
    - the reported value is ``min(sqrt(252 * prediction), cap)``; it is never 0 (NaN when every
      target of the training set is 0: a series without any variance has nothing to forecast).

    Returns ``expected_volatility``, ``prediction`` (the raw OLS prediction of the mean daily
    squared return) and ``filtered`` (True where the filter replaced it; None where NaN), indexed
    like ``returns``.

    Implementation: moments of the complete observations are accumulated with cumulative sums
    (centred and scaled for conditioning), window moments are differences, the per-date 3x3
    centred normal equations are solved in one batched ``np.linalg.solve``, and the training
    sets' largest targets are one rolling maximum over the complete observations.
    """
    if not isinstance(returns, pd.Series):
        raise TypeError("har_rv_forecast expects a pandas Series of daily returns")
    design = har_rv_design(returns, horizon)
    feats = design[["rv_d", "rv_w", "rv_m"]].to_numpy(dtype=float)
    target = design["target"].to_numpy(dtype=float)
    t_len = len(design)
    out = np.full(t_len, np.nan)
    raw = np.full(t_len, np.nan)
    flag = np.full(t_len, None, dtype=object)

    def result() -> pd.DataFrame:
        return pd.DataFrame({"expected_volatility": out, "prediction": raw, "filtered": flag}, index=returns.index)

    if t_len == 0:
        return result()

    complete = np.isfinite(feats).all(axis=1) & np.isfinite(target)
    idx = np.flatnonzero(complete)
    if len(idx) < min_obs:
        return result()

    # centre and scale with references taken from the complete rows (improves conditioning;
    # OLS with a constant is invariant to this affine change of units)
    ref_x = feats[idx].mean(axis=0)
    ref_y = target[idx].mean()
    scale = feats[idx].std() or 1.0
    xc = (feats[idx] - ref_x) / scale
    yc = (target[idx] - ref_y) / scale

    k = len(idx)
    cx = np.zeros((k + 1, 3))
    cy = np.zeros(k + 1)
    cxx = np.zeros((k + 1, 3, 3))
    cxy = np.zeros((k + 1, 3))
    np.cumsum(xc, axis=0, out=cx[1:])
    np.cumsum(yc, out=cy[1:])
    np.cumsum(xc[:, :, None] * xc[:, None, :], axis=0, out=cxx[1:])
    np.cumsum(xc * yc[:, None], axis=0, out=cxy[1:])

    # number of complete observations s with s <= t - horizon, for every t
    t_pos = np.arange(t_len)
    hi = np.searchsorted(idx, t_pos - horizon, side="right")
    lo = np.maximum(hi - window, 0)
    n = (hi - lo).astype(float)
    x_now = (feats - ref_x) / scale
    usable = (n >= min_obs) & np.isfinite(feats).all(axis=1)
    rows = np.flatnonzero(usable)
    if len(rows) == 0:
        return result()

    h, l_, nn = hi[rows], lo[rows], n[rows]
    sx = cx[h] - cx[l_]
    sy = cy[h] - cy[l_]
    sxx = cxx[h] - cxx[l_]
    sxy = cxy[h] - cxy[l_]
    mx = sx / nn[:, None]
    my = sy / nn
    a = sxx - nn[:, None, None] * mx[:, :, None] * mx[:, None, :]
    b = sxy - nn[:, None] * mx * my[:, None]
    try:
        coef = np.linalg.solve(a, b[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:
        coef = np.stack([np.linalg.lstsq(ai, bi, rcond=None)[0] for ai, bi in zip(a, b)])
    pred = (my + ((x_now[rows] - mx) * coef).sum(axis=1)) * scale + ref_y
    sample_mean = my * scale + ref_y
    # the largest target of each training set: a rolling maximum over the complete observations
    sample_max = pd.Series(target[idx]).rolling(window, min_periods=1).max().to_numpy()[h - 1]
    insane = ~(pred > 0.0) | (pred > sample_max)
    value = np.where(insane, sample_mean, pred)
    defined = value > 0.0
    raw[rows] = pred
    out[rows] = np.where(defined, np.minimum(np.sqrt(TRADING_DAYS * np.where(defined, value, 0.0)), cap), np.nan)
    flag[rows] = np.where(defined, insane, None)
    return result()


def _trend_scalar(rv21: float, rv63: float) -> str | None:
    if rv21 is None or rv63 is None or not np.isfinite(rv21) or not np.isfinite(rv63):
        return None
    if rv21 > 1.1 * rv63:
        return "increasing"
    if rv21 < 0.9 * rv63:
        return "decreasing"
    return "stable"


def volatility_trend(rv21: Any, rv63: Any) -> Any:
    """'increasing' if ``rv21 > 1.1 * rv63``, 'decreasing' if ``rv21 < 0.9 * rv63``, else 'stable'.

    Scalars give a str (None when either is missing); Series give an object Series aligned on
    ``rv21``'s index (None where either is missing).
    """
    if isinstance(rv21, pd.Series) or isinstance(rv63, pd.Series):
        a = pd.Series(rv21) if not isinstance(rv21, pd.Series) else rv21
        b = rv63.reindex(a.index) if isinstance(rv63, pd.Series) else pd.Series(rv63, index=a.index)
        av = a.to_numpy(dtype=float)
        bv = b.to_numpy(dtype=float)
        res = np.where(av > 1.1 * bv, "increasing", np.where(av < 0.9 * bv, "decreasing", "stable"))
        res = res.astype(object)
        res[~(np.isfinite(av) & np.isfinite(bv))] = None
        return pd.Series(res, index=a.index, name="volatility_trend", dtype=object)
    return _trend_scalar(float(rv21) if rv21 is not None else None, float(rv63) if rv63 is not None else None)


def volatility_percentile(rv21: pd.Series, lookback: int = 252) -> pd.Series:
    """Share of the last ``lookback`` values of ``rv21`` up to and including today's that are <= today's.

    The window is the last ``lookback`` rows (today included); missing values in it are ignored,
    so fewer available values (the start of the history) use all that exist.  NaN where today's
    value is missing.  In (0, 1]; 1.0 means today's value is the highest of the window.
    """
    ranked = rv21.astype(float).rolling(window=lookback, min_periods=1).rank(method="max", pct=True)
    return ranked.where(rv21.notna())


def risk_level(volatility: pd.Series) -> pd.Series:
    """The risk level of each annualised volatility (:data:`RISK_LEVEL_BANDS`: 'Very Low' under 15%, 'Low' under
    25%, 'Moderate' under 35%, 'High' under 50%, else 'Very High'); None where the volatility is missing."""
    v = volatility.to_numpy(dtype=float)
    bounds = np.array([upper for upper, _ in RISK_LEVEL_BANDS])
    labels = np.array([label for _, label in RISK_LEVEL_BANDS] + [None], dtype=object)
    position = np.where(np.isfinite(v), np.searchsorted(bounds, v, side="right"), len(bounds))
    return pd.Series(labels[position], index=volatility.index, name="risk_level", dtype=object)
