"""Portfolio risk tables: daily snapshots (CONTRACT §4, raw variant) and stress tests.

Dagster-free glue: position weights come from the raw NAV engine (`analytics.nav.raw_nav_path`, whose weights are
market value / NAV at each close) restarted at the last rebalance on or before the range, so no stored state is
needed and nothing before that rebalance is recomputed; betas, returns and NAV are read from the warehouse.
"""

from __future__ import annotations

import gc
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from tracking_pipeline.analytics.betas import rolling_ols
from tracking_pipeline.analytics.concentration import (
    DEFAULT_DRIFT_THRESHOLD, allocation_drift_frame, bounds_breaches, effective_num_positions_frame, hhi_frame,
    largest_sector_gaps, sector_exposure_records, sector_position_counts, top_k_concentration_frame, top_positions,
    unclassified_tickers,
)
from tracking_pipeline.analytics.indicators import simple_returns
from tracking_pipeline.analytics.nav import NavPath, raw_nav_path
from tracking_pipeline.analytics.stress import (
    HISTORICAL_SCENARIOS, beta_shock_scenarios, episode_rows, historical_replays_frame,
)
from tracking_pipeline.analytics.volatility import (
    har_rv_forecast_frame, realized_vol_sqrt_sum, risk_level, volatility_percentile, volatility_trend,
)
from tracking_pipeline.trading_calendar import sessions_before
from tracking_pipeline.services.fingerprints import Key, digest, digest_prefixes, plan_refresh, refresh_writes
from tracking_pipeline.services.nav import (
    PRICE_LOOKBACK_SESSIONS, RAW, Portfolio, load_active_portfolios, portfolio_error,
)
from tracking_pipeline.services.market_risk import (
    BETA_METHOD, BETA_MIN_OBS, BETA_WINDOW, RiskInputError, price_frames,
)
from tracking_pipeline.trading_calendar import nyse_sessions, sessions_between
from tracking_pipeline.warehouse import Warehouse, Write

THRESHOLD_ENV = "TRACKING_REBALANCE_THRESHOLD"
SnapshotBenchmark = Callable[[str], dict[str, float] | None]
Bounds = dict[str, tuple[float, float]]


def env_number(name: str, default: float, low: float, high: float, what: str) -> float:
    """A number setting from the environment variable `name` (default when unset), in [low, high]; a clear error
    naming the variable and `what` it must be otherwise."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be {what}, got {text!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be {what}, got {text!r}")
    return value


def rebalance_threshold() -> float:
    """The drift above which `rebalance_recommended` is set: TRACKING_REBALANCE_THRESHOLD (a weight, e.g. 0.05 for
    5 points), default 0.05."""
    return env_number(THRESHOLD_ENV, DEFAULT_DRIFT_THRESHOLD, 0.0, 1.0, "a number between 0 and 1")


@dataclass
class PortfolioRiskRun:
    """Rows for the range, the portfolio ids written and per-portfolio errors (one failure never stops others);
    for a refreshed table, the writes to apply in one transaction; `active` every active portfolio of the range's
    end when the run loaded them (its checks reuse it)."""

    rows: pd.DataFrame
    portfolio_ids: list[int] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    writes: list[Write] = field(default_factory=list)
    active: list[Portfolio] | None = None


def target_weights(p: Portfolio, days: pd.DatetimeIndex) -> pd.DataFrame:
    """The target weights in force on each of `days` (the last rebalance on or before the day), days x tickers
    (every ticker of the schedule, 0 where not targeted); only the rebalances in force on `days` are read."""
    days = pd.DatetimeIndex(days)
    columns = list(dict.fromkeys(t for _, w in p.schedule for t in w))
    dates = np.array([d.to_datetime64() for d, _ in p.schedule], dtype="datetime64[ns]")
    order = np.argsort(dates, kind="stable")
    entry = dates[order].searchsorted(days.to_numpy("datetime64[ns]"), side="right") - 1
    out = np.zeros((len(days), len(columns)))
    for k in np.unique(entry[entry >= 0]):
        weights = p.schedule[order[k]][1]
        row = np.array([weights.get(t, np.nan) for t in columns], dtype=float)
        out[entry == k] = np.where(np.isnan(row), 0.0, row)
    return pd.DataFrame(out, index=days, columns=columns)


@dataclass
class NavPaths:
    """The raw NAV engine's paths of each portfolio restarted at its anchor (NAV 1 there), the price frame they
    were computed from (sessions x tickers, not carried forward) and per-portfolio errors."""

    paths: dict[int, NavPath]
    prices: pd.DataFrame
    errors: dict[str, str]


def nav_paths(wh: Warehouse, portfolios: list[Portfolio], start: pd.Timestamp, end: pd.Timestamp,
              rf_d: float) -> NavPaths:
    """The engine's path of each portfolio from the last rebalance on or before `start` (or its start) to `end`,
    with stale prices carried forward as in the NAV. Weights do not depend on the NAV level, so it restarts with
    NAV 1. Only the rebalances up to `end` are followed, so the paths carry the tickers held in the range, not
    every ticker of the book's life."""
    if not portfolios:
        return NavPaths({}, pd.DataFrame(), {})
    anchors = {p.portfolio_id: p.start if p.start >= start else max(d for d, _ in p.schedule if d <= start)
               for p in portfolios}
    schedules = {p.portfolio_id: p.schedule_from(anchors[p.portfolio_id], until=end) for p in portfolios}
    tickers = sorted({t for schedule in schedules.values() for _, w in schedule for t in w})
    prices = price_frames(wh, sessions_before(min(anchors.values()), PRICE_LOOKBACK_SESSIONS), end,
                          tickers)["adj_close"]
    sessions = nyse_sessions()
    out = NavPaths({}, prices, {})
    for p in portfolios:
        anchor = anchors[p.portfolio_id]
        days = sessions[(sessions >= anchor) & (sessions <= end)]
        try:
            out.paths[p.portfolio_id] = raw_nav_path(prices, days, schedules[p.portfolio_id], 1.0, rf_d,
                                                     label=p.name)
        except Exception as exc:  # noqa: BLE001 - one portfolio's failure must not stop the others
            out.errors[p.name] = portfolio_error(p.name, exc)
    return out


def weight_paths(wh: Warehouse, portfolios: list[Portfolio], start: pd.Timestamp, end: pd.Timestamp,
                 rf_d: float) -> tuple[dict[int, pd.DataFrame], dict[str, str]]:
    """Close-of-day position weights (market value / NAV, after any rebalance that day) of each portfolio on
    the sessions of [max(start, portfolio start), end] (see `nav_paths`)."""
    run = nav_paths(wh, portfolios, start, end, rf_d)
    starts = {p.portfolio_id: p.start for p in portfolios}
    return {pid: path.weights.loc[max(start, starts[pid]):] for pid, path in run.paths.items()}, run.errors


def _raw_returns(wh: Warehouse, portfolios: list[Portfolio], end: pd.Timestamp) -> pd.DataFrame:
    ids = [p.portfolio_id for p in portfolios]
    frame = wh.query(f"SELECT portfolio_id, trade_date, daily_return FROM portfolio_daily_nav WHERE variant = ? "
                     f"AND trade_date <= ? AND portfolio_id IN ({', '.join('?' for _ in ids)})",
                     [RAW, end.date(), *ids])
    frame["portfolio_id"] = frame["portfolio_id"].astype("int64")
    return frame.pivot(index="trade_date", columns="portfolio_id", values="daily_return").astype(float)


def _beta_frames(wh: Warehouse, tickers: list[str], start: pd.Timestamp, end: pd.Timestamp,
                 market: str) -> dict[str, pd.DataFrame]:
    frame = wh.query(f"SELECT calc_date, ticker, beta, r_squared, observations FROM position_market_betas "
                     f"WHERE calc_date BETWEEN ? AND ? AND window_days = ? AND method = ? AND market_index = ? "
                     f"AND ticker IN ({', '.join('?' for _ in tickers)})",
                     [start.date(), end.date(), BETA_WINDOW, BETA_METHOD, market, *tickers])
    return {c: frame.pivot(index="calc_date", columns="ticker", values=c).astype(float)
            for c in ("beta", "r_squared", "observations")}


def _require_betas(wh: Warehouse, market_returns: pd.Series, start: pd.Timestamp, end: pd.Timestamp,
                   market: str) -> None:
    """Fail clearly when position_market_betas was not materialized for days that must have a market row."""
    counts = market_returns.notna().astype(float).rolling(BETA_WINDOW, min_periods=1).sum()
    expected = counts.loc[start:end][counts.loc[start:end] >= BETA_MIN_OBS].index
    have = wh.query("SELECT calc_date FROM position_market_betas WHERE ticker = ? AND calc_date BETWEEN ? AND ? "
                    "AND window_days = ? AND method = ? AND market_index = ?",
                    [market, start.date(), end.date(), BETA_WINDOW, BETA_METHOD, market])["calc_date"]
    missing = expected.difference(pd.DatetimeIndex(have))
    if len(missing):
        raise RiskInputError(f"position_market_betas has no {market} rows on {len(missing)} trading day(s), first "
                             f"{missing[0].date()}: materialize position_market_betas for the range first")


SNAPSHOT_BATCH = 25
"""Books whose weight paths (days x tickers each) are held at once while snapshots are computed, so the paths do
not grow with the number of books (the range's rows still do); every book's rows are computed on their own,
whatever the batch."""


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while books build their rows, back as it was afterwards: the JSON
    columns are millions of small acyclic dicts and lists that reference counting frees, and each full collection
    walks all of them (a third of a 1,000-day chunk's snapshot time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def compute_snapshots(wh: Warehouse, start: pd.Timestamp, end: pd.Timestamp, market: str, rf_d: float,
                      sectors: dict[str, str], benchmark_weights: SnapshotBenchmark,
                      threshold: float = DEFAULT_DRIFT_THRESHOLD, batch: int = SNAPSHOT_BATCH) -> PortfolioRiskRun:
    """`portfolio_snapshots` rows of every active portfolio for the trading days of [start, end], `batch` books
    at a time."""
    portfolios = load_active_portfolios(wh, end)
    run = PortfolioRiskRun(rows=pd.DataFrame(), active=portfolios)
    if not portfolios:
        return run
    first = min(p.start for p in portfolios)
    market_px = price_frames(wh, sessions_before(first, 1), end, [market])["adj_close"]
    if market not in market_px.columns:
        raise RiskInputError(f"price_data has no prices for the market ticker {market!r}: materialize price_data")
    market_returns = simple_returns(market_px[market])
    _require_betas(wh, market_returns, start, end, market)
    returns = _raw_returns(wh, portfolios, end)
    definitions = wh.query("SELECT portfolio_id, benchmark, config FROM portfolio_definitions")
    benchmarks = dict(zip(definitions["portfolio_id"].astype("int64"), definitions["benchmark"]))
    bounds = {int(pid): config_bounds(config) for pid, config in zip(definitions["portfolio_id"],
                                                                       definitions["config"])}
    frames = []
    for i in range(0, len(portfolios), batch):
        books = portfolios[i:i + batch]
        paths, errors = weight_paths(wh, books, start, end, rf_d)
        run.errors.update(errors)
        tickers = sorted({t for w in paths.values() for t in w.columns})
        betas = _beta_frames(wh, tickers, start, end, market) if tickers else {}
        with collector_paused():
            for p in books:
                if p.portfolio_id not in paths:
                    continue
                try:
                    bench = benchmark_weights(benchmarks.get(p.portfolio_id) or market)
                    frames.append(_snapshot_rows(p, paths[p.portfolio_id], returns, market_returns, betas, sectors,
                                                 bench, threshold, start, end, bounds.get(p.portfolio_id)))
                    run.portfolio_ids.append(p.portfolio_id)
                except Exception as exc:  # noqa: BLE001 - one portfolio's failure must not stop the others
                    run.errors[p.name] = portfolio_error(p.name, exc)
    run.rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return run


def config_bounds(config: object) -> Bounds | None:
    """The allocation bounds `{ticker: (min, max)}` of a stored portfolio config (JSON text or a mapping; validated
    when the file was read, lake/portfolios.py), None when the file gives none."""
    parsed = json.loads(config) if isinstance(config, str) else (config or {})
    given = parsed.get("bounds") if isinstance(parsed, dict) else None
    if not given:
        return None
    return {str(ticker): (float(lo), float(hi)) for ticker, (lo, hi) in given.items()}


def _snapshot_rows(p: Portfolio, weights: pd.DataFrame, returns: pd.DataFrame, market_returns: pd.Series,
                   betas: dict[str, pd.DataFrame], sectors: dict[str, str], bench: dict[str, float] | None,
                   threshold: float, start: pd.Timestamp, end: pd.Timestamp,
                   bounds: Bounds | None = None) -> pd.DataFrame:
    days = sessions_between(max(start, p.start), end)
    history = sessions_between(p.start, end)
    if p.portfolio_id not in returns.columns:
        raise RiskInputError(f"{p.name}: portfolio_daily_nav has no raw rows: materialize portfolio_daily_nav")
    r = returns[p.portfolio_id].reindex(history)
    missing = r.loc[days].isna()
    if missing.any():
        raise RiskInputError(f"{p.name}: portfolio_daily_nav has no raw NAV on {int(missing.sum())} day(s), first "
                             f"{missing.index[missing.to_numpy()][0].date()}: materialize portfolio_daily_nav first")
    r.iloc[0] = np.nan  # the start row's 0 is not a return
    w = weights.reindex(days).fillna(0.0)
    held = w.to_numpy() > 0

    if betas and betas["beta"].size:  # the position_market_betas columns on (days x held tickers), NaN elsewhere
        rows, columns = betas["beta"].index.get_indexer(days), betas["beta"].columns.get_indexer(w.columns)
        inside = held & (rows >= 0)[:, None] & (columns >= 0)[None, :]
        beta, r2, obs = (np.where(inside, betas[name].to_numpy(float)[rows[:, None], columns[None, :]], np.nan)
                         for name in ("beta", "r_squared", "observations"))
    else:
        beta = r2 = obs = np.full(w.shape, np.nan)
    complete = ~(held & np.isnan(beta)).any(axis=1)  # every held position has a beta
    wv = w.to_numpy()
    fewest = np.min(np.where(held & ~np.isnan(obs), obs, np.inf), axis=1)  # inf: no held position has a count
    obs_min = np.where(np.isfinite(fewest), fewest, np.nan)
    direct = rolling_ols(r.to_numpy(float), market_returns.reindex(history).to_numpy(float), BETA_WINDOW,
                         BETA_MIN_OBS)["beta"]
    rets = r.iloc[1:]
    rv21 = realized_vol_sqrt_sum(rets, 21)
    rv63 = realized_vol_sqrt_sum(rets, 63)
    drift = allocation_drift_frame(w, target_weights(p, days))
    hhi = hhi_frame(w)
    har = har_rv_forecast_frame(rets).reindex(days)
    gaps = largest_sector_gaps(w, sectors, bench)
    top_10 = top_positions(w, 10)
    return pd.DataFrame({
        "portfolio_id": p.portfolio_id,
        "snapshot_date": days,
        "market_beta_weighted": np.where(complete, np.nansum(wv * beta, axis=1), np.nan),
        "market_beta_r_squared": np.where(complete, np.nansum(wv * r2, axis=1), np.nan),
        "market_beta_observations": pd.array(np.where(complete, obs_min, np.nan), dtype="Int64"),
        "market_beta_direct": pd.Series(direct, index=history).reindex(days).to_numpy(),
        "sector_exposure": sector_exposure_records(w, sectors, bench),
        "hhi": hhi.to_numpy(),
        "effective_num_positions": effective_num_positions_frame(w).to_numpy(),
        "top_3_concentration": top_k_concentration_frame(w, 3).to_numpy(),
        "top_10_concentration": top_k_concentration_frame(w, 10).to_numpy(),
        "realized_volatility_21d": rv21.reindex(days).to_numpy(),
        "realized_volatility_63d": rv63.reindex(days).to_numpy(),
        "expected_volatility_21d": har["expected_volatility"].to_numpy(),
        "volatility_trend": volatility_trend(rv21, rv63).reindex(days).to_numpy(),
        "volatility_percentile": volatility_percentile(rv21).reindex(days).to_numpy(),
        "max_allocation_drift": drift["max_allocation_drift"].to_numpy(),
        "max_drift_ticker": drift["max_drift_ticker"].to_numpy(),
        "rebalance_recommended": (drift["max_allocation_drift"] > threshold).to_numpy(),
        "expected_volatility_filtered": har["filtered"].to_numpy(),
        "risk_level": risk_level(rv63).reindex(days).to_numpy(),
        "sector_positions": sector_position_counts(w, sectors),
        **{column: gaps[column].to_numpy() for column in gaps.columns},
        "unclassified_tickers": unclassified_tickers(w, sectors),
        "top_3_positions": [positions[:3] for positions in top_10],  # the first three of the ten largest
        "top_10_positions": top_10,
        "bounds_breaches": bounds_breaches(w, bounds) if bounds else [None] * len(days),
    })


STRESS_DAYS_SQL = (
    "SELECT s.portfolio_id, s.snapshot_date, s.market_beta_weighted, n.nav FROM ("
    "SELECT portfolio_id, snapshot_date, market_beta_weighted, ROW_NUMBER() OVER (PARTITION BY portfolio_id, "
    "EXTRACT(YEAR FROM snapshot_date), EXTRACT(MONTH FROM snapshot_date) ORDER BY snapshot_date DESC) AS k "
    "FROM portfolio_snapshots) s LEFT JOIN portfolio_daily_nav n ON n.portfolio_id = s.portfolio_id "
    "AND n.trade_date = s.snapshot_date AND n.variant = ? WHERE s.k = 1 ORDER BY s.portfolio_id, s.snapshot_date")
"""The stress dates of every portfolio (the last snapshot date of each month, so the latest one too) with the
day's weighted beta and raw NAV: the database picks them, so no run reads the daily snapshot and NAV history."""


STRESS_TESTS = "portfolio_stress_tests"
STRESS_VERSION = "beta-shocks-and-replays-v2"
"""Part of every stress input fingerprint: change it when the computation changes, so every date is recomputed."""


@dataclass(frozen=True, eq=False)
class _Segment:
    """The weights in force from a rebalance (`anchor`) on: what a stress date's weights are computed from (the
    engine restarted there with NAV 1, on the prices from row `first_row` of the price frame), and the fingerprint
    parts (`held` tickers, their price-frame `columns`, -1 when never priced; `hashed`: the anchor and target)."""

    anchor: pd.Timestamp
    target: dict[str, float]
    held: list[str]
    columns: np.ndarray
    first_row: int
    hashed: str


def _segments(p: Portfolio, days: pd.DatetimeIndex, sessions: pd.DatetimeIndex,
              column: dict[str, int]) -> list[_Segment]:
    """The segment of each of `days`: its last rebalance on or before the day (the start at the earliest)."""
    rebalances = np.sort(np.array([d.to_datetime64() for d, _ in p.schedule], dtype="datetime64[ns]"))
    last = rebalances.searchsorted(days.to_numpy("datetime64[ns]"), side="right") - 1
    start = p.start.to_datetime64()
    stamps = np.where(last >= 0, np.maximum(rebalances[np.maximum(last, 0)], start), start) if len(rebalances) \
        else np.full(len(days), start)
    anchors, of_day = np.unique(stamps.astype("datetime64[ns]"), return_inverse=True)
    entries = p.entries_on(pd.DatetimeIndex(anchors))  # the weights in force at each anchor (`weights_on`)
    first_rows = np.maximum(sessions.to_numpy("datetime64[ns]").searchsorted(anchors) - PRICE_LOOKBACK_SESSIONS, 0)
    out = []
    for anchor, entry, first_row in zip(pd.DatetimeIndex(anchors), entries, first_rows):
        target = p.schedule[entry][1] if entry >= 0 else {}
        names = sorted(target)
        weights = np.array([target[t] for t in names], dtype=float)
        held = [t for t, w in zip(names, weights) if w > 0]
        out.append(_Segment(anchor, target, held, np.array([column.get(t, -1) for t in held], dtype=np.intp),
                            int(first_row), digest(str(anchor.date()), "|".join(names), weights)))
    return [out[i] for i in of_day]


class _Episode(NamedTuple):
    """A historical replay as its fingerprints see it: its last day (a date's replays are those over by then),
    its first and last day's prices (every column of the price frame, -1: never priced) and its name and days."""

    end: np.datetime64
    prices: np.ndarray
    label: str


def _stress_fingerprints(part: str, days: pd.DatetimeIndex, segments: list[_Segment], beta: np.ndarray,
                         nav: np.ndarray, values: np.ndarray, episodes: list[_Episode], sessions: pd.DatetimeIndex,
                         market: str, market_column: int, rf_d: float) -> dict[Key, str]:
    """The input fingerprint of each of one portfolio's stress `days`: its segment's rebalance (anchor and
    target), the held tickers' prices from `PRICE_LOOKBACK_SESSIONS` before that rebalance to the day, theirs
    and the market's on the first and last day of every episode over by the day, the risk-free rate, and the
    day's beta and raw NAV. The dates of a segment (with the same episodes over) share the hashing of all but
    their own rows (`digest_prefixes`)."""
    rows_of = sessions.searchsorted(days)
    ends = np.array([e.end for e in episodes], dtype="datetime64[ns]")
    over = ends[None, :] <= days.to_numpy("datetime64[ns]")[:, None]
    groups: dict[tuple[_Segment, tuple[bool, ...]], list[int]] = {}
    for i, (seg, seen) in enumerate(zip(segments, over.tolist())):
        groups.setdefault((seg, tuple(seen)), []).append(i)
    out: dict[Key, str] = {}
    for (seg, seen), at in groups.items():
        cols = np.append(seg.columns, market_column)
        replayed = [e for e, done in zip(episodes, seen) if done]
        head = [STRESS_VERSION, "|".join([*seg.held, market]), *[e.label for e in replayed],
                np.concatenate([e.prices[:, cols] for e in replayed]) if replayed else np.empty((0, len(cols))),
                seg.hashed]
        block = values[seg.first_row:rows_of[at[-1]] + 1][:, seg.columns]
        hashed = digest_prefixes(head, block, [rows_of[i] + 1 - seg.first_row for i in at],
                                 [(rf_d, beta[i], nav[i]) for i in at])
        out.update({(part, days[i]): h for i, h in zip(at, hashed)})
    return out


def _segment_weights(prices: pd.DataFrame, p: Portfolio, segment: _Segment, days: pd.DatetimeIndex,
                     rf_d: float) -> pd.DataFrame:
    """Close-of-day weights on `days` (all in `segment`): the raw NAV engine restarted at the segment's rebalance
    (weights do not depend on the NAV level), on the prices from `PRICE_LOOKBACK_SESSIONS` before it (stale
    prices carried forward as in the NAV) to the last of `days`."""
    last = int(prices.index.searchsorted(days[-1]))
    window = prices.iloc[segment.first_row:last + 1]
    sessions = window.index[window.index >= segment.anchor]
    path = raw_nav_path(window, sessions, [(segment.anchor, segment.target)], 1.0, rf_d, label=p.name)
    return path.weights.reindex(days)


def compute_stress_tests(wh: Warehouse, market: str, rf_d: float) -> PortfolioRiskRun:
    """`portfolio_stress_tests` rows for every active portfolio on every month end and its latest snapshot date,
    computed only where the inputs changed since they were stored (`services/fingerprints.py`); `run.writes` holds
    the table and fingerprint writes for one transaction.

    Market shocks scale the stored `market_beta_weighted` (expected_return = beta * shock); historical replays
    hold the day's weights through each named episode already over by that day (no look-ahead), with
    market_shock the market ticker's return over the episode. expected_pnl = raw NAV of the day * return. A day's
    weights depend only on its last rebalance and the prices since, so a date's fingerprint covers that rebalance,
    those prices, its beta and NAV and the held tickers' and market's episode prices, and weights are computed
    only for the dates to (re)write: a nightly run builds one short segment per book, not 20 years of paths."""
    stress_days = wh.query(STRESS_DAYS_SQL, [RAW])
    run = PortfolioRiskRun(rows=pd.DataFrame())
    if stress_days.empty:
        return run
    ids = stress_days["portfolio_id"].to_numpy("int64")
    end = pd.Timestamp(stress_days["snapshot_date"].max())
    bounds = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1], True])
    by_portfolio = {int(ids[a]): stress_days.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:])}
    portfolios = [p for p in load_active_portfolios(wh, end) if p.portfolio_id in by_portfolio]
    if not portfolios:
        return run
    tickers = sorted({t for p in portfolios for _, w in p.schedule for t, x in w.items() if x > 0} | {market})
    prices = price_frames(wh, None, end, tickers)["adj_close"]
    column = {t: j for j, t in enumerate(prices.columns)}
    values = np.column_stack([prices.to_numpy(float), np.full(len(prices), np.nan)])  # column -1: never priced
    market_column = column.get(market, -1)
    stamps = prices.index.to_numpy("datetime64[ns]")
    episodes = [_Episode(np.datetime64(sc.end, "ns"), values[rows],
                         f"{name}: {', '.join(str(day)[:10] for day in stamps[rows])}")
                for name, sc in HISTORICAL_SCENARIOS.items() for rows in [episode_rows(prices.index, {name: sc})]]
    inputs, current = {}, {}
    for p in portfolios:
        mine = by_portfolio[p.portfolio_id]
        days = pd.DatetimeIndex(mine["snapshot_date"])
        beta = mine["market_beta_weighted"].to_numpy(float)
        nav = mine["nav"].to_numpy(float)
        segments = _segments(p, days, prices.index, column)
        current.update(_stress_fingerprints(str(p.portfolio_id), days, segments, beta, nav, values, episodes,
                                            prices.index, market, market_column, rf_d))
        inputs[p.portfolio_id] = (p, days, beta, nav, segments)
    plan = plan_refresh(wh, STRESS_TESTS, STRESS_TESTS, "snapshot_date", current, part_column="portfolio_id",
                        parts=[str(i) for i in inputs])
    todo = set(plan.todo)
    frames = []
    for portfolio_id, (p, days, beta, nav, segments) in inputs.items():
        keep = np.array([(str(portfolio_id), day) in todo for day in days], dtype=bool)
        by_segment: dict[_Segment, list[pd.Timestamp]] = {}
        for day, seg in zip(days[keep], [s for s, k in zip(segments, keep) if k]):
            by_segment.setdefault(seg, []).append(day)
        try:
            weights = [_segment_weights(prices, p, seg, pd.DatetimeIndex(seg_days), rf_d)
                       for seg, seg_days in by_segment.items()]
        except Exception as exc:  # noqa: BLE001 - one portfolio's failure must not stop the others
            run.errors[p.name] = portfolio_error(p.name, exc)
            continue
        run.portfolio_ids.append(portfolio_id)
        if weights:
            frames.extend(_stress_frames(portfolio_id, days[keep], beta[keep], nav[keep],
                                         pd.concat(weights).fillna(0.0), prices, market))
    if run.errors:  # a failed book keeps its stored rows and fingerprints
        current = {key: value for key, value in current.items() if int(key[0]) in run.portfolio_ids}
        plan = plan_refresh(wh, STRESS_TESTS, STRESS_TESTS, "snapshot_date", current, part_column="portfolio_id",
                            parts=[str(i) for i in run.portfolio_ids])
    if frames:
        rows = pd.concat(frames, ignore_index=True)
        rows["expected_pnl"] = rows.pop("nav") * rows["expected_return"]
        run.rows = rows.sort_values(["portfolio_id", "snapshot_date", "scenario"], ignore_index=True)
    run.writes = refresh_writes(plan, STRESS_TESTS, "snapshot_date", run.rows, current, part_column="portfolio_id")
    return run


def _stress_frames(portfolio_id: int, days: pd.DatetimeIndex, beta: np.ndarray, nav: np.ndarray,
                   weights: pd.DataFrame, prices: pd.DataFrame, market: str) -> list[pd.DataFrame]:
    """One portfolio's beta-shock and replay rows on `days` (with the day's raw NAV in `nav`)."""
    shocks = beta_shock_scenarios(1.0, 1.0)
    shock = shocks["market_shock"].to_numpy()
    replays = historical_replays_frame(weights, prices, market_ticker=market)
    return [
        pd.DataFrame({
            "snapshot_date": np.repeat(days, len(shock)), "scenario": np.tile(shocks["scenario"], len(days)),
            "market_shock": np.tile(shock, len(days)), "expected_return": np.outer(beta, shock).ravel(),
            "nav": np.repeat(nav, len(shock)), "portfolio_id": portfolio_id}),
        pd.DataFrame({
            "snapshot_date": replays["date"], "scenario": replays["scenario"],
            "market_shock": replays["market_return"], "expected_return": replays["portfolio_return"],
            "nav": pd.Series(nav, index=days).reindex(replays["date"]).to_numpy(), "portfolio_id": portfolio_id}),
    ]
