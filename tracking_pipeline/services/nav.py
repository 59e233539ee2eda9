"""Computing `portfolio_daily_nav` for a range of trading days from warehouse tables.

Path-dependent: a range continues from the last stored NAV before it (the stored raw NAV at the last rebalance
fixes the share counts; overlay variants continue from their stored NAV the day before), and a portfolio whose
start_date falls inside the range starts there with initial_nav. Each portfolio is computed on its own, so one
failure does not stop the others.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tracking_pipeline.analytics.nav import NavError, nav_frame, raw_nav_path, rebalance_schedule
from tracking_pipeline.analytics.overlays.variant_nav import equity_allocation_for_days, variant_returns
from tracking_pipeline.analytics.overlays.registry import get_model
from tracking_pipeline.trading_calendar import next_session_on_or_after, nyse_sessions
from tracking_pipeline.warehouse import Warehouse

log = logging.getLogger(__name__)

RAW = "raw"
PRICE_LOOKBACK_SESSIONS = 10


@dataclass
class NavRun:
    """The rows for the range, the ids written, stale prices and per-portfolio errors; `active` holds every
    active portfolio when the run covered them all (the checks reuse it instead of reading the registry again)."""

    rows: pd.DataFrame
    portfolio_ids: list[int]
    stale: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    active: list[Portfolio] | None = None


@dataclass(frozen=True)
class Portfolio:
    portfolio_id: int
    name: str
    start: pd.Timestamp
    initial_nav: float
    variants: tuple[str, ...]
    schedule: list[tuple[pd.Timestamp, dict[str, float]]]

    def weights_on(self, day: pd.Timestamp) -> dict[str, float]:
        """The target weights in force on `day`: its last rebalance on or before it (empty before the start)."""
        in_force = [w for d, w in self.schedule if d <= day]
        return in_force[-1] if self.start <= day and in_force else {}

    def entries_on(self, days: pd.DatetimeIndex) -> np.ndarray:
        """For each of `days`, the position in `schedule` of the weights `weights_on` gives (-1 where none), in
        one vectorised pass."""
        dates = np.array([d.to_datetime64() for d, _ in self.schedule], dtype="datetime64[ns]")
        on = pd.DatetimeIndex(days).to_numpy("datetime64[ns]")
        seen = dates[None, :] <= on[:, None]
        last = len(dates) - 1 - np.argmax(seen[:, ::-1], axis=1) if len(dates) else np.zeros(len(on), dtype=np.intp)
        return np.where(seen.any(axis=1) & (on >= self.start.to_datetime64()), last, -1).astype(np.intp)

    def schedule_from(self, anchor: pd.Timestamp, until: pd.Timestamp | None = None
                      ) -> list[tuple[pd.Timestamp, dict[str, float]]]:
        """The rebalance schedule restarted at `anchor` (a session on or after the start): the weights in force
        there, then every later rebalance (up to `until` when given), so a path can resume from a stored NAV
        instead of the start."""
        return [(anchor, self.weights_on(anchor)),
                *[(d, w) for d, w in self.schedule if d > anchor and (until is None or d <= until)]]


def load_active_portfolios(wh: Warehouse, end: pd.Timestamp, only: list[int] | None = None) -> list[Portfolio]:
    """Active portfolios whose first NAV day is on or before `end` (restricted to the ids in `only` when
    given), with their rebalance schedules."""
    defs = wh.read_table("portfolio_definitions", "is_active AND start_date <= ?", [end.date()])
    if only is not None:
        defs = defs[defs["portfolio_id"].astype("int64").isin(only)]
    if defs.empty:
        return []
    effective_weights = _effective_weights(wh.read_table("portfolio_holdings"))
    sessions = nyse_sessions()
    out = []
    for row in defs.itertuples(index=False):
        start = next_session_on_or_after(row.start_date)
        if start > end:
            continue
        effective = effective_weights.get(int(row.portfolio_id), [])
        config = json.loads(row.config) if isinstance(row.config, str) else (row.config or {})
        out.append(Portfolio(int(row.portfolio_id), row.name, start, float(row.initial_nav),
                             tuple(config.get("variants", [RAW])), rebalance_schedule(effective, start, sessions)))
    return out


def _effective_weights(holdings: pd.DataFrame) -> dict[int, list[tuple[pd.Timestamp, dict[str, float]]]]:
    """`portfolio_holdings` rows (ordered by portfolio, effective date, ticker) as each portfolio's list of
    (effective date, {ticker: weight}); one pass over plain arrays, no per-group pandas indexing."""
    ids = holdings["portfolio_id"].to_numpy("int64")
    dates = holdings["effective_date"].to_numpy("datetime64[ns]")
    tickers = holdings["ticker"].tolist()
    weights = holdings["weight"].to_numpy(float).tolist()
    starts = np.flatnonzero(np.r_[True, (ids[1:] != ids[:-1]) | (dates[1:] != dates[:-1])]) if len(ids) else []
    out: dict[int, list[tuple[pd.Timestamp, dict[str, float]]]] = {}
    for first, stop in zip(starts, [*starts[1:], len(ids)]):
        out.setdefault(int(ids[first]), []).append(
            (pd.Timestamp(dates[first]), dict(zip(tickers[first:stop], weights[first:stop]))))
    return out


def compute_nav_range(wh: Warehouse, start: pd.Timestamp, end: pd.Timestamp, rf_d: float,
                      cost_bps: dict[str, float] | None = None, only: list[int] | None = None) -> NavRun:
    """NAV rows of every active portfolio (or those in `only`) and variant for trading days in [start, end]."""
    portfolios = load_active_portfolios(wh, end, only)
    sessions = nyse_sessions()
    run = NavRun(rows=pd.DataFrame(), portfolio_ids=[], active=portfolios if only is None else None)
    if not portfolios:
        return run
    priced_days = wh.query("SELECT DISTINCT trade_date FROM price_data WHERE trade_date BETWEEN ? AND ?",
                           [start.date(), end.date()])["trade_date"]
    range_days = sessions[(sessions >= start) & (sessions <= end)]
    unpriced = range_days.difference(pd.DatetimeIndex(priced_days))
    if len(unpriced):
        raise NavError(f"price_data has no rows on {len(unpriced)} trading day(s) of the range, first "
                       f"{unpriced[0].date()}: materialize price_data for them first")
    i = sessions.searchsorted(start)
    previous_day = sessions[i - 1] if i > 0 else start - pd.Timedelta(days=1)  # none before the calendar
    anchors = {p.portfolio_id: _anchor(p, start, previous_day) for p in portfolios}
    stored = _stored_navs(wh, anchors, previous_day)
    tickers = sorted({t for p in portfolios for _, w in p.schedule for t in w})
    first = min(a for a in anchors.values())
    prices = _price_matrix(wh, tickers, sessions[max(sessions.searchsorted(first) - PRICE_LOOKBACK_SESSIONS, 0)],
                           end)
    signals = _allocations(wh, min(p.start for p in portfolios), end)
    frames = []
    for p in portfolios:
        try:
            frames.append(_portfolio_rows(p, anchors[p.portfolio_id], start, end, previous_day, stored, prices,
                                          signals, rf_d, cost_bps or {}, run))
            run.portfolio_ids.append(p.portfolio_id)
        except Exception as exc:  # noqa: BLE001 - one portfolio's failure must not stop the others
            run.errors[p.name] = portfolio_error(p.name, exc)
    run.rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return run


def portfolio_error(name: str, exc: Exception) -> str:
    """The message recorded for a portfolio that failed while the others go on: an input error (ValueError, incl.
    NavError, or a missing key) as it is; anything else with its type, its traceback logged, as a bug."""
    if isinstance(exc, (ValueError, KeyError)):
        return str(exc)
    log.error("portfolio %r failed unexpectedly", name, exc_info=exc)
    return f"unexpected {type(exc).__name__}: {exc}"


def _anchor(p: Portfolio, start: pd.Timestamp, previous_day: pd.Timestamp) -> pd.Timestamp:
    """The day the computation restarts from: the start, or the last rebalance on or before the prior day."""
    if p.start >= start:
        return p.start
    return max(day for day, _ in p.schedule if day <= previous_day)


def _stored_navs(wh: Warehouse, anchors: dict[int, pd.Timestamp], previous_day: pd.Timestamp) -> pd.DataFrame:
    days = sorted({a.date() for a in anchors.values()} | {previous_day.date()})
    frame = wh.query(f"SELECT portfolio_id, trade_date, variant, nav FROM portfolio_daily_nav "
                     f"WHERE trade_date IN ({', '.join('?' for _ in days)})", days)
    frame["portfolio_id"] = frame["portfolio_id"].astype("int64")
    return frame.set_index(["portfolio_id", "trade_date", "variant"])["nav"]


def _price_matrix(wh: Warehouse, tickers: list[str], start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    if not tickers:
        return pd.DataFrame()
    frame = wh.query(f"SELECT trade_date, ticker, adj_close FROM price_data WHERE trade_date BETWEEN ? AND ? "
                     f"AND ticker IN ({', '.join('?' for _ in tickers)})", [start.date(), end.date(), *tickers])
    return frame.pivot(index="trade_date", columns="ticker", values="adj_close").sort_index()


def _allocations(wh: Warehouse, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    frame = wh.query("SELECT trade_date, model, actual_allocation FROM overlay_signals "
                     "WHERE trade_date BETWEEN ? AND ?", [start.date(), end.date()])
    return frame.pivot(index="trade_date", columns="model", values="actual_allocation").sort_index()


def _portfolio_rows(p: Portfolio, anchor: pd.Timestamp, start: pd.Timestamp, end: pd.Timestamp,
                    previous_day: pd.Timestamp, stored: pd.Series, prices: pd.DataFrame, signals: pd.DataFrame,
                    rf_d: float, cost_bps: dict[str, float], run: NavRun) -> pd.DataFrame:
    sessions = nyse_sessions()
    days = sessions[(sessions >= anchor) & (sessions <= end)]
    if anchor == p.start:
        anchor_nav = p.initial_nav
    else:
        anchor_nav = _stored(stored, p, anchor, RAW)
    path = raw_nav_path(prices, days, p.schedule_from(anchor), anchor_nav, rf_d, label=p.name)
    raw = nav_frame(path.nav, p.initial_nav, None)
    if anchor == p.start:
        raw.iloc[0, raw.columns.get_loc("daily_return")] = 0.0
    raw = raw.loc[start:]
    stale = {t: [d for d in ds if d >= start.date().isoformat()] for t, ds in path.stale.items()}
    stale = {t: ds for t, ds in stale.items() if ds}
    if stale:
        run.stale[p.name] = stale
    out = [raw.assign(variant=RAW, equity_allocation=1.0, cash_allocation=0.0)]
    for variant in p.variants:
        if variant == RAW:
            continue
        out.append(_variant_rows(p, variant, raw, start, previous_day, stored, signals, rf_d,
                                 cost_bps.get(variant, 0.0)))
    frame = pd.concat(out).rename_axis("trade_date").reset_index()
    frame["portfolio_id"] = p.portfolio_id
    return frame


def _variant_rows(p: Portfolio, variant: str, raw: pd.DataFrame, start: pd.Timestamp, previous_day: pd.Timestamp,
                  stored: pd.Series, signals: pd.DataFrame, rf_d: float, cost_bps: float) -> pd.DataFrame:
    get_model(variant)
    if variant not in signals.columns:
        raise NavError(f"{p.name}: overlay_signals has no rows for model {variant!r}: materialize overlay_signals")
    days = raw.index
    sessions = nyse_sessions()
    history = sessions[(sessions >= p.start) & (sessions <= days[-1])]
    try:
        equity_all = equity_allocation_for_days(signals[variant].dropna(), history, p.start)
    except ValueError as exc:
        raise NavError(f"{p.name}: overlay_signals for {variant!r}: {exc}") from None
    equity = equity_all.loc[days].to_numpy()
    if days[0] > p.start:
        prior = float(equity_all.loc[previous_day])
        returns = variant_returns(np.r_[0.0, raw["daily_return"].to_numpy()], np.r_[prior, equity], rf_d,
                                  cost_bps)[1:]
    else:
        returns = variant_returns(raw["daily_return"].to_numpy(), equity, rf_d, cost_bps)
    if days[0] == p.start:
        returns[0] = 0.0
        base = p.initial_nav
    else:
        base = _stored(stored, p, previous_day, variant)
    nav = base * np.cumprod(1.0 + returns)
    return pd.DataFrame({"nav": nav, "daily_return": returns, "cumulative_return": nav / p.initial_nav - 1.0,
                         "variant": variant, "equity_allocation": equity, "cash_allocation": 1.0 - equity},
                        index=days)


def _stored(stored: pd.Series, p: Portfolio, day: pd.Timestamp, variant: str) -> float:
    try:
        return float(stored.loc[(p.portfolio_id, day, variant)])
    except KeyError:
        raise NavError(f"{p.name}: no stored {variant} NAV on {day.date()}; materialize portfolio_daily_nav from "
                       f"{day.date()} (or from the portfolio's start {p.start.date()}) first") from None
