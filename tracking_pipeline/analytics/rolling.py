"""Rolling risk figures of many return series at once (seed 000): Sharpe, Sortino, volatility, beta to a
benchmark and max drawdown over the last N daily returns.

Inputs are wide frames (days x series) of daily simple returns, a series' benchmark returns in the same cell of a
second frame; rows are consecutive NAV days, so a window is the last N rows. A value is NaN until the window holds
N returns (and wherever one of its returns is missing) and wherever it is undefined (zero dispersion, no negative
excess return, a constant benchmark): never 0 or inf in place of undefined. With ``e = r - rf_d``:

- ``sharpe = mean(e) / std(e, ddof=1) * sqrt(252)``        (quantstats ``rolling_sharpe(rf=rf_annual)``)
- ``sortino = mean(e) / sqrt(sum(min(e, 0)^2) / N) * sqrt(252)``  (quantstats ``rolling_sortino(rf=rf_annual)``)
- ``volatility = std(r, ddof=1) * sqrt(252)``              (quantstats ``rolling_volatility``)
- ``beta = cov(r, b) / var(b)``                            (quantstats ``rolling_greeks`` beta)
- ``max_drawdown`` = the deepest fall of the window's NAV path, the NAV before its first return included
  (empyrical ``roll_max_drawdown``)

Everything is a pandas rolling aggregate over the whole frame (compiled, one pass per statistic) except the
drawdown, which takes the running maximum over a sliding-window view of each series' growth path (one numpy pass
per series, no loop over days).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

ANNUALIZATION = 252
ROLLING_WINDOWS: tuple[int, ...] = (63, 252)
"""The windows of ``portfolio_rolling_metrics`` (a quarter and a year of trading days)."""
ROLLING_FIGURES: tuple[str, ...] = ("sharpe", "sortino", "volatility", "beta", "max_drawdown")


def rolling_columns(windows: tuple[int, ...] = ROLLING_WINDOWS) -> list[str]:
    """Column names ``<figure>_<window>`` (e.g. ``sharpe_63``) in table order."""
    return [f"{figure}_{window}" for window in windows for figure in ROLLING_FIGURES]


def rolling_max_drawdown(returns: pd.DataFrame, window: int) -> pd.DataFrame:
    """Per series and day, ``min(nav / running max(nav)) - 1`` over the NAV path of the last ``window`` returns
    with the NAV before the first of them (``window + 1`` points); NaN until the window is full or when it holds a
    missing return."""
    values = returns.to_numpy(dtype=float)
    out = np.full(values.shape, np.nan)
    if len(values) < window:
        return pd.DataFrame(out, index=returns.index, columns=returns.columns)
    full = pd.DataFrame(np.isfinite(values)).rolling(window).sum().to_numpy() == window
    for j in range(values.shape[1]):
        # the growth path from 1 (the NAV before the first row); a missing return counts as 0 here, and the
        # windows that hold it are masked below, the others do not depend on it (the scale cancels)
        growth = np.concatenate([[1.0], np.cumprod(1.0 + np.nan_to_num(values[:, j], nan=0.0))])
        paths = np.lib.stride_tricks.sliding_window_view(growth, window + 1)
        peaks = np.maximum.accumulate(paths, axis=1)
        out[window - 1:, j] = ((paths - peaks) / peaks).min(axis=1)
    out[~full] = np.nan
    return pd.DataFrame(np.minimum(out, 0.0), index=returns.index, columns=returns.columns)


def rolling_metrics(returns: pd.DataFrame, benchmark: pd.DataFrame, window: int,
                    rf_annual: float = 0.0) -> dict[str, pd.DataFrame]:
    """The rolling figures over ``window`` returns: ``{"<figure>_<window>": days x series frame}`` (module
    docstring). ``benchmark`` is aligned on ``returns`` (same index and columns)."""
    rf_d = (1.0 + rf_annual) ** (1.0 / ANNUALIZATION) - 1.0
    benchmark = benchmark.reindex(index=returns.index, columns=returns.columns)
    sqrt_ann = math.sqrt(ANNUALIZATION)
    excess = returns - rf_d
    rolling = excess.rolling(window, min_periods=window)
    mean, std = rolling.mean(), rolling.std()
    losses = (excess < 0).astype(float).where(returns.notna()).rolling(window, min_periods=window).sum()
    downside = (excess.clip(upper=0.0) ** 2).rolling(window, min_periods=window).sum() / window
    b_var = benchmark.rolling(window, min_periods=window).var()
    covariance = returns.rolling(window, min_periods=window).cov(benchmark, pairwise=False)
    return {
        f"sharpe_{window}": (mean / std.where(std > 0)) * sqrt_ann,
        f"sortino_{window}": (mean / np.sqrt(downside.where(losses > 0))) * sqrt_ann,
        f"volatility_{window}": returns.rolling(window, min_periods=window).std() * sqrt_ann,
        f"beta_{window}": covariance / b_var.where(b_var > 0),
        f"max_drawdown_{window}": rolling_max_drawdown(returns, window),
    }
