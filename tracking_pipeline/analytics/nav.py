"""Raw portfolio NAV (CONTRACT §4): rebalance to target weights at the close of each effective date, shares
fixed in between (weights drift), the uninvested remainder earns rf_d per trading day.

Vectorised per holding period: one matrix-vector product per rebalance segment, no loop over days.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MAX_STALE_DAYS = 5


class NavError(ValueError):
    """A portfolio's NAV cannot be computed (e.g. a held ticker unpriced for more than 5 trading days)."""


@dataclass(frozen=True)
class NavPath:
    """NAV per day with the close-of-day position weights (after any rebalance) and carried-forward prices;
    `pre_weights` holds, for each rebalance after the first day, the weights at that close before rebalancing
    (the previous shares at the day's prices), so the trades are `weights - pre_weights` on those days."""

    nav: pd.Series
    weights: pd.DataFrame
    stale: dict[str, list[str]]  # ticker -> ISO days on which its last price was carried forward
    pre_weights: pd.DataFrame | None = None


def rebalance_schedule(effective: list[tuple[pd.Timestamp, dict[str, float]]], start: pd.Timestamp,
                       sessions: pd.DatetimeIndex) -> list[tuple[pd.Timestamp, dict[str, float]]]:
    """Map effective dates to trading days (the next session when not one) from `start` on.

    The weights in force on `start` are the latest ones effective on or before it (none: all cash)."""
    mapped: dict[pd.Timestamp, dict[str, float]] = {}
    initial: dict[str, float] = {}
    ordered = sorted(effective, key=lambda item: item[0])
    at = sessions.searchsorted(pd.DatetimeIndex([when for when, _ in ordered]))  # one vectorised lookup
    inside = at < len(sessions)
    for (_, weights), day in zip([item for item, ok in zip(ordered, inside) if ok], sessions[at[inside]]):
        if day <= start:
            initial = weights
        else:
            mapped[day] = weights
    return [(start, initial), *sorted(mapped.items())]


def carry_forward(prices: pd.DataFrame, days: pd.DatetimeIndex,
                  max_stale: int = MAX_STALE_DAYS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Prices on `days` with gaps filled from the last price for at most `max_stale` trading days.

    `prices` is indexed by session (it may start before `days` so a gap at the start can be filled).
    Returns the filled prices and a boolean frame marking carried-forward cells."""
    index = pd.DatetimeIndex(prices.index).union(days)  # an empty frame has a RangeIndex
    full = prices.reindex(index).to_numpy(dtype=float)
    rows = np.arange(len(index))[:, None]
    last = np.maximum.accumulate(np.where(np.isnan(full), -1, rows), axis=0)  # row of the latest price, -1: none
    usable = (last >= 0) & (rows - last <= max_stale)
    filled = np.where(usable, np.take_along_axis(full, np.maximum(last, 0), axis=0), np.nan)
    at = index.get_indexer(days)
    columns = prices.columns
    return (pd.DataFrame(filled[at], index=days, columns=columns),
            pd.DataFrame(np.isnan(full[at]) & usable[at], index=days, columns=columns))


def raw_nav_path(prices: pd.DataFrame, days: pd.DatetimeIndex,
                 schedule: list[tuple[pd.Timestamp, dict[str, float]]], anchor_nav: float, rf_d: float,
                 label: str = "portfolio") -> NavPath:
    """NAV on `days` (days[0] is the anchor: NAV = anchor_nav there and the weights in force are set).

    schedule: (trading day, target weights) with the first entry the weights in force on days[0]; later
    entries rebalance at that day's close after its NAV is computed with the old shares."""
    tickers = sorted({t for _, w in schedule for t in w})
    filled, stale_mask = carry_forward(prices.reindex(columns=tickers), days)
    p = filled.to_numpy(dtype=float)
    n_days = len(days)
    nav = np.empty(n_days)
    weights = np.zeros((n_days, len(tickers)))
    col = {t: i for i, t in enumerate(tickers)}
    starts = [int(days.searchsorted(day)) for day, _ in schedule]
    held_any = np.zeros((n_days, len(tickers)), dtype=bool)
    pre_rows: list[int] = []
    pre = []
    nav[0] = anchor_nav
    for k, (a, (_, target)) in enumerate(zip(starts, schedule)):
        if a >= n_days:
            break
        if k > 0:  # the previous segment left the drifted weights of this close in weights[a]
            pre_rows.append(a)
            pre.append(weights[a].copy())
        b = min(starts[k + 1], n_days - 1) if k + 1 < len(starts) else n_days - 1
        w = np.zeros(len(tickers))
        for ticker, weight in target.items():
            w[col[ticker]] = weight
        held = w > 0
        held_any[a:b + 1, held] = True
        _require_prices(p, days, tickers, held, a, b, label)
        price_a = np.where(held, p[a], 1.0)
        shares = np.where(held, w * nav[a] / price_a, 0.0)
        cash = nav[a] * (1.0 - w.sum())
        steps = np.arange(1, b - a + 1)
        seg = np.where(held, p[a + 1:b + 1], 0.0)
        values = seg * shares
        nav[a + 1:b + 1] = values.sum(axis=1) + cash * (1.0 + rf_d) ** steps
        weights[a] = w
        weights[a + 1:b + 1] = values / nav[a + 1:b + 1, None]
    stale_cells = stale_mask.to_numpy(dtype=bool) & held_any
    stale = {tickers[j]: [d.date().isoformat() for d in days[stale_cells[:, j]]]
             for j in range(len(tickers)) if stale_cells[:, j].any()}
    pre_weights = pd.DataFrame(np.array(pre).reshape(len(pre), len(tickers)), index=days[pre_rows], columns=tickers)
    return NavPath(pd.Series(nav, index=days, name="nav"), pd.DataFrame(weights, index=days, columns=tickers), stale,
                   pre_weights)


def _require_prices(p: np.ndarray, days: pd.DatetimeIndex, tickers: list[str], held: np.ndarray,
                    a: int, b: int, label: str) -> None:
    missing = np.isnan(p[a:b + 1]) & held
    if missing.any():
        row, j = np.argwhere(missing)[0]
        raise NavError(f"{label}: {tickers[j]} has no price on {days[a + row].date()} "
                       f"(none within the last {MAX_STALE_DAYS} trading days)")


def nav_frame(nav: pd.Series, initial_nav: float, previous_nav: float | None) -> pd.DataFrame:
    """nav, daily_return (0 on the first NAV day) and cumulative_return for a NAV series.

    previous_nav is the NAV of the day before nav's first day, or None when the first day is the start."""
    prev = nav.shift(1)
    prev.iloc[0] = previous_nav if previous_nav is not None else nav.iloc[0]
    return pd.DataFrame({"nav": nav, "daily_return": nav / prev - 1.0, "cumulative_return": nav / initial_nav - 1.0})
