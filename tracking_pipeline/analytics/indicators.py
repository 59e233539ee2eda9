"""Technical indicators on price series / wide price frames.

Every function takes a pandas Series or a wide DataFrame (index = trading date, one column per
ticker) and returns an object of the same shape and index.  Values are NaN where there is not
enough history; NaN gaps in the input are never forward-filled here (that is the caller's
decision).  All functions are vectorised pandas operations, no Python loops over rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pandas as pd

__all__ = [
    "TRADING_DAYS",
    "simple_returns",
    "sma",
    "ema",
    "rsi",
    "momentum",
    "realized_volatility",
    "drawdown",
    "macd",
    "bollinger",
    "atr",
    "stochastic",
    "obv",
    "true_range",
    "EwmState",
    "ewm_from",
    "obv_from",
    "rsi_from_averages",
]

TRADING_DAYS = 252

PandasT = TypeVar("PandasT", pd.Series, pd.DataFrame)


def simple_returns(prices: PandasT) -> PandasT:
    """Simple daily returns ``p_t / p_{t-1} - 1`` of (adjusted) close prices.

    The first row is NaN and NaN gaps are *not* filled (``fill_method=None``): a return next to a
    missing price is NaN rather than a multi-day return.
    """
    return prices.pct_change(fill_method=None)


def sma(x: PandasT, window: int) -> PandasT:
    """Simple moving average over the last ``window`` rows (NaN until ``window`` values exist)."""
    return x.rolling(window=window, min_periods=window).mean()


def ema(x: PandasT, span: int) -> PandasT:
    """Exponential moving average, ``alpha = 2 / (span + 1)``, recursive form (``adjust=False``).

    ``ema_0 = x_0``, ``ema_t = alpha * x_t + (1 - alpha) * ema_{t-1}``.  No warm-up masking: the
    first value equals the first observation (the usual charting convention, as in MACD).
    """
    return x.ewm(span=span, adjust=False).mean()


def rsi(prices: PandasT, window: int = 14) -> PandasT:
    """Wilder's Relative Strength Index in [0, 100].

    ``d_t = p_t - p_{t-1}``; gains ``max(d, 0)`` and losses ``max(-d, 0)`` are smoothed with Wilder's
    recursive average ``ewm(alpha=1/window, adjust=False)`` (seeded with the first change), and
    ``RSI = 100 - 100 / (1 + avg_gain / avg_loss)``.  NaN until ``window`` price changes exist;
    100 when the average loss is 0 (no losses), 50 when both averages are 0 (flat prices).
    """
    delta = prices.diff()
    gain = delta.clip(lower=0.0)
    loss = (-delta).clip(lower=0.0)
    alpha = 1.0 / window
    avg_gain = gain.ewm(alpha=alpha, adjust=False, min_periods=window).mean()
    avg_loss = loss.ewm(alpha=alpha, adjust=False, min_periods=window).mean()
    return rsi_from_averages(avg_gain, avg_loss)


def rsi_from_averages(avg_gain: PandasT, avg_loss: PandasT) -> PandasT:
    """RSI from Wilder's average gain and loss (NaN where either is): 100 when only gains, 50 when flat."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rs = avg_gain / avg_loss
        out = 100.0 - 100.0 / (1.0 + rs)
    # avg_loss == 0: rs = inf (-> 100 already) or nan when avg_gain is also 0 (flat) -> 50.
    out = out.mask((avg_loss == 0) & (avg_gain > 0), 100.0)
    out = out.mask((avg_loss == 0) & (avg_gain == 0), 50.0)
    return out


def momentum(prices: PandasT, window: int) -> PandasT:
    """Price momentum ``p_t / p_{t-window} - 1`` (NaN for the first ``window`` rows)."""
    return prices / prices.shift(window) - 1.0


def realized_volatility(returns: PandasT, window: int = 21) -> PandasT:
    """Annualised rolling volatility: ``std(last window returns, ddof=1) * sqrt(252)``.

    This is the *market feature* definition (demeaned sample std).  The portfolio snapshot uses
    the un-demeaned ``sqrt(252/N * sum r^2)`` instead; see ``volatility.realized_vol_sqrt_sum``.
    NaN until ``window`` non-missing returns are in the window.
    """
    return returns.rolling(window=window, min_periods=window).std(ddof=1) * np.sqrt(TRADING_DAYS)


def drawdown(prices: PandasT) -> PandasT:
    """Drawdown from the running peak: ``p_t / max_{s<=t} p_s - 1`` (<= 0; NaN where p_t is NaN)."""
    return prices / prices.cummax() - 1.0


def macd(
    prices: PandasT, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[PandasT, PandasT, PandasT]:
    """MACD: ``macd = ema(p, fast) - ema(p, slow)``, ``signal = ema(macd, signal)``, ``hist = macd - signal``.

    EMAs are recursive (``adjust=False``) as in ``ema``; no warm-up masking (standard charting).
    """
    macd_line = ema(prices, fast) - ema(prices, slow)
    signal_line = ema(macd_line, signal)
    return macd_line, signal_line, macd_line - signal_line


def bollinger(
    prices: PandasT, window: int = 20, num_std: float = 2.0
) -> tuple[PandasT, PandasT, PandasT]:
    """Bollinger bands ``(mid, upper, lower)``: ``mid = sma(p, window)``, ``mid +/- num_std * sigma``.

    ``sigma`` is the *population* rolling std (``ddof=0``), Bollinger's original convention and
    the one used by most charting packages (TA-Lib, TradingView).
    """
    mid = sma(prices, window)
    sd = prices.rolling(window=window, min_periods=window).std(ddof=0)
    return mid, mid + num_std * sd, mid - num_std * sd


def true_range(high: PandasT, low: PandasT, close: PandasT) -> PandasT:
    """True range ``max(h - l, |h - c_{t-1}|, |l - c_{t-1}|)``; ``h - l`` on the first row."""
    prev_close = close.shift(1)
    hl = high - low
    hc = (high - prev_close).abs()
    lc = (low - prev_close).abs()
    if isinstance(hl, pd.DataFrame):
        stacked = np.stack([hl.to_numpy(float), hc.to_numpy(float), lc.to_numpy(float)])
        tr = np.fmax(np.fmax(stacked[0], stacked[1]), stacked[2])
        # first row (no previous close): fmax already ignores the NaN terms -> h - l
        return pd.DataFrame(tr, index=hl.index, columns=hl.columns)
    tr = np.fmax(np.fmax(hl.to_numpy(float), hc.to_numpy(float)), lc.to_numpy(float))
    return pd.Series(tr, index=hl.index, name=getattr(close, "name", None))


def atr(high: PandasT, low: PandasT, close: PandasT, window: int = 14) -> PandasT:
    """Wilder's Average True Range.

    True range ``TR_t = max(h_t - l_t, |h_t - c_{t-1}|, |l_t - c_{t-1}|)`` (``h - l`` on the first
    row), smoothed with Wilder's average ``ewm(alpha=1/window, adjust=False, min_periods=window)``.
    """
    tr = true_range(high, low, close)
    return tr.ewm(alpha=1.0 / window, adjust=False, min_periods=window).mean()


def stochastic(
    high: PandasT, low: PandasT, close: PandasT, k: int = 14, d: int = 3
) -> tuple[PandasT, PandasT]:
    """Stochastic oscillator ``(%K, %D)`` in [0, 100].

    ``%K = 100 * (c_t - min(low, k)) / (max(high, k) - min(low, k))`` over the last ``k`` rows
    (NaN when the range is 0); ``%D = sma(%K, d)`` (the "fast" stochastic).
    """
    lowest = low.rolling(window=k, min_periods=k).min()
    highest = high.rolling(window=k, min_periods=k).max()
    rng = highest - lowest
    pct_k = 100.0 * (close - lowest) / rng.where(rng != 0)
    pct_d = pct_k.rolling(window=d, min_periods=d).mean()
    return pct_k, pct_d


def obv(close: PandasT, volume: PandasT) -> PandasT:
    """On-balance volume: cumulative sum of ``sign(c_t - c_{t-1}) * volume_t``, starting at 0.

    The first row is 0 (no previous close); unchanged or missing closes contribute 0.
    """
    direction = np.sign(close.diff()).fillna(0.0)
    return (direction * volume.fillna(0.0)).cumsum()


@dataclass(frozen=True)
class EwmState:
    """Where a recursive average (``ewm(adjust=False)``) stands after some day, per column: ``value`` is the
    average (pandas' running value, also while ``min_periods`` still masks the output; NaN before any
    observation), ``seen`` the day of the last observation (NaT: none) and ``count`` the observations so far."""

    value: np.ndarray
    seen: np.ndarray
    count: np.ndarray

    @classmethod
    def empty(cls, width: int) -> "EwmState":
        """No observation yet in any of `width` columns."""
        return cls(np.full(width, np.nan), np.full(width, np.datetime64("NaT"), dtype="datetime64[ns]"),
                   np.zeros(width, dtype=np.int64))


def ewm_from(x: pd.DataFrame, state: EwmState | None = None, min_periods: int = 0,
             **params: Any) -> tuple[pd.DataFrame, EwmState]:
    """``x.ewm(adjust=False, min_periods=min_periods, **params).mean()`` continued from ``state``, and the state
    after x's last row.

    With ``adjust=False`` pandas' average after an observation carries weight 1 whatever came before, so a
    column whose average is carried in at its last observation's row (the rows before it ignored) runs on
    exactly as over its whole history: the unobserved rows between still decay that weight row by row, and
    ``count`` keeps ``min_periods`` counting from the first observation. A column whose last observation lies
    before x's first row is carried unchanged; it must then have no observation in x (ValueError)."""
    if state is None:
        state = EwmState.empty(x.shape[1])
    if len(x) == 0:
        return x.astype(float), state
    values = x.to_numpy(dtype=float, copy=True)
    observed = ~np.isnan(values)
    seed = np.where(state.count > 0, x.index.searchsorted(state.seen), -1)
    before = (state.count > 0) & (state.seen < x.index[0].to_datetime64())
    seed[before] = 0
    late = before & observed.any(axis=0)
    if late.any():
        raise ValueError(f"ewm_from: columns {list(x.columns[late])} are observed in the frame but their state "
                         "ends before its first row")
    positions = np.arange(len(x))[:, None]
    observed &= positions > seed
    values[~observed] = np.nan
    carried = np.flatnonzero(seed >= 0)
    values[seed[carried], carried] = state.value[carried]
    average = pd.DataFrame(values, index=x.index, columns=x.columns).ewm(adjust=False, **params).mean()
    counts = np.cumsum(observed, axis=0) + state.count
    out = average.where(counts >= max(min_periods, 1))  # NaN before the seed: nothing observed there
    last = len(x) - 1 - np.argmax(observed[::-1], axis=0)
    seen = np.where(observed.any(axis=0), x.index.to_numpy()[last], state.seen)
    value = np.where(counts[-1] > 0, average.to_numpy()[-1], np.nan)
    return out, EwmState(value, seen, counts[-1])


def obv_from(close: pd.DataFrame, volume: pd.DataFrame, total: np.ndarray | None = None,
             after: int = -1) -> pd.DataFrame:
    """``obv(close, volume)`` continued from ``total``, the running sum at row ``after`` (its rows up to
    ``after`` ignored; the sums add in the same order as over the whole history, so they are equal bit for
    bit). ``after=-1``: from the first row (``obv`` itself)."""
    direction = np.sign(close.diff()).fillna(0.0)
    flows = (direction * volume.fillna(0.0)).to_numpy(dtype=float, copy=True)
    if after >= 0:
        flows[:after] = 0.0
        flows[after] = total if total is not None else 0.0
    return pd.DataFrame(np.cumsum(flows, axis=0), index=close.index, columns=close.columns)
