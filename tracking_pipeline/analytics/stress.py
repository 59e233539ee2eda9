"""Stress tests: beta-scaled market shocks and historical scenario replays."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_SHOCKS",
    "HistoricalScenario",
    "HISTORICAL_SCENARIOS",
    "beta_shock_scenarios",
    "episode_rows",
    "historical_replay",
    "historical_replays",
    "historical_replays_frame",
]

DEFAULT_SHOCKS: tuple[float, ...] = (-0.10, -0.20, -0.30, 0.10)


class HistoricalScenario(NamedTuple):
    """A named market episode: S&P 500 closing peak (``start``) to closing trough (``end``)."""

    start: date
    end: date
    description: str


#: Peak-to-trough windows of the S&P 500 (checked against SPY closes: the max and min close of
#: each episode fall exactly on these trading days).
HISTORICAL_SCENARIOS: dict[str, HistoricalScenario] = {
    "2018 Q4 sell-off": HistoricalScenario(
        date(2018, 9, 20), date(2018, 12, 24), "Fed tightening / trade war sell-off"
    ),
    "COVID crash": HistoricalScenario(date(2020, 2, 19), date(2020, 3, 23), "COVID-19 crash"),
    "2022 bear market": HistoricalScenario(
        date(2022, 1, 3), date(2022, 10, 12), "Inflation and rate-hike bear market"
    ),
}


def _shock_label(shock: float) -> str:
    return f"Market {shock * 100:+.0f}%"


def beta_shock_scenarios(
    weighted_beta: float, nav: float, shocks: Sequence[float] = DEFAULT_SHOCKS
) -> pd.DataFrame:
    """First-order market shock scenarios from the portfolio beta.

    One row per shock: ``scenario`` (e.g. 'Market -10%'), ``market_shock``,
    ``expected_return = beta * shock`` and ``expected_pnl = nav * expected_return``.  Cash and
    idiosyncratic returns are ignored (linear CAPM approximation); a NaN beta gives NaN rows.
    """
    s = np.asarray(list(shocks), dtype=float)
    exp_ret = float(weighted_beta) * s if weighted_beta is not None else np.full_like(s, np.nan)
    return pd.DataFrame(
        {
            "scenario": [_shock_label(x) for x in s],
            "market_shock": s,
            "expected_return": exp_ret,
            "expected_pnl": float(nav) * exp_ret,
        }
    )


def _window_positions(index: pd.Index, start: Any, end: Any) -> tuple[int, int] | None:
    idx = pd.DatetimeIndex(pd.to_datetime(index))
    s_pos = int(idx.searchsorted(pd.Timestamp(start), side="left"))
    e_pos = int(idx.searchsorted(pd.Timestamp(end), side="right")) - 1
    if s_pos >= len(idx) or e_pos < 0 or e_pos <= s_pos:
        return None
    return s_pos, e_pos


def episode_rows(index: pd.Index, scenarios: Mapping[str, HistoricalScenario] | None = None) -> np.ndarray:
    """Positions in ``index`` (sorted trading dates) of the first and last day of every scenario window that
    ``index`` covers: the only price rows the replays read."""
    positions = [_window_positions(index, sc.start, sc.end) for sc in (scenarios or HISTORICAL_SCENARIOS).values()]
    return np.array([i for pos in positions if pos is not None for i in pos], dtype=int)


def historical_replay(
    weights: Mapping[str, float] | pd.Series,
    prices_wide: pd.DataFrame,
    start: Any,
    end: Any,
) -> float | None:
    """Return of today's weights held buy-and-hold from the close of ``start`` to the close of ``end``.

    ``sum_i w_i * (p_i(end) / p_i(start) - 1)``; the cash share ``1 - sum(w)`` earns 0.  ``start``
    is moved forward and ``end`` backward to the nearest dates in ``prices_wide.index`` (sorted
    trading dates).  Returns None (scenario skipped) when the window is not covered or any held
    ticker (non-zero weight) lacks a price on either day.
    """
    w = pd.Series(weights, dtype=float) if not isinstance(weights, pd.Series) else weights.astype(float)
    w = w[w.fillna(0.0) != 0.0]
    if w.empty:
        return 0.0
    pos = _window_positions(prices_wide.index, start, end)
    if pos is None:
        return None
    if not set(w.index) <= set(prices_wide.columns):
        return None
    p0 = prices_wide[list(w.index)].iloc[pos[0]].to_numpy(dtype=float)
    p1 = prices_wide[list(w.index)].iloc[pos[1]].to_numpy(dtype=float)
    if not (np.isfinite(p0).all() and np.isfinite(p1).all() and (p0 > 0).all()):
        return None
    return float(np.sum(w.to_numpy() * (p1 / p0 - 1.0)))


def historical_replays(
    weights: Mapping[str, float] | pd.Series,
    prices_wide: pd.DataFrame,
    scenarios: Mapping[str, HistoricalScenario] | None = None,
    market_ticker: str | None = None,
) -> pd.DataFrame:
    """``historical_replay`` for every scenario: rows ``scenario, start, end, portfolio_return,
    market_return`` (the market ticker's own return when given and priced), skipped scenarios
    dropped."""
    rows = []
    for name, sc in (scenarios or HISTORICAL_SCENARIOS).items():
        ret = historical_replay(weights, prices_wide, sc.start, sc.end)
        if ret is None:
            continue
        mret = np.nan
        if market_ticker is not None:
            m = historical_replay({market_ticker: 1.0}, prices_wide, sc.start, sc.end)
            mret = np.nan if m is None else m
        rows.append(
            {"scenario": name, "start": sc.start, "end": sc.end, "portfolio_return": ret, "market_return": mret}
        )
    return pd.DataFrame(rows, columns=["scenario", "start", "end", "portfolio_return", "market_return"])


def historical_replays_frame(
    weights_wide: pd.DataFrame,
    prices_wide: pd.DataFrame,
    scenarios: Mapping[str, HistoricalScenario] | None = None,
    market_ticker: str | None = None,
) -> pd.DataFrame:
    """``historical_replay`` of each row's weights (dates x tickers) for every scenario, without look-ahead.

    A row (date ``d``) gets a scenario only when the episode is over by then (``scenario.end <= d``) and,
    as in ``historical_replay``, every held ticker is priced on the window's first and last day.  Returns
    the long frame ``date, scenario, start, end, portfolio_return, market_return``; one vector product per
    scenario, no loop over dates.
    """
    columns = ["date", "scenario", "start", "end", "portfolio_return", "market_return"]
    tickers = list(weights_wide.columns)
    w = weights_wide.fillna(0.0).to_numpy(dtype=float)
    held = w != 0.0
    dates = pd.DatetimeIndex(pd.to_datetime(weights_wide.index))
    frames = []
    for name, sc in (scenarios or HISTORICAL_SCENARIOS).items():
        pos = _window_positions(prices_wide.index, sc.start, sc.end)
        if pos is None:
            continue
        window = prices_wide.iloc[[pos[0], pos[1]]].reindex(columns=tickers).to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            move = np.where(window[0] > 0, window[1] / window[0] - 1.0, np.nan)
        priced = np.isfinite(move)
        ok = ~(held & ~priced[None, :]).any(axis=1) & (dates >= pd.Timestamp(sc.end))
        if not ok.any():
            continue
        ret = w @ np.where(priced, move, 0.0)
        mret = np.nan
        if market_ticker is not None:
            m = historical_replay({market_ticker: 1.0}, prices_wide, sc.start, sc.end)
            mret = np.nan if m is None else m
        frames.append(pd.DataFrame({"date": dates[ok], "scenario": name, "start": sc.start, "end": sc.end,
                                    "portfolio_return": ret[ok], "market_return": mret}))
    if not frames:
        return pd.DataFrame({c: [] for c in columns})
    return pd.concat(frames, ignore_index=True)[columns]
