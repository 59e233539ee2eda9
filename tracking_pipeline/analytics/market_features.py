"""Market features of the market ticker (CONTRACT §3 `market_features`), the inputs of the overlay models."""

from __future__ import annotations

import pandas as pd

from tracking_pipeline.analytics import indicators as ind

# Longest look-back any feature needs (SMA 200, momentum 126) plus slack for missing days.
LOOKBACK_SESSIONS = 260
INDICATOR_COLUMNS = ("close", "sma_50", "sma_200", "rsi_14", "momentum_63", "momentum_126", "realized_vol_21",
                     "drawdown")


def market_indicators(close: pd.Series) -> pd.DataFrame:
    """SMA 50/200, Wilder RSI 14, momentum 63/126, 21-day realized volatility (annualised std of returns)
    and drawdown from the running peak, from the market ticker's adj_close indexed by trading day.

    Drawdown is measured from the peak within the supplied history, so callers pass all stored history."""
    close = close.sort_index().astype(float)
    returns = ind.simple_returns(close)
    return pd.DataFrame({
        "close": close,
        "sma_50": ind.sma(close, 50),
        "sma_200": ind.sma(close, 200),
        "rsi_14": ind.rsi(close, 14),
        "momentum_63": ind.momentum(close, 63),
        "momentum_126": ind.momentum(close, 126),
        "realized_vol_21": ind.realized_volatility(returns, 21),
        "drawdown": ind.drawdown(close),
    })
