#!/usr/bin/env python
"""Build the demo lake's trade ledger (``trades/*.csv``) and routing decisions (``routing/*.csv``).

A small rule-based trading system run over the demo lake's real daily bars, so the trade analytics have a real
ledger to work on (seed 001's router and strategy engines, reduced to two rules):

* **classifier**: ETFs are ``etf``; a stock is ``high_volatility`` when its 63-day annualised volatility of
  daily ``close`` returns exceeds 35%, else ``large_cap`` (every demo stock is an S&P 500 large cap);
* **signals** at the close of day t, from data up to t only:
  ``rsi_mean_reversion``: RSI(14) of ``close`` crosses below 30;
  ``breakout_20d``: ``close`` above the highest close of the previous 20 sessions on at least 2.5 times the
  previous 20 sessions' average volume;
* **router**: when a signal fires it picks a strategy: the class's preferred one (rsi_mean_reversion for etf and
  large_cap, breakout_20d for high_volatility) when its signal fired, else the one that fired; confidence =
  base(class, strategy) + 0.3 x signal strength (RSI: (30 - RSI) / 10, breakout: (volume ratio - 2.5) / 3,
  each clipped to [0, 1]), clipped to [0.05, 0.99], 2 decimals. Every routing is a
  decision row (``routing/``), dated at 16:00 of its day;
* **execution**: a decision becomes a trade when its confidence is at least 0.35 and no trade of the same
  symbol and strategy is open: entry at the ``open`` of the next session (the session after, for one decision
  in seven, chosen by a hash of its id: a queued order, so market timing has delays to measure), $10,000 worth
  of whole shares; exit at the ``close`` of the first session on or after entry that meets the strategy's exit
  rule: a stop 8% under the entry price, RSI above 50 (mean reversion) or a close under the previous 10
  sessions' lowest close (breakout), or after 15 / 30 sessions. Trades without an exit by the lake's last day
  stay open (empty exit fields).

Prices are the lake's split-adjusted ``open``/``close``, so the ledger, its marks and the decision-day prices
are in one basis. Everything is causal: the ledger built from a lake cut at day X equals this ledger cut at X
(entries up to X, exits after X emptied), which ``tracking_pipeline_tests/helpers.make_lake`` relies on and
the tests check. Deterministic: the same prices give byte-identical files.

It also writes the demo's ``reference/trade_analytics.yaml`` (a volume-spike scan tuned to large caps, with
two reference patterns measured on real demo spikes, and 2019 as the outcome baseline) and a section of the
lake's README.md. Run it after ``scripts/build_demo_lake.py``, which rebuilds the lake without them.

Usage (from the repository root)::

    python scripts/build_demo_trades.py                  # reads and writes tracking_pipeline/demo_lake
    python scripts/build_demo_trades.py --lake /tmp/lake
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from tracking_pipeline.analytics.indicators import rsi

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LAKE = REPO_ROOT / "tracking_pipeline" / "demo_lake"

ETFS = frozenset({"AGG", "EFA", "GLD", "QQQ", "SPY", "VTI"})
HIGH_VOLATILITY = 0.35
VOL_WINDOW = 63
RSI_ENTRY, RSI_EXIT = 30.0, 50.0
BREAKOUT_WINDOW, BREAKOUT_VOLUME, TRAIL_WINDOW = 20, 2.5, 10
STOP_LOSS = 0.08
MAX_HOLD = {"rsi_mean_reversion": 15, "breakout_20d": 30}
PREFERRED = {"etf": "rsi_mean_reversion", "large_cap": "rsi_mean_reversion", "high_volatility": "breakout_20d"}
BASE_CONFIDENCE = {
    ("etf", "rsi_mean_reversion"): 0.78, ("large_cap", "rsi_mean_reversion"): 0.62,
    ("high_volatility", "rsi_mean_reversion"): 0.30, ("etf", "breakout_20d"): 0.30,
    ("large_cap", "breakout_20d"): 0.40, ("high_volatility", "breakout_20d"): 0.66,
}
MIN_CONFIDENCE = 0.35
POSITION_VALUE = 10_000.0
QUEUED_ONE_IN = 7
TRADE_COLUMNS = ["trade_id", "symbol", "strategy", "classification", "entry_date", "entry_price", "quantity",
                 "exit_date", "exit_price", "exit_reason", "routing_confidence"]
ROUTING_COLUMNS = ["decision_id", "symbol", "selected_strategy", "classification", "confidence", "reason",
                   "timestamp"]
CODES = {"rsi_mean_reversion": "RSI", "breakout_20d": "BRK"}
REFERENCE_SPIKES = (("NFLX", "2022-04-20"), ("CRM", "2020-08-26"))
"""Real demo spikes used as reference patterns: Netflix's subscriber-loss crash, Salesforce's earnings jump."""
SPIKE_SESSIONS = 20
README_HEADING = "## Trades and routing"
CONFIG_TEMPLATE = """\
# Trade analytics settings of the demo lake, written by scripts/build_demo_trades.py: edit the script, not this file.
# Absent settings take seed 004's defaults (docs/strategies.md).
volume_spike:
  min_volume_multiple: 5      # seed default 15: large caps rarely trade 15x their average volume
  min_price: 20               # seed default 1
  max_price: 1000             # seed default 8
  average_sessions: 20
  patterns:                   # seed 004's VIGL and two real spikes of the demo's stocks
    VIGL: {{volume_multiple: 20.9, price: 2.94}}
{patterns}
outcomes:
  explosive_return: 0.10      # seed default 0.50 (+50%): large caps held for days rarely move that much
  baseline:
    start: 2019-01-01
    end: 2019-12-31
    label: "2019, the demo's own best year"
"""
README_SECTION = """\
{heading}

Written by `scripts/build_demo_trades.py` from the prices above (run it after `scripts/build_demo_lake.py`): a
rule-based demo trading system (RSI mean reversion and 20-day breakouts, routed by stock type with a confidence).

| path | content |
|---|---|
| `trades/trades_YYYY.csv` | {trades} trades by entry year ({open_trades} still open on {end}): `trade_id, symbol, strategy, classification, entry_date, entry_price, quantity, exit_date, exit_price, exit_reason, routing_confidence` |
| `routing/decisions_YYYY.csv` | {decisions} routing decisions: `decision_id, symbol, selected_strategy, classification, confidence, reason, timestamp` |
| `reference/trade_analytics.yaml` | volume-spike scan thresholds and reference patterns, outcome thresholds and baseline |
"""


def wide(prices: pd.DataFrame, column: str) -> pd.DataFrame:
    """sessions x tickers of one price column."""
    frame = prices.pivot(index="date", columns="ticker", values=column).sort_index()
    frame.index = pd.DatetimeIndex(frame.index)
    return frame.astype(float)


def decisions(prices: pd.DataFrame) -> pd.DataFrame:
    """Every routing decision: one row per (day, symbol) on which a signal fired."""
    close, volume = wide(prices, "close"), wide(prices, "volume")
    returns = close.pct_change(fill_method=None)
    vol = returns.rolling(VOL_WINDOW, min_periods=VOL_WINDOW).std() * np.sqrt(252)
    classes = pd.DataFrame(np.where(vol > HIGH_VOLATILITY, "high_volatility", "large_cap"),
                           index=close.index, columns=close.columns)
    classes.loc[:, [c for c in close.columns if c in ETFS]] = "etf"
    strength_rsi = rsi(close, 14)
    rsi_fired = (strength_rsi < RSI_ENTRY) & (strength_rsi.shift(1) >= RSI_ENTRY)
    high = close.rolling(BREAKOUT_WINDOW, min_periods=BREAKOUT_WINDOW).max().shift(1)
    avg_volume = volume.rolling(BREAKOUT_WINDOW, min_periods=BREAKOUT_WINDOW).mean().shift(1)
    volume_ratio = volume / avg_volume
    breakout_fired = (close > high) & (volume_ratio >= BREAKOUT_VOLUME)
    ready = vol.notna()
    long = pd.DataFrame({
        "classification": classes.stack(), "rsi": strength_rsi.stack(), "rsi_fired": (rsi_fired & ready).stack(),
        "volume_ratio": volume_ratio.stack(), "breakout_fired": (breakout_fired & ready).stack(),
    })
    long = long[long["rsi_fired"] | long["breakout_fired"]].reset_index()
    long.columns = ["date", "symbol", *long.columns[2:]]
    preferred = long["classification"].map(PREFERRED)
    pref_fired = np.where(preferred == "rsi_mean_reversion", long["rsi_fired"], long["breakout_fired"])
    other = np.where(preferred == "rsi_mean_reversion", "breakout_20d", "rsi_mean_reversion")
    long["strategy"] = np.where(pref_fired, preferred, other)
    is_rsi = long["strategy"] == "rsi_mean_reversion"
    strength = np.where(is_rsi, (RSI_ENTRY - long["rsi"]) / 10.0,
                        np.minimum(1.0, (long["volume_ratio"] - BREAKOUT_VOLUME) / 3.0)).clip(0.0, 1.0)
    base = np.array([BASE_CONFIDENCE[(c, s)] for c, s in zip(long["classification"], long["strategy"])])
    long["confidence"] = np.round(np.clip(base + 0.3 * strength, 0.05, 0.99), 2)
    long["reason"] = np.where(
        is_rsi, long["classification"] + ": RSI(14) " + long["rsi"].round(1).astype(str) + " crossed below 30",
        long["classification"] + ": close above the 20-day high on " + long["volume_ratio"].round(1).astype(str)
        + "x average volume")
    long["decision_id"] = ("D" + long["date"].dt.strftime("%Y%m%d") + "-" + long["symbol"] + "-"
                           + long["strategy"].map(CODES))
    return long.sort_values(["date", "symbol"], ignore_index=True)


def _first_exit(strategy: str, entry: float, i: int, close: np.ndarray, strength_rsi: np.ndarray,
                trail_low: np.ndarray) -> tuple[int, str] | None:
    """(session index, reason) of the first exit at or after session i, or None while open at the end."""
    last = min(i + MAX_HOLD[strategy], len(close) - 1)
    window = slice(i, last + 1)
    stop = close[window] <= entry * (1.0 - STOP_LOSS)
    rule = strength_rsi[window] > RSI_EXIT if strategy == "rsi_mean_reversion" else close[window] < trail_low[window]
    hit = stop | rule
    if hit.any():
        j = int(np.argmax(hit))
        reason = "stop_loss" if stop[j] else ("rsi_recovered" if strategy == "rsi_mean_reversion" else "trailing_low")
        return i + j, reason
    if i + MAX_HOLD[strategy] <= len(close) - 1:
        return last, "max_hold"
    return None


def trades(prices: pd.DataFrame, routed: pd.DataFrame) -> pd.DataFrame:
    """The trades the decisions lead to (one open trade per symbol and strategy at a time)."""
    close, opens = wide(prices, "close"), wide(prices, "open")
    strength_rsi = rsi(close, 14)
    trail_low = close.rolling(TRAIL_WINDOW, min_periods=TRAIL_WINDOW).min().shift(1)
    days = close.index
    rows = []
    candidates = routed[routed["confidence"] >= MIN_CONFIDENCE]
    for (symbol, strategy), group in candidates.groupby(["symbol", "strategy"], sort=True):
        c, o = close[symbol].to_numpy(), opens[symbol].to_numpy()
        r, low = strength_rsi[symbol].to_numpy(), trail_low[symbol].to_numpy()
        busy_until = -1  # session index of the open trade's exit (len(days) while open at the end)
        for decision in group.itertuples(index=False):
            day = int(days.searchsorted(decision.date))
            if day <= busy_until:
                continue
            queued = int(hashlib.sha256(decision.decision_id.encode()).hexdigest(), 16) % QUEUED_ONE_IN == 0
            i = day + (2 if queued else 1)
            if i >= len(days):
                continue
            entry = round(float(o[i]), 4)
            exit_ = _first_exit(strategy, entry, i, c, r, low)
            busy_until = len(days) if exit_ is None else exit_[0]
            rows.append({
                "trade_id": f"T{days[i]:%Y%m%d}-{symbol}-{CODES[strategy]}", "symbol": symbol, "strategy": strategy,
                "classification": decision.classification, "entry_date": days[i].date(), "entry_price": entry,
                "quantity": max(1, int(POSITION_VALUE // entry)),
                "exit_date": None if exit_ is None else days[exit_[0]].date(),
                "exit_price": None if exit_ is None else round(float(c[exit_[0]]), 4),
                "exit_reason": None if exit_ is None else exit_[1], "routing_confidence": decision.confidence,
            })
    out = pd.DataFrame(rows, columns=TRADE_COLUMNS)
    return out.sort_values(["entry_date", "trade_id"], ignore_index=True)


def build(prices: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(trades, routing) in the lake's column layout from long daily bars (date, ticker, open, close, volume)."""
    routed = decisions(prices)
    ledger = trades(prices, routed)
    routing = pd.DataFrame({
        "decision_id": routed["decision_id"], "symbol": routed["symbol"], "selected_strategy": routed["strategy"],
        "classification": routed["classification"], "confidence": routed["confidence"], "reason": routed["reason"],
        "timestamp": routed["date"].dt.strftime("%Y-%m-%d") + " 16:00:00",
    })
    return ledger, routing


def read_lake_prices(lake: Path) -> pd.DataFrame:
    frames = [pd.read_parquet(path, columns=["date", "ticker", "open", "close", "volume"])
              for path in sorted((lake / "prices").glob("*.parquet"))]
    if not frames:
        raise SystemExit(f"build_demo_trades: no price files under {lake / 'prices'}")
    prices = pd.concat(frames, ignore_index=True)
    prices["date"] = pd.to_datetime(prices["date"])
    return prices


def write_by_year(frame: pd.DataFrame, folder: Path, prefix: str, year: pd.Series) -> list[Path]:
    """One CSV per year (of `year`), replacing the folder's previous files."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"{prefix}_*.csv"):
        old.unlink()
    written = []
    for value in sorted(year.unique()):
        path = folder / f"{prefix}_{value}.csv"
        frame[year == value].to_csv(path, index=False, lineterminator="\n")
        written.append(path)
    return written


def spike_patterns(prices: pd.DataFrame) -> list[tuple[str, float, float]]:
    """(name, volume multiple, close) of each reference spike: volume over the previous 20 sessions' mean."""
    close, volume = wide(prices, "close"), wide(prices, "volume")
    average = volume.rolling(SPIKE_SESSIONS, min_periods=SPIKE_SESSIONS).mean().shift(1)
    out = []
    for ticker, day in REFERENCE_SPIKES:
        if ticker in close.columns and pd.Timestamp(day) in close.index:
            when = pd.Timestamp(day)
            out.append((f"{ticker}_{day.replace('-', '_')}", round(float(volume.at[when, ticker]
                                                                          / average.at[when, ticker]), 2),
                        round(float(close.at[when, ticker]), 2)))
    return out


def write_config(lake: Path, prices: pd.DataFrame) -> Path:
    patterns = "\n".join(f"    {name}: {{volume_multiple: {multiple}, price: {price}}}"
                         for name, multiple, price in spike_patterns(prices))
    path = lake / "reference" / "trade_analytics.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(CONFIG_TEMPLATE.format(patterns=patterns), encoding="utf-8")
    return path


def write_readme_section(lake: Path, ledger: pd.DataFrame, routing: pd.DataFrame, end: pd.Timestamp) -> None:
    """Replace (or add) the README's section on the trade files."""
    path = lake / "README.md"
    text = path.read_text(encoding="utf-8") if path.is_file() else "# Demo lake\n"
    text = text.split(f"\n{README_HEADING}\n")[0].rstrip("\n") + "\n\n"
    path.write_text(text + README_SECTION.format(
        heading=README_HEADING, trades=len(ledger), open_trades=int(ledger["exit_date"].isna().sum()),
        end=end.date(), decisions=len(routing)), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lake", type=Path, default=DEFAULT_LAKE,
                        help="lake whose prices/*.parquet are read and trades/, routing/ written "
                             "(default: the demo lake)")
    args = parser.parse_args(argv)
    lake = args.lake.resolve()
    prices = read_lake_prices(lake)
    ledger, routing = build(prices)
    trade_files = write_by_year(ledger, lake / "trades", "trades", pd.to_datetime(ledger["entry_date"]).dt.year)
    routing_files = write_by_year(routing, lake / "routing", "decisions", pd.to_datetime(routing["timestamp"]).dt.year)
    write_config(lake, prices)
    write_readme_section(lake, ledger, routing, prices["date"].max())
    open_trades = int(ledger["exit_date"].isna().sum())
    print(f"{len(routing)} decisions in {len(routing_files)} files, {len(ledger)} trades ({open_trades} open) in "
          f"{len(trade_files)} files under {lake}")
    print(ledger.groupby(["strategy", "classification"]).size().to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
