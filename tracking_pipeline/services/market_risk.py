"""Per-ticker risk tables from `price_data`: rolling market betas, technical indicators and correlations.

Dagster-free glue between the warehouse and the pure functions in `tracking_pipeline.analytics`: each function
reads the history it needs, computes a whole date range in one vectorised pass over wide (sessions x tickers)
frames and returns the rows to write.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from tracking_pipeline.analytics.betas import beta_is_significant, cap_beta, rolling_market_betas, rolling_ols
from tracking_pipeline.analytics.correlations import pair_statistics
from tracking_pipeline.analytics.indicators import (
    TRADING_DAYS, atr, bollinger, ema, macd, momentum, obv, realized_volatility, rsi, simple_returns, sma,
    stochastic,
)
from tracking_pipeline.trading_calendar import sessions_before
from tracking_pipeline.services.fingerprints import Key, RefreshPlan, digest, plan_refresh, refresh_writes
from tracking_pipeline.services.nav import Portfolio
from tracking_pipeline.trading_calendar import month_ends, sessions_between
from tracking_pipeline.warehouse import Warehouse, Write

BETA_WINDOW = 90
BETA_MIN_OBS = 30
BETA_METHOD = "OLS_SIMPLE"
RETURN_HORIZONS = {"return_1m": 21, "return_3m": 63, "return_6m": 126, "return_1y": 252, "return_3y": 756,
                   "return_5y": 1260}
CORRELATION_WINDOWS = (20, 60, 252)
CORRELATIONS = "asset_correlations"
WINDOWED_LOOKBACK = TRADING_DAYS + 8
"""Sessions before a range's first day that the windowed indicators read (the longest window: 252 returns)."""


def correlation_min_obs(window: int) -> int:
    """Paired returns a correlation needs: at least 80% of the window's sessions (ceil(4 * window / 5))."""
    return (4 * window + 4) // 5


class RiskInputError(ValueError):
    """The warehouse lacks data a risk table needs (names the table and what to materialize)."""


def price_frames(wh: Warehouse, start: pd.Timestamp | None, end: pd.Timestamp,
                 tickers: Sequence[str] | None = None,
                 columns: Sequence[str] = ("adj_close",)) -> dict[str, pd.DataFrame]:
    """Wide (NYSE sessions x tickers) frames of `price_data` columns on [start, end] (start None: from the first
    stored day). A session without a price is NaN (never filled here)."""
    where, params = ["trade_date <= ?"], [end.date()]
    if start is not None:
        where.append("trade_date >= ?")
        params.append(start.date())
    if tickers is not None:
        if not tickers:
            return {c: pd.DataFrame(index=pd.DatetimeIndex([])) for c in columns}
        where.append(f"ticker IN ({', '.join('?' for _ in tickers)})")
        params.extend(tickers)
    table = wh.query_arrow(f"SELECT trade_date, ticker, {', '.join(columns)} FROM price_data "
                           f"WHERE {' AND '.join(where)}", params)
    dates = pd.DatetimeIndex(table.column("trade_date").to_numpy())
    first = start if start is not None else (dates.min() if len(dates) else end)
    days = sessions_between(first, end)
    encoded = pc.dictionary_encode(table.column("ticker").combine_chunks())  # codes without a string per row
    labels = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
    order = np.argsort(labels)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    ticker_pos, names = rank[encoded.indices.to_numpy()], labels[order]
    day_pos = days.get_indexer(dates)
    on_session = day_pos >= 0  # (key: date, ticker) rows are unique, so each cell is set at most once
    index = pd.Index(days, name="trade_date")
    out = {}
    for column in columns:
        cells = np.full((len(days), len(names)), np.nan)
        values = table.column(column).to_numpy().astype(float)  # NULL -> NaN
        cells[day_pos[on_session], ticker_pos[on_session]] = values[on_session]
        out[column] = pd.DataFrame(cells, index=index, columns=pd.Index(names, dtype=object, name="ticker"))
    return out


def compute_betas(wh: Warehouse, start: pd.Timestamp, end: pd.Timestamp, market: str,
                  window: int = BETA_WINDOW, min_obs: int = BETA_MIN_OBS) -> pd.DataFrame:
    """`position_market_betas` rows for every ticker and trading day in [start, end] (CONTRACT §4).

    Reads `window` sessions of prices before `start` so the first day's window is full, then one rolling-OLS
    pass (cumulative sums) over all tickers and days."""
    prices = price_frames(wh, sessions_before(start, window), end)["adj_close"]
    if market not in prices.columns or prices[market].loc[start:end].isna().all():
        raise RiskInputError(f"price_data has no prices for the market ticker {market!r} between {start.date()} "
                             f"and {end.date()}: materialize price_data (or set TRACKING_MARKET_TICKER)")
    returns = simple_returns(prices)
    rows = rolling_market_betas(returns, returns[market], window, min_obs)
    rows = rows[rows["calc_date"] >= start].reset_index(drop=True)
    return rows.assign(window_days=window, method=BETA_METHOD, market_index=market,
                       is_significant=beta_is_significant(rows["p_value"]))


ASSET_METRICS_BATCH = 250
"""Tickers whose indicators are computed together: the step holds some 25 indicator frames over the whole history
for a batch at a time, not for the universe (the rows do not depend on the batch)."""


def compute_asset_metrics(wh: Warehouse, start: pd.Timestamp, end: pd.Timestamp, market: str,
                          rf_d: float, batch: int = ASSET_METRICS_BATCH) -> pd.DataFrame:
    """`asset_performance_metrics` rows (one per ticker and day priced in [start, end], by day then ticker).

    Recursive indicators (EMA, RSI, MACD, ATR, OBV) depend on where the series starts, so the whole stored
    history is read every time: a partition re-run then gives exactly the values of a full backfill. The
    windowed ones (SMA, Bollinger, stochastic, 1-year volatility, beta and Sharpe) only need their window, so they
    run on the last `WINDOWED_LOOKBACK` sessions before `start` onwards (a nightly run: ~260 rows, not all).
    High and low are put on the adjusted scale (times adj_close / close) so ATR and the stochastic ignore splits.
    Every indicator is per ticker, so they are computed `batch` tickers at a time."""
    frames = price_frames(wh, None, end, columns=("adj_close", "close", "high", "low", "volume"))
    px = frames["adj_close"]
    if px.empty:
        return pd.DataFrame()
    recent = slice(max(int(px.index.searchsorted(start)) - WINDOWED_LOOKBACK, 0), None)
    market_returns = simple_returns(px[market].iloc[recent]) if market in px else \
        pd.Series(np.nan, index=px.index[recent])
    parts = [_asset_metrics({c: f.iloc[:, lo:lo + batch] for c, f in frames.items()}, start, end, recent,
                            market_returns, rf_d) for lo in range(0, px.shape[1], max(batch, 1))]
    return pd.concat(parts, ignore_index=True).sort_values("trade_date", kind="stable", ignore_index=True)


def _asset_metrics(frames: dict[str, pd.DataFrame], start: pd.Timestamp, end: pd.Timestamp, recent: slice,
                   market_returns: pd.Series, rf_d: float) -> pd.DataFrame:
    """The rows of the tickers in `frames` (wide price columns over the whole history)."""
    px = frames["adj_close"]
    factor = px / frames["close"]
    high, low = frames["high"] * factor, frames["low"] * factor
    macd_line, macd_signal, _ = macd(px)
    px_w, high_w, low_w = px.iloc[recent], high.iloc[recent], low.iloc[recent]
    returns = simple_returns(px_w)
    mid, upper, lower = bollinger(px_w, 20, 2.0)
    stoch_k, stoch_d = stochastic(high_w, low_w, px_w)
    excess = returns - rf_d
    rolling = excess.rolling(TRADING_DAYS, min_periods=TRADING_DAYS)
    sd = rolling.std(ddof=1)
    beta = rolling_ols(returns.to_numpy(float), market_returns.to_numpy(float), TRADING_DAYS, TRADING_DAYS)["beta"]
    metrics: dict[str, pd.DataFrame] = {
        "sma_20": sma(px_w, 20), "sma_50": sma(px_w, 50), "sma_200": sma(px_w, 200),
        "ema_12": ema(px, 12), "ema_26": ema(px, 26), "rsi_14": rsi(px, 14),
        "macd": macd_line, "macd_signal": macd_signal,
        "bollinger_mid": mid, "bollinger_upper": upper, "bollinger_lower": lower,
        "atr_14": atr(high, low, px, 14), "stoch_k": stoch_k, "stoch_d": stoch_d,
        "obv": obv(px, frames["volume"]).where(frames["volume"].notna()),
        **{name: momentum(px, n) for name, n in RETURN_HORIZONS.items()},
        "volatility_1y": realized_volatility(returns, TRADING_DAYS),
        "beta_1y": pd.DataFrame(cap_beta(beta), index=px_w.index, columns=px_w.columns),
        "sharpe_1y": (rolling.mean() / sd.where(sd > 0)) * math.sqrt(TRADING_DAYS),
    }
    window = px.loc[start:end]
    present = window.notna().to_numpy().ravel()
    out = {"trade_date": np.repeat(window.index.to_numpy(), window.shape[1])[present],
           "ticker": np.tile(window.columns.to_numpy(dtype=object), len(window))[present]}
    for name, frame in metrics.items():
        values = frame.loc[start:end].to_numpy(dtype=float).ravel()[present]
        out[name] = np.where(np.isfinite(values), values, np.nan)
    return pd.DataFrame(out)


def co_held_pairs(portfolios: Sequence[Portfolio], days: pd.DatetimeIndex,
                  columns: dict[str, int]) -> Iterator[tuple[pd.Timestamp, np.ndarray, np.ndarray]]:
    """(day, a, b) for each of `days`: the column positions (a, b), a < b, of every ticker pair held together
    (positive target weight) on the day by at least one portfolio, the pairs whose co-movement a book's risk
    depends on. Linear in books, not the square of the universe. A book's pairs change only at its rebalances, so
    each rebalance's pairs are built once, and a day whose in-force rebalances equal the day before's repeats its
    pairs."""
    width = max(len(columns), 1)
    entries = np.column_stack([p.entries_on(days) for p in portfolios]) if portfolios else \
        np.empty((len(days), 0), dtype=np.intp)
    codes: dict[tuple[int, int], np.ndarray] = {}

    def book_codes(book: int, entry: int) -> np.ndarray:
        if (book, entry) not in codes:
            weights = portfolios[book].schedule[entry][1]
            cols = np.unique(np.array([columns[t] for t, w in weights.items() if w > 0 and t in columns],
                                      dtype=np.intp))
            a, b = np.triu_indices(len(cols), k=1)
            codes[(book, entry)] = cols[a] * width + cols[b]
        return codes[(book, entry)]

    previous: tuple[int, ...] | None = None
    pairs = np.array([], dtype=np.intp)
    for day, row in zip(days, entries):
        state = tuple(row.tolist())
        if state != previous:
            held = [book_codes(book, entry) for book, entry in enumerate(state) if entry >= 0]
            pairs = np.unique(np.concatenate(held)) if held else np.array([], dtype=np.intp)
            previous = state
        yield day, pairs // width, pairs % width


@dataclass(frozen=True)
class CorrelationInputs:
    """What `asset_correlations` is computed from, without the prices: the books, every session from the first
    stored price to the last (`sessions`), per session the count and digest of its price rows
    (`Warehouse.day_digests`), the held tickers (`names`, the column order), and per calc date the row of
    `sessions` just after it and the set of tickers each book then holds (a positive target weight)."""

    portfolios: list[Portfolio]
    sessions: pd.DatetimeIndex
    day_rows: np.ndarray
    day_digests: np.ndarray
    names: np.ndarray
    calc_dates: dict[pd.Timestamp, tuple[int, tuple[tuple[int, tuple[str, ...]], ...]]]

    def pairs(self, days: Iterable[pd.Timestamp]) -> dict[pd.Timestamp, tuple[np.ndarray, np.ndarray]]:
        """The column positions (a, b) of the pairs held together on each of `days` (calc dates)."""
        columns = {t: i for i, t in enumerate(self.names)}
        days = pd.DatetimeIndex(sorted(days))
        return {day: (a, b) for day, a, b in co_held_pairs(self.portfolios, days, columns)}


def correlation_inputs(wh: Warehouse, portfolios: list[Portfolio]) -> CorrelationInputs | None:
    """The calc dates (each month end and the last priced day from the first portfolio start on which some book
    holds two tickers), what each book holds on them, and the per-session digests of `price_data`, from one
    grouped query: no price is read here."""
    tickers = sorted({t for p in portfolios for _, w in p.schedule for t in w})
    if not tickers:
        return None
    days = wh.day_digests("price_data", "trade_date", ["ticker", "adj_close"], "adj_close IS NOT NULL")
    if days.empty:
        return None
    stamps = pd.DatetimeIndex(days["day"])
    sessions = sessions_between(stamps[0], stamps[-1])
    rows = sessions.get_indexer(stamps)
    on_session = rows >= 0
    day_rows, day_digests = np.zeros(len(sessions), dtype=np.int64), np.zeros(len(sessions), dtype=np.uint64)
    day_rows[rows[on_session]] = days["n"].to_numpy(np.int64)[on_session]
    day_digests[rows[on_session]] = days["digest"].to_numpy().astype(np.uint64)[on_session]
    priced_days = sessions[day_rows > 0]
    candidates = month_ends(priced_days[priced_days >= min(p.start for p in portfolios)])
    entries = np.column_stack([p.entries_on(candidates) for p in portfolios])
    held_sets = [[tuple(sorted(t for t, w in weights.items() if w > 0)) for _, weights in p.schedule]
                 for p in portfolios]
    calc_dates = {}
    for day, row in zip(candidates, entries):
        held = tuple((p.portfolio_id, held_sets[book][entry])
                     for book, (p, entry) in enumerate(zip(portfolios, row.tolist())) if entry >= 0)
        if any(len(tickers_held) > 1 for _, tickers_held in held):  # some book holds a pair
            calc_dates[day] = (int(sessions.get_loc(day)) + 1, held)
    return CorrelationInputs(portfolios, sessions, day_rows, day_digests, np.asarray(tickers, dtype=object),
                             calc_dates)


CORRELATION_VERSION = "pearson-co-held-v3"
"""Part of every input fingerprint: change it when the computation changes, so every date is recomputed."""


def correlation_fingerprints(inputs: CorrelationInputs | None,
                             windows: Sequence[int] = CORRELATION_WINDOWS) -> dict[Key, str]:
    """Per calc date (part ''), a hash of everything its rows depend on: what each book holds (the pairs follow),
    the windows, and the price rows of the sessions its longest window's returns are computed from (their
    per-session digests: a restated price recomputes every date whose windows see it)."""
    if inputs is None:
        return {}
    first_price = max(windows) + 1  # a window of n returns reads n + 1 prices
    fingerprints = {}
    for day, (row, held) in inputs.calc_dates.items():
        seen = slice(max(row - first_price, 0), row)
        fingerprints[("", day)] = digest(CORRELATION_VERSION, list(windows), repr(held),
                                         inputs.day_rows[seen], inputs.day_digests[seen])
    return fingerprints


def held_returns(wh: Warehouse, inputs: CorrelationInputs, dates: Iterable[pd.Timestamp],
                 windows: Sequence[int] = CORRELATION_WINDOWS) -> tuple[int, np.ndarray]:
    """(first row, returns): the daily returns (sessions x held tickers) that the windows of `dates` read, from
    the row `first row` of `inputs.sessions` on (the prices of those sessions and the one before)."""
    rows = [inputs.calc_dates[day][0] for day in dates]
    lo, hi = max(min(rows) - max(windows) - 1, 0), max(rows)
    px = price_frames(wh, inputs.sessions[lo], inputs.sessions[hi - 1], list(inputs.names))["adj_close"]
    px = px.reindex(index=inputs.sessions[lo:hi], columns=inputs.names)
    return lo, simple_returns(px).to_numpy(float)


def correlation_rows(wh: Warehouse, inputs: CorrelationInputs | None, dates: Iterable[pd.Timestamp],
                     windows: Sequence[int] = CORRELATION_WINDOWS) -> pd.DataFrame:
    """`asset_correlations` rows of `dates` (calc dates of `inputs`; None only with no dates): every co-held pair
    and window with paired returns on at least 80% of the window's sessions. Reads the prices those windows need."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("calc_date", "window_days", "ticker_a", "ticker_b",
                                                          "correlation", "p_value", "observations")}
    dates = sorted(dates)
    if dates:
        first_row, returns = held_returns(wh, inputs, dates, windows)  # type: ignore[arg-type]
        pairs = inputs.pairs(dates)  # type: ignore[union-attr]
    for day in dates:
        row = inputs.calc_dates[day][0] - first_row  # type: ignore[union-attr]
        pair_a, pair_b = pairs[day]
        for window in windows:
            a, b, r, p, n = pair_statistics(returns[max(row - window, 0):row], correlation_min_obs(window),
                                            pair_a, pair_b)
            ok = np.isfinite(r)
            for key, value in (("ticker_a", inputs.names[a[ok]]), ("ticker_b", inputs.names[b[ok]]),
                               ("correlation", r[ok]), ("p_value", p[ok]), ("observations", n[ok]),
                               ("calc_date", np.full(int(ok.sum()), day.to_datetime64())),
                               ("window_days", np.full(int(ok.sum()), window))):
                parts[key].append(value)
    if not parts["calc_date"]:
        return pd.DataFrame({k: pd.Series(dtype=float) for k in parts})
    return pd.DataFrame({k: np.concatenate(v) for k, v in parts.items()})


def compute_correlations(wh: Warehouse, portfolios: list[Portfolio],
                         windows: Sequence[int] = CORRELATION_WINDOWS) -> pd.DataFrame:
    """`asset_correlations` rows of every calc date: on every month end and the last priced day, the pairwise
    correlations (with p-values) of the daily returns of every pair of tickers then held together by an active
    portfolio, over each window (what a full rewrite would store)."""
    inputs = correlation_inputs(wh, portfolios)
    if inputs is None:
        return pd.DataFrame()
    return correlation_rows(wh, inputs, inputs.calc_dates, windows)


CORRELATION_BATCH_DATES = 12
"""Calc dates computed and written per transaction: bounds memory (about 2.6 million rows a batch with 200 books of
30 stocks) while every batch stays whole (its rows and fingerprints in one transaction)."""


@dataclass(frozen=True)
class CorrelationRefresh:
    """One batch of a run's work: the calc dates rewritten (recomputed or gone), the new rows and the writes for
    both tables (one transaction)."""

    dates: list[dt.date]
    rows: pd.DataFrame
    writes: list[Write]


def refresh_correlations(wh: Warehouse, portfolios: list[Portfolio], windows: Sequence[int] = CORRELATION_WINDOWS,
                         batch_dates: int = CORRELATION_BATCH_DATES) -> Iterator[CorrelationRefresh]:
    """Compute only the calc dates whose inputs changed since they were stored (`services/fingerprints.py`), in
    batches of `batch_dates` dates, each to be written before the next is computed: a nightly run computes one
    date, while a restated price or changed holding in any look-back still recomputes every date whose windows see
    it. A run stopped between batches leaves the later dates with their old fingerprints, so the next run redoes
    exactly those."""
    inputs = correlation_inputs(wh, portfolios)
    current = correlation_fingerprints(inputs, windows)
    plan = plan_refresh(wh, CORRELATIONS, CORRELATIONS, "calc_date", current)
    for i in range(0, max(len(plan.todo), 1), batch_dates):
        batch = RefreshPlan(plan.asset, plan.todo[i:i + batch_dates], plan.stale if i == 0 else [])
        rows = correlation_rows(wh, inputs, [day for _, day in batch.todo], windows)
        dates = [day.date() for day in batch.dates_by_part().get("", [])]
        yield CorrelationRefresh(dates, rows, refresh_writes(batch, CORRELATIONS, "calc_date", rows, current))
