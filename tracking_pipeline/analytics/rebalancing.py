"""Rebalancing events of a portfolio (seed 002): when it rebalanced, or should have, and what that took.

Events, for a portfolio whose close-of-day weights (market value / NAV, after any rebalance) are known:

- ``initial``: the first NAV day, when the cash is invested in the targets (pre weights all 0);
- ``scheduled``: a holdings date (its trading day): pre = the drifted weights at that close with the previous
  shares, post = the new targets;
- ``threshold``: a day on which the largest drift from the targets in force rises above the threshold (it was at
  or below it the day before; the day after a rebalance it starts from 0), not a scheduled day: pre = the day's
  weights, post = the targets, i.e. the trades that would restore them. The raw NAV does not execute them
  (CONTRACT §4 rebalances on holdings dates only), so the drift persists and the next event of the kind needs a
  new crossing.

For each event and ticker whose weight changes, the trade is ``weight_change = post - pre``, ``value =
weight_change * NAV`` at that close and ``shares = value / adj_close`` at that close (buy > 0, sell < 0), so
``pre + weight_change = post`` exactly and the shares bought or sold move the position to ``post * NAV``. The
event's ``turnover`` is the one-way turnover ``sum(|weight_change|) / 2``, ``traded_value = sum(|value|)`` and
``estimated_cost = traded_value * cost_bps / 10,000`` (an estimate: the raw NAV carries no costs).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

INITIAL, SCHEDULED, THRESHOLD = "initial", "scheduled", "threshold"
EVENT_TYPES: tuple[str, ...] = (INITIAL, SCHEDULED, THRESHOLD)
DEFAULT_COST_BPS = 10.0
"""Estimated cost of a trade in basis points of its value (commission, spread and impact of a liquid US stock)."""
TRADE_EPSILON = 1e-12
"""Weight changes at or below this are rounding, not trades."""


def threshold_crossings(drift: pd.Series, threshold: float, previous: float | None = None) -> pd.Series:
    """True on each day the drift rises above ``threshold`` (strictly) from at or below it the day before;
    ``previous`` is the drift of the day before the first (None: the first day counts as a crossing)."""
    above = drift.to_numpy(dtype=float) > threshold
    before = np.r_[previous is not None and previous > threshold, above[:-1]] if len(above) else above
    return pd.Series(above & ~before, index=drift.index)


def event_rows(
    events: list[tuple[pd.Timestamp, str, pd.Series, pd.Series]],
    nav: pd.Series,
    prices: pd.DataFrame,
    cost_bps: float = DEFAULT_COST_BPS,
) -> pd.DataFrame:
    """One row per event ``(day, event_type, pre weights, post weights)`` (weights by ticker; missing = 0) with the
    NAV (``nav`` on that day) and the close prices (``prices``, days x tickers) used for the shares.

    Columns: ``event_date``, ``event_type``, ``nav``, ``max_drift`` (the largest ``|post - pre|``),
    ``pre_weights`` / ``post_weights`` (``{ticker: weight}`` of the positions held), ``trades`` (``[{ticker,
    weight_change, value, shares, price}]`` by ticker), ``turnover``, ``traded_value``, ``cost_bps``,
    ``estimated_cost``."""
    columns = ["event_date", "event_type", "nav", "max_drift", "pre_weights", "post_weights", "trades", "turnover",
               "traded_value", "cost_bps", "estimated_cost"]
    rows = []
    for day, kind, pre, post in events:
        tickers = sorted(set(pre.index) | set(post.index))
        before = pre.reindex(tickers).fillna(0.0).to_numpy(dtype=float)
        after = post.reindex(tickers).fillna(0.0).to_numpy(dtype=float)
        change = after - before
        level = float(nav.loc[day])
        price = prices.reindex(columns=tickers).loc[day].to_numpy(dtype=float)
        value = change * level
        traded = np.abs(change) > TRADE_EPSILON
        gross = float(np.abs(value[traded]).sum())
        rows.append({
            "event_date": day, "event_type": kind, "nav": level,
            "max_drift": float(np.abs(change).max()) if len(change) else 0.0,
            "pre_weights": {t: float(w) for t, w in zip(tickers, before) if w > 0},
            "post_weights": {t: float(w) for t, w in zip(tickers, after) if w > 0},
            "trades": [{"ticker": t, "weight_change": float(c), "value": float(v), "shares": float(v / p),
                        "price": float(p)}
                       for t, c, v, p, keep in zip(tickers, change, value, price, traded) if keep],
            "turnover": float(np.abs(change[traded]).sum() / 2.0), "traded_value": gross, "cost_bps": cost_bps,
            "estimated_cost": gross * cost_bps / 10_000.0,
        })
    return pd.DataFrame(rows, columns=columns)
