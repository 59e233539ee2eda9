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
    TRADING_DAYS, EwmState, true_range, bollinger, ewm_from, momentum, obv_from, realized_volatility,
    rsi_from_averages, simple_returns, sma, stochastic,
)
from tracking_pipeline.services.fingerprints import Key, RefreshPlan, digest, plan_refresh, refresh_writes
from tracking_pipeline.services.nav import Portfolio
from tracking_pipeline.trading_calendar import (
    month_ends, nyse_sessions, previous_session, sessions_before, sessions_between,
)
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
"""Tickers whose indicators are computed together: the step holds some 25 indicator frames over the range it
reads for a batch at a time, not for the universe (the rows do not depend on the batch)."""

INDICATOR_STATE = "asset_indicator_state"
EWM_PARAMS: dict[str, tuple[dict[str, float], int]] = {
    "ema_12": ({"span": 12}, 0), "ema_26": ({"span": 26}, 0), "macd_signal": ({"span": 9}, 0),
    "atr_14": ({"alpha": 1.0 / 14}, 14), "rsi_gain": ({"alpha": 1.0 / 14}, 14), "rsi_loss": ({"alpha": 1.0 / 14}, 14),
}
"""pandas `ewm` arguments and min_periods of each recursive average (those of `ema`, `macd`, `atr`, `rsi`)."""
PRICE_LOOKBACK = max(max(RETURN_HORIZONS.values()), WINDOWED_LOOKBACK)


@dataclass(frozen=True)
class AssetMetrics:
    """`asset_performance_metrics` rows of a range, and the recursive indicators' state after its last day
    (`asset_indicator_state` rows, as_of that day): what the next day continues from."""

    rows: pd.DataFrame
    state: pd.DataFrame

    def writes(self, start: pd.Timestamp, end: pd.Timestamp) -> tuple[Write, Write]:
        """The range's rows, and its state in place of any state kept for a day inside the range."""
        scope = (start.date(), end.date())
        return (Write("asset_performance_metrics", self.rows, {"trade_date": scope}),
                Write(INDICATOR_STATE, self.state, {"as_of": scope}))


def compute_asset_metrics(wh: Warehouse, start: pd.Timestamp, end: pd.Timestamp, market: str,
                          rf_d: float, batch: int = ASSET_METRICS_BATCH) -> AssetMetrics:
    """`asset_performance_metrics` rows (one per ticker and day priced in [start, end], by day then ticker).

    Recursive indicators (EMA, RSI, MACD, ATR, OBV) depend on where the series starts. When
    `asset_indicator_state` holds their state after the session before `start` and it agrees with the stored
    prices (`_continuable`), they continue from it and only the last `PRICE_LOOKBACK` sessions are read (the
    5-year return's look-back); else the whole stored history is read. Either way the rows equal, bit for bit,
    those of one run from the first stored price. The windowed indicators (SMA, Bollinger, stochastic, 1-year
    volatility, beta and Sharpe) run on the last `WINDOWED_LOOKBACK` sessions before `start` onwards. High and low
    are put on the adjusted scale (times adj_close / close) so ATR and the stochastic ignore splits. Every indicator
    is per ticker, so they are computed `batch` tickers at a time."""
    columns = ("adj_close", "close", "high", "low", "volume")
    before = previous_session(start) if start > nyse_sessions()[0] else None
    state = read_indicator_state(wh, before)
    frames = price_frames(wh, sessions_before(start, PRICE_LOOKBACK) if len(state) else None, end, columns=columns)
    if len(state):
        frames = _continuable(wh, frames, state, start, end, before, columns)
        if frames is None:
            state = state.iloc[:0]
            frames = price_frames(wh, None, end, columns=columns)
    tickers = frames["adj_close"].columns.union(state.index)
    frames = {c: f.reindex(columns=tickers) for c, f in frames.items()}
    px = frames["adj_close"]
    if px.empty:
        return AssetMetrics(pd.DataFrame(), _state_rows({n: EwmState.empty(0) for n in EWM_PARAMS}, np.zeros(0),
                                                        px.columns, end))
    aligned = state.reindex(tickers)
    states = {name: _ewm_state(aligned, name) for name in EWM_PARAMS}
    totals = aligned["obv"].fillna(0.0).to_numpy(float)
    after = int(px.index.searchsorted(before, side="right")) - 1 if len(state) else -1
    seeds = [st.seen[(st.count > 0) & (st.seen >= px.index[0].to_datetime64())] for st in states.values()]
    first = min([after, *(int(px.index.searchsorted(s.min())) for s in seeds if len(s))]) if after >= 0 else 0
    recent = slice(max(int(px.index.searchsorted(start)) - WINDOWED_LOOKBACK, 0), None)
    market_returns = simple_returns(px[market].iloc[recent]) if market in px else \
        pd.Series(np.nan, index=px.index[recent])
    parts = []
    for lo in range(0, px.shape[1], max(batch, 1)):
        cut = slice(lo, lo + batch)
        parts.append(_asset_metrics({c: f.iloc[:, cut] for c, f in frames.items()},
                                    {n: _slice_state(st, cut) for n, st in states.items()}, totals[cut], first,
                                    after, start, end, recent, market_returns, rf_d))
    rows = pd.concat([rows for rows, _, _ in parts], ignore_index=True)
    merged = {name: EwmState(*(np.concatenate([getattr(st[name], f) for _, st, _ in parts])
                               for f in ("value", "seen", "count"))) for name in EWM_PARAMS}
    return AssetMetrics(rows.sort_values("trade_date", kind="stable", ignore_index=True),
                        _state_rows(merged, np.concatenate([obv for _, _, obv in parts]), tickers, end))


def read_indicator_state(wh: Warehouse, day: pd.Timestamp | None) -> pd.DataFrame:
    """`asset_indicator_state` as of `day`, indexed by ticker (empty: none kept for that day, or no day)."""
    state = wh.read_table(INDICATOR_STATE, "as_of = ?", [day.date()]) if day is not None else \
        wh.read_table(INDICATOR_STATE, "FALSE")
    return state.set_index("ticker")


def _continuable(wh: Warehouse, frames: dict[str, pd.DataFrame], state: pd.DataFrame, start: pd.Timestamp,
                 end: pd.Timestamp, before: pd.Timestamp,
                 columns: Sequence[str]) -> dict[str, pd.DataFrame] | None:
    """`frames` reaching back to the last observation of every ticker priced in [start, end] (read again from
    earlier if one lies before them), or None if the state does not describe the stored prices: a ticker's
    count of prices up to `before` or its last priced day differs (a price added or removed since; a revised
    value is not seen, as by any asset that continues from its previous partition: re-run from that day)."""
    px = frames["adj_close"]
    history = px.loc[:before]
    priced = history.notna().to_numpy()
    has = priced.any(axis=0)
    last = history.index[len(history) - 1 - np.argmax(priced[::-1], axis=0)].where(has)
    seen = pd.DatetimeIndex(pd.to_datetime(state["ema_12_seen"]).reindex(px.columns))
    counts = wh.query("SELECT ticker, COUNT(*) AS n FROM price_data WHERE trade_date <= ? AND adj_close IS NOT NULL "
                      "GROUP BY ticker", [before.date()]).set_index("ticker")["n"]
    kept = state["ema_12_count"]
    if (has & (last != seen)).any() or not counts.astype(int).sort_index().equals(
            kept[kept > 0].astype(int).sort_index()):
        return None
    active = px.columns[px.loc[start:end].notna().any().to_numpy()]
    earliest = state.loc[state.index.intersection(active),
                         [f"{n}_seen" for n in EWM_PARAMS if n != "macd_signal"]].min().min()
    if pd.notna(earliest) and pd.Timestamp(earliest) < px.index[0]:
        return price_frames(wh, pd.Timestamp(earliest), end, columns=columns)
    return frames


def _ewm_state(state: pd.DataFrame, name: str) -> EwmState:
    """One average's stored state, a row per ticker (a ticker the state lacked: all NaN, no observation)."""
    return EwmState(state[name].to_numpy(float),
                    pd.to_datetime(state[f"{name}_seen"]).to_numpy(dtype="datetime64[ns]"),
                    state[f"{name}_count"].fillna(0).to_numpy(np.int64))


def _slice_state(state: EwmState, cut: slice) -> EwmState:
    """The state of a batch's columns."""
    return EwmState(state.value[cut], state.seen[cut], state.count[cut])


def _state_rows(states: dict[str, EwmState], obv_totals: np.ndarray, tickers: pd.Index,
                day: pd.Timestamp) -> pd.DataFrame:
    """`asset_indicator_state` rows as of `day`: one per ticker priced on or before it."""
    out: dict[str, object] = {"as_of": np.full(len(tickers), day.date(), dtype=object),
                              "ticker": np.asarray(tickers, dtype=object)}
    for name in EWM_PARAMS:
        st = states[name]
        out[name] = st.value
        out[f"{name}_seen"] = pd.DatetimeIndex(st.seen).date
        out[f"{name}_count"] = st.count
    out["obv"] = obv_totals
    frame = pd.DataFrame(out)
    return frame[frame["ema_12_count"] > 0].reset_index(drop=True)


def _asset_metrics(frames: dict[str, pd.DataFrame], states: dict[str, EwmState], obv_totals: np.ndarray,
                   first: int, after: int, start: pd.Timestamp, end: pd.Timestamp, recent: slice,
                   market_returns: pd.Series, rf_d: float) -> tuple[pd.DataFrame, dict[str, EwmState], np.ndarray]:
    """The rows of the tickers in `frames` (wide price columns over the range read), their averages' states and
    OBV totals after the last row. `after` is the row of the state's day (-1: the frames start at the first
    stored price, and `states` are empty); the recursions run from row `first` (no state is seeded earlier)."""
    px = frames["adj_close"]
    factor = px / frames["close"]
    high, low = frames["high"] * factor, frames["low"] * factor
    px_r, high_r, low_r = px.iloc[first:], high.iloc[first:], low.iloc[first:]
    delta = px_r.diff()
    averages, next_states = {}, {}
    inputs = {"ema_12": px_r, "ema_26": px_r, "atr_14": true_range(high_r, low_r, px_r),
              "rsi_gain": delta.clip(lower=0.0), "rsi_loss": (-delta).clip(lower=0.0)}
    for name, series in inputs.items():
        params, min_periods = EWM_PARAMS[name]
        averages[name], next_states[name] = ewm_from(series, states[name], min_periods, **params)
    macd_line = averages["ema_12"] - averages["ema_26"]
    params, min_periods = EWM_PARAMS["macd_signal"]
    macd_signal, next_states["macd_signal"] = ewm_from(macd_line, states["macd_signal"], min_periods, **params)
    volume_line = obv_from(px_r, frames["volume"].iloc[first:], obv_totals, after - first if after >= 0 else -1)
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
        "ema_12": averages["ema_12"], "ema_26": averages["ema_26"],
        "rsi_14": rsi_from_averages(averages["rsi_gain"], averages["rsi_loss"]),
        "macd": macd_line, "macd_signal": macd_signal,
        "bollinger_mid": mid, "bollinger_upper": upper, "bollinger_lower": lower,
        "atr_14": averages["atr_14"], "stoch_k": stoch_k, "stoch_d": stoch_d,
        "obv": volume_line.where(frames["volume"].iloc[first:].notna()),
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
    return pd.DataFrame(out), next_states, volume_line.to_numpy()[-1]


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
