"""Per-trade figures of a trade ledger (seed 001) and market timing against routing decisions (seed 004).

Pure, vectorised functions on frames: no warehouse, no Dagster. docs/strategies.md gives every formula.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tracking_pipeline.trading_calendar import nyse_sessions

MAX_DECISION_AGE = 10
"""Sessions a routing decision may precede the entry of the trade it led to; older ones are not matched."""


def trade_figures(trades: pd.DataFrame, as_of: pd.Timestamp | None = None,
                  marks: pd.DataFrame | None = None) -> pd.DataFrame:
    """P&L, hold days and status of each trade, as of `as_of`.

    `trades`: ledger columns (entry_date, entry_price, quantity, exit_date, exit_price, ...). A trade is closed
    when it has an exit dated on or before `as_of` (every exit when `as_of` is None); otherwise it is open and
    marked at `marks` (columns symbol, mark_date, mark_price: the symbol's last price on or before `as_of`), its
    exit fields are emptied and its status date is `as_of`. Adds is_open, mark_date, mark_price, profit_loss =
    (price out - entry_price) x quantity, profit_loss_pct = price out / entry_price - 1, hold_days (calendar days
    from entry to exit or mark), was_profitable (profit_loss > 0; NULL while open) and status_date."""
    out = trades.copy()
    exit_date = pd.to_datetime(out["exit_date"])
    closed = exit_date.notna() if as_of is None else exit_date.notna() & (exit_date <= pd.Timestamp(as_of))
    out["is_open"] = ~closed
    out.loc[~closed, ["exit_date", "exit_price", "exit_reason"]] = None
    out["exit_date"] = exit_date.where(closed)
    if marks is not None and len(marks):
        marked = out[["symbol"]].merge(marks[["symbol", "mark_date", "mark_price"]], on="symbol", how="left")
        usable = ~closed.to_numpy() & (pd.to_datetime(marked["mark_date"]).to_numpy()
                                       >= pd.to_datetime(out["entry_date"]).to_numpy())
        out["mark_date"] = pd.to_datetime(marked["mark_date"]).where(usable).to_numpy()
        out["mark_price"] = marked["mark_price"].where(usable).to_numpy(float)
    else:
        out["mark_date"] = pd.NaT
        out["mark_price"] = np.nan
    price_out = np.where(closed, pd.to_numeric(out["exit_price"]).astype(float), out["mark_price"])
    day_out = out["exit_date"].where(closed, out["mark_date"])
    entry = out["entry_price"].astype(float).to_numpy()
    out["profit_loss"] = (price_out - entry) * out["quantity"].astype(float).to_numpy()
    out["profit_loss_pct"] = price_out / entry - 1.0
    out["hold_days"] = (pd.to_datetime(day_out) - pd.to_datetime(out["entry_date"])).dt.days.astype("Float64")
    out["was_profitable"] = pd.Series(out["profit_loss"].to_numpy() > 0, dtype=object).where(closed.to_numpy(), None)
    out["status_date"] = out["exit_date"].where(closed, pd.Timestamp(as_of) if as_of is not None else pd.NaT)
    return out


def sessions_after(first: pd.Series, last: pd.Series) -> np.ndarray:
    """Number of NYSE sessions s with first < s <= last, per row (dates as datetime64)."""
    sessions = nyse_sessions().to_numpy()
    return (np.searchsorted(sessions, pd.to_datetime(last).to_numpy(), side="right")
            - np.searchsorted(sessions, pd.to_datetime(first).to_numpy(), side="right"))


def match_decisions(trades: pd.DataFrame, decisions: pd.DataFrame,
                    max_age: int = MAX_DECISION_AGE) -> pd.DataFrame:
    """The routing decision each trade followed: the latest decision for the same symbol and strategy dated on
    or before the entry date and at most `max_age` sessions before it.

    `decisions`: decision_id, symbol, selected_strategy, decision_date. Returns the trades (same order) with
    decision_id, decision_date and entry_delay_days = sessions after the decision day up to the entry day
    (NULL where none matches)."""
    left = trades[["symbol", "strategy", "entry_date"]].copy()
    left["_row"] = np.arange(len(left))
    left["entry_date"] = pd.to_datetime(left["entry_date"]).astype("datetime64[ns]")
    right = decisions.rename(columns={"selected_strategy": "strategy"})[
        ["symbol", "strategy", "decision_date", "decision_id"]].copy()
    right["decision_date"] = pd.to_datetime(right["decision_date"]).astype("datetime64[ns]")
    for column in ("symbol", "strategy"):
        left[column], right[column] = left[column].astype(str), right[column].astype(str)
    right = right.sort_values(["decision_date", "decision_id"]).drop_duplicates(
        ["symbol", "strategy", "decision_date"], keep="last")
    merged = pd.merge_asof(left.sort_values("entry_date"), right, left_on="entry_date", right_on="decision_date",
                           by=["symbol", "strategy"], direction="backward").sort_values("_row")
    delay = np.where(merged["decision_date"].notna(), sessions_after(merged["decision_date"].fillna(
        merged["entry_date"]), merged["entry_date"]), -1)
    matched = merged["decision_date"].notna().to_numpy() & (delay <= max_age)
    out = trades.copy()
    out["decision_id"] = merged["decision_id"].where(matched).to_numpy()
    out["decision_date"] = merged["decision_date"].where(matched).to_numpy()
    out["entry_delay_days"] = pd.array(np.where(matched, delay, 0), dtype="Int64")
    out.loc[~matched, "entry_delay_days"] = pd.NA
    return out


def timing_cost(entry_price: pd.Series, quantity: pd.Series, decision_price: pd.Series) -> pd.DataFrame:
    """The cost of entering after the decision: timing_cost = entry_price / decision_price - 1 (what the price
    moved against the trade between the decision's close and the fill) and timing_cost_amount =
    (entry_price - decision_price) x quantity. NULL where the decision price is unknown."""
    entry, price = entry_price.astype(float).to_numpy(), decision_price.astype(float).to_numpy()
    return pd.DataFrame({"timing_cost": entry / price - 1.0,
                         "timing_cost_amount": (entry - price) * quantity.astype(float).to_numpy()},
                        index=entry_price.index)
