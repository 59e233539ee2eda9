"""`rebalancing_events` for a range of trading days (seed 002; the event rules are in analytics/rebalancing.py).

Weights come from the raw NAV engine restarted at the last rebalance on or before the session before the range
(`portfolio_risk.nav_paths`: no stored state), so the drift of that session is known and a crossing on the
range's first day is seen; the NAV level of each event is the raw `nav` stored in `portfolio_daily_nav`, prices
are the engine's (stale ones carried forward as in the NAV). The threshold is `TRACKING_REBALANCE_THRESHOLD`
(as `rebalance_recommended` in the snapshots), the cost `TRACKING_REBALANCE_COST_BPS`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tracking_pipeline.analytics.concentration import allocation_drift_frame
from tracking_pipeline.analytics.nav import NavPath, carry_forward
from tracking_pipeline.analytics.rebalancing import (
    DEFAULT_COST_BPS, INITIAL, SCHEDULED, THRESHOLD, event_rows, threshold_crossings,
)
from tracking_pipeline.services.nav import RAW, Portfolio, load_active_portfolios, portfolio_error
from tracking_pipeline.services.portfolio_risk import PortfolioRiskRun, env_number, nav_paths, target_weights
from tracking_pipeline.trading_calendar import nyse_sessions, sessions_before
from tracking_pipeline.warehouse import Warehouse, Write

TABLE = "rebalancing_events"
COST_ENV = "TRACKING_REBALANCE_COST_BPS"


def rebalance_cost_bps() -> float:
    """The estimated trading cost in basis points of the traded value: TRACKING_REBALANCE_COST_BPS (a number
    >= 0), default 10."""
    return env_number(COST_ENV, DEFAULT_COST_BPS, 0.0, 10_000.0, "a number of basis points between 0 and 10000")


def compute_rebalancing_events(wh: Warehouse, start: pd.Timestamp, end: pd.Timestamp, rf_d: float,
                               threshold: float, cost_bps: float) -> PortfolioRiskRun:
    """Event rows of every active portfolio dated in [start, end]; `run.writes` replaces exactly those dates of the
    portfolios computed."""
    portfolios = load_active_portfolios(wh, end)
    run = PortfolioRiskRun(rows=pd.DataFrame(), active=portfolios)
    if not portfolios:
        return run
    before = sessions_before(start, 1)
    engine = nav_paths(wh, portfolios, before, end, rf_d)
    run.errors = dict(engine.errors)
    navs = _raw_navs(wh, [p.portfolio_id for p in portfolios], start, end)
    frames = []
    for p in portfolios:
        path = engine.paths.get(p.portfolio_id)
        if path is None:
            continue
        try:
            frames.append(_portfolio_events(p, path, engine.prices, navs, start, end, threshold, cost_bps))
            run.portfolio_ids.append(p.portfolio_id)
        except Exception as exc:  # noqa: BLE001 - one portfolio's failure must not stop the others
            run.errors[p.name] = portfolio_error(p.name, exc)
    run.rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    run.writes = [Write(TABLE, run.rows, {"event_date": (start.date(), end.date()), "portfolio_id": run.portfolio_ids})]
    return run


def _raw_navs(wh: Warehouse, ids: list[int], start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Stored raw NAV (days x portfolio_id) on [start, end]."""
    frame = wh.query(f"SELECT portfolio_id, trade_date, nav FROM portfolio_daily_nav WHERE variant = ? AND trade_date "
                     f"BETWEEN ? AND ? AND portfolio_id IN ({', '.join('?' for _ in ids)})",
                     [RAW, start.date(), end.date(), *ids])
    frame["portfolio_id"] = frame["portfolio_id"].astype("int64")
    return frame.pivot(index="trade_date", columns="portfolio_id", values="nav").astype(float)


def _portfolio_events(p: Portfolio, path: NavPath, prices: pd.DataFrame, navs: pd.DataFrame, start: pd.Timestamp,
                      end: pd.Timestamp, threshold: float, cost_bps: float) -> pd.DataFrame:
    """One portfolio's events in [start, end] from its engine path (which starts on or before the session before
    `start`)."""
    weights = path.weights
    days = weights.index
    in_range = (days >= max(start, p.start)) & (days <= end)
    if not in_range.any():
        return pd.DataFrame()
    if p.portfolio_id not in navs.columns or navs[p.portfolio_id].reindex(days[in_range]).isna().any():
        raise ValueError(f"{p.name}: portfolio_daily_nav has no raw NAV on a day of {start.date()}..{end.date()}: "
                         "materialize portfolio_daily_nav first")
    targets = target_weights(p, days)
    initial = days == p.start
    scheduled = days.isin([d for d, _ in p.schedule if d > p.start])
    drift = allocation_drift_frame(weights, targets)["max_allocation_drift"]
    crossed = threshold_crossings(drift, threshold).to_numpy() & ~scheduled & ~initial
    kinds = np.select([initial, scheduled, crossed], [INITIAL, SCHEDULED, THRESHOLD], "")
    events = []
    on_event = in_range & (kinds != "")
    for day, kind in zip(days[on_event], kinds[on_event]):
        if kind == INITIAL:
            events.append((day, kind, pd.Series(dtype=float), weights.loc[day]))
        elif kind == SCHEDULED:
            events.append((day, kind, path.pre_weights.loc[day], weights.loc[day]))
        elif kind == THRESHOLD:
            events.append((day, kind, weights.loc[day], targets.loc[day]))
    if not events:
        return pd.DataFrame()
    sessions = nyse_sessions()
    filled, _ = carry_forward(prices.reindex(columns=weights.columns), sessions[(sessions >= days[0])
                                                                                 & (sessions <= end)])
    rows = event_rows(events, navs[p.portfolio_id], filled, cost_bps)
    return rows.assign(portfolio_id=p.portfolio_id)
