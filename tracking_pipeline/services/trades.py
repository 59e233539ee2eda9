"""Trade analytics services: the lake's routing and ledger files into `routing_decisions` and `trade_tracking`,
and the windowed tables (`strategy_metrics`, `trade_outcomes`, `confidence_calibration`) and the volume-spike
scan from the warehouse.

Partitioning (docs/strategies.md): a decision belongs to the session of its timestamp (the next session when it
is dated on a weekend or holiday); a trade belongs to the session of its exit while closed and, while open, to
the latest session with prices (its mark day). So a nightly run writes the decisions and exits of the day and
re-marks the open trades; rerunning an older range touches only what is dated in it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from collections.abc import Sequence

import numpy as np
import pandas as pd

from tracking_pipeline.analytics.outcomes import OutcomeConfig, calibration, outcomes
from tracking_pipeline.analytics.strategy_metrics import strategy_metrics
from tracking_pipeline.analytics.trades import match_decisions, timing_cost, trade_figures
from tracking_pipeline.analytics.volume_scan import ScanConfig, volume_spikes
from tracking_pipeline.lake import Lake
from tracking_pipeline.lake.trades import Ledger, load_routing, load_trades
from tracking_pipeline.services.market_risk import price_frames
from tracking_pipeline.trading_calendar import previous_session, sessions_before, sessions_between
from tracking_pipeline.warehouse import TABLES, Warehouse, Write

DECISION_LOOKBACK_DAYS = 30
"""Calendar days before the earliest entry from which decisions are read to match trades (covers the 10-session
maximum decision age)."""


@dataclass
class LedgerRun:
    """What a routing / trade refresh writes, and the lake files it had to leave out (file -> error)."""

    rows: pd.DataFrame
    writes: list[Write]
    files: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    frontier: bool = False


def day_scope(start: pd.Timestamp, end: pd.Timestamp) -> tuple[dt.date, dt.date]:
    """The calendar days a partition range owns: after the session before `start`, up to `end` (a date on a
    weekend or holiday belongs to the next session)."""
    return (previous_session(start) + pd.Timedelta(days=1)).date(), pd.Timestamp(end).date()


def _placeholders(values: Sequence[object]) -> str:
    return ", ".join("?" for _ in values)


def _file_scope(wh: Warehouse, table: str, date_column: str, days: tuple[dt.date, dt.date],
                ledger: Ledger) -> list[str]:
    """The source files whose rows in `days` are replaced: those stored there or read now, less the bad ones
    (their previous rows stay until the file is fixed: nothing half-written). A file gone from the lake has its
    rows removed."""
    stored = wh.query(f"SELECT DISTINCT source_file FROM {table} WHERE {date_column} BETWEEN ? AND ?", list(days))
    return sorted((set(stored["source_file"].dropna()) | set(ledger.files)) - set(ledger.errors))


def refresh_routing(wh: Warehouse, lake: Lake, start: pd.Timestamp, end: pd.Timestamp,
                    known: set[str] | None = None) -> LedgerRun:
    """The routing decisions dated in the range, from every good routing/* file."""
    ledger = load_routing(lake, known)
    days = day_scope(start, end)
    columns = TABLES["routing_decisions"].column_names
    rows = ledger.rows
    if len(rows):
        rows = rows[(rows["decision_date"] >= pd.Timestamp(days[0])) & (rows["decision_date"] <= pd.Timestamp(days[1]))]
        rows = rows[columns].sort_values("decision_id", ignore_index=True)
    else:
        rows = pd.DataFrame(columns=columns)
    scope = {"decision_date": days, "source_file": _file_scope(wh, "routing_decisions", "decision_date", days, ledger)}
    return LedgerRun(rows, [Write("routing_decisions", rows, scope)], ledger.files, ledger.errors)


def _marks(wh: Warehouse, symbols: list[str], end: pd.Timestamp) -> pd.DataFrame:
    """Each symbol's last price on or before `end`: close (the ledger's basis), adj_close when close is NULL."""
    if not symbols:
        return pd.DataFrame(columns=["symbol", "mark_date", "mark_price"])
    return wh.query(
        "SELECT p.ticker AS symbol, p.trade_date AS mark_date, COALESCE(p.close, p.adj_close) AS mark_price "
        "FROM price_data p JOIN (SELECT ticker, MAX(trade_date) AS last_day FROM price_data WHERE trade_date <= ? "
        f"AND ticker IN ({_placeholders(symbols)}) GROUP BY ticker) m "
        "ON p.ticker = m.ticker AND p.trade_date = m.last_day", [end.date(), *symbols])


def _decision_prices(wh: Warehouse, frame: pd.DataFrame) -> pd.Series:
    """The close of each matched decision's day (the last session on or before it), aligned with `frame`."""
    matched = frame[frame["decision_date"].notna()]
    out = pd.Series(np.nan, index=frame.index)
    if matched.empty:
        return out
    symbols = sorted(matched["symbol"].unique())
    first = pd.Timestamp(matched["decision_date"].min()) - pd.Timedelta(days=DECISION_LOOKBACK_DAYS)
    prices = wh.query(
        "SELECT ticker AS symbol, trade_date, COALESCE(close, adj_close) AS decision_price FROM price_data "
        f"WHERE trade_date BETWEEN ? AND ? AND ticker IN ({_placeholders(symbols)}) ORDER BY trade_date",
        [first.date(), pd.Timestamp(matched["decision_date"].max()).date(), *symbols])
    if prices.empty:
        return out
    prices["trade_date"] = pd.to_datetime(prices["trade_date"]).astype("datetime64[ns]")
    left = matched[["symbol", "decision_date"]].assign(_i=matched.index)
    left["decision_date"] = pd.to_datetime(left["decision_date"]).astype("datetime64[ns]")
    left["symbol"], prices["symbol"] = left["symbol"].astype(str), prices["symbol"].astype(str)
    joined = pd.merge_asof(left.sort_values("decision_date"), prices, left_on="decision_date",
                           right_on="trade_date", by="symbol", direction="backward")
    out[joined["_i"].to_numpy()] = joined["decision_price"].to_numpy(float)
    return out


def refresh_trades(wh: Warehouse, lake: Lake, start: pd.Timestamp, end: pd.Timestamp,
                   known: set[str] | None = None) -> LedgerRun:
    """trade_tracking rows of the range: trades closed in it and, when `end` is the latest day in price_data,
    the trades open at its close, marked to market; each matched to its routing decision for market timing."""
    ledger = load_trades(lake, known)
    days = day_scope(start, end)
    columns = TABLES["trade_tracking"].column_names
    latest = wh.scalar("SELECT MAX(trade_date) FROM price_data")
    frontier = latest is not None and pd.Timestamp(end) >= pd.Timestamp(latest)
    t = ledger.rows
    if len(t):
        exits = t["exit_date"]
        closed_in = (exits >= pd.Timestamp(days[0])) & (exits <= pd.Timestamp(days[1]))
        open_at_end = (t["entry_date"] <= end) & (exits.isna() | (exits > end)) if frontier else False
        t = t[closed_in | open_at_end]
    rows = pd.DataFrame(columns=columns)
    if len(t):
        open_symbols = sorted(t.loc[t["exit_date"].isna() | (t["exit_date"] > end), "symbol"].unique())
        figures = trade_figures(t.reset_index(drop=True), as_of=end, marks=_marks(wh, open_symbols, end))
        decisions = wh.query(
            "SELECT decision_id, symbol, selected_strategy, decision_date FROM routing_decisions "
            "WHERE decision_date BETWEEN ? AND ?",
            [(pd.Timestamp(figures["entry_date"].min()) - pd.Timedelta(days=DECISION_LOOKBACK_DAYS)).date(),
             end.date()])
        figures = match_decisions(figures, decisions)
        figures = pd.concat([figures, timing_cost(figures["entry_price"], figures["quantity"],
                                                  _decision_prices(wh, figures))], axis=1)
        rows = figures[columns].sort_values("trade_id", ignore_index=True)
    scope = {"status_date": days, "source_file": _file_scope(wh, "trade_tracking", "status_date", days, ledger)}
    moved: list[str] = []
    if len(rows):
        # A trade written now may be stored under another status date (an open trade marked on an earlier day,
        # an exit moved by a ledger correction): that row goes too, found by id among the rows outside the range.
        elsewhere = wh.query("SELECT trade_id FROM trade_tracking WHERE status_date < ? OR status_date > ?",
                             list(days))["trade_id"]
        moved = sorted(set(elsewhere) & set(rows["trade_id"]))
    writes = [Write("trade_tracking", rows.iloc[0:0], {"trade_id": moved}), Write("trade_tracking", rows, scope)]
    return LedgerRun(rows, writes, ledger.files, ledger.errors, bool(frontier))


CLOSED_COLUMNS = ("trade_id, strategy, classification, entry_date, exit_date, profit_loss, profit_loss_pct, "
                  "hold_days, routing_confidence, entry_delay_days, timing_cost, timing_cost_amount")


def closed_trades(wh: Warehouse, end: pd.Timestamp) -> pd.DataFrame:
    """The stored trades closed on or before `end`."""
    frame = wh.query(f"SELECT {CLOSED_COLUMNS} FROM trade_tracking WHERE is_open = FALSE AND exit_date <= ? "
                     "ORDER BY exit_date, trade_id", [end.date()])
    for column in ("profit_loss", "profit_loss_pct", "hold_days", "routing_confidence", "entry_delay_days",
                   "timing_cost", "timing_cost_amount"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    for column in ("entry_date", "exit_date"):
        frame[column] = pd.to_datetime(frame[column])
    return frame


def compute_strategy_metrics(wh: Warehouse, start: pd.Timestamp, end: pd.Timestamp,
                             config: OutcomeConfig) -> pd.DataFrame:
    """strategy_metrics rows for every session of the range (period_end), with the time of computation."""
    rows = strategy_metrics(closed_trades(wh, end), sessions_between(start, end), config)
    return rows.assign(updated_at=pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s"))


def compute_outcomes(wh: Warehouse, start: pd.Timestamp, end: pd.Timestamp, config: OutcomeConfig) -> pd.DataFrame:
    """trade_outcomes rows for every session of the range (as_of_date)."""
    trades = closed_trades(wh, end)
    if trades.empty:
        return pd.DataFrame(columns=TABLES["trade_outcomes"].column_names)
    return outcomes(trades, sessions_between(start, end), config)


def compute_calibration(wh: Warehouse, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """confidence_calibration rows for every session of the range (as_of_date)."""
    trades = closed_trades(wh, end)
    if trades.empty:
        return pd.DataFrame(columns=TABLES["confidence_calibration"].column_names)
    return calibration(trades, sessions_between(start, end))


def compute_volume_scan(wh: Warehouse, start: pd.Timestamp, end: pd.Timestamp, config: ScanConfig) -> pd.DataFrame:
    """volume_spike_candidates of the range, from price_data (close, adj_close where close is NULL) with the
    `average_sessions` sessions before it."""
    frames = price_frames(wh, sessions_before(start, config.average_sessions), end,
                          columns=("close", "adj_close", "volume"))
    price = frames["close"].fillna(frames["adj_close"])
    return volume_spikes(price, frames["volume"], config, start)
