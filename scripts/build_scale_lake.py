#!/usr/bin/env python
"""Build a generated input lake at a scale factor, for the pipeline's scale benchmark (bench_pipeline_scale.py).

1x is 2,000 stocks plus SPY over 20 years of NYSE sessions (2006-01-03..2025-12-31), VIX, GICS sectors, 200
portfolios of 30 stocks (raw + both overlays) rebalanced quarterly, and a trade ledger with its routing decisions;
a scale factor multiplies the stocks, the portfolios and the trades (the history stays 20 years).

Prices are bootstrapped from the real data in ``../shared/data``: the target sessions draw whole source days of
2010-2023 in blocks (a stationary block bootstrap, mean block 20 sessions), so every stock, SPY and the VIX move
together as they did on that day. Each generated stock follows one real stock's adjusted returns plus a small
idiosyncratic noise, takes its bars' open/high/low ratios and its volume (scaled) from that stock on that day, and
its sector from it. 30% of the stocks list after the first day and 20% delist before the last one; portfolios only
hold stocks listed through the quarter they are held. Every file is in the lake's normal layout (README's lake
section): ``prices/stocks_YYYY.parquet`` + ``prices/spy.parquet``, ``features/vix.parquet``,
``reference/sectors.csv``, ``portfolios/*.json``, ``trades/trades_YYYY.parquet``, ``routing/decisions_YYYY.parquet``.

Deterministic (same seed, same source: the same tables) and vectorised (1x in about a minute); nothing it writes
is committed.

    python scripts/build_scale_lake.py --out /tmp/scale_lake [--scale 1] [--tickers N --years Y --portfolios P]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tracking_pipeline.trading_calendar import nyse_sessions  # noqa: E402

SOURCE_CANDIDATES = [REPO_ROOT / ".." / "shared" / "data", Path("/work/shared/data")]
"""The shared real data beside the repository, or at the workplace's fixed path (a clone elsewhere, as in CI)."""
DEFAULT_SOURCE = next((p for p in SOURCE_CANDIDATES if (p / "stocks_daily.csv.gz").is_file()), SOURCE_CANDIDATES[0])
BASE = {"tickers": 2000, "years": 20, "portfolios": 200}
END = "2025-12-31"
HOLDINGS = 30
MEAN_BLOCK = 20
LISTED_LATE, DELISTED_EARLY = 0.30, 0.20
TRADES_PER_TICKER_YEAR = 2
VARIANTS = ["raw", "conservative", "trend_regime_v2"]
STRATEGIES = np.array(["rsi_mean_reversion", "breakout_20d"], dtype=object)
CLASSES = np.array(["large_cap", "high_volatility"], dtype=object)
PRICE_SCHEMA = pa.schema([("date", pa.date32()), ("ticker", pa.string()), ("open", pa.float64()),
                          ("high", pa.float64()), ("low", pa.float64()), ("close", pa.float64()),
                          ("adj_close", pa.float64()), ("volume", pa.int64())])


def write_parquet(table: pa.Table, path: Path) -> None:
    """Without pandas metadata, so the bytes depend only on the content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.replace_schema_metadata(None), path, compression="zstd", row_group_size=1_000_000)


def load_source(source: Path) -> dict[str, object]:
    """Real daily data on the days every source stock has a bar: the stocks' adjusted returns and bar ratios,
    SPY's returns, the VIX, the stocks' sectors."""
    stocks = pd.read_csv(source / "stocks_daily.csv.gz", dtype={"ticker": str, "date": str})
    wide = {c: stocks.pivot(index="date", columns="ticker", values=c)
            for c in ("open", "high", "low", "close", "adj_close", "volume")}
    full = wide["adj_close"].columns[wide["adj_close"].notna().all()]
    wide = {c: f[full].sort_index() for c, f in wide.items()}
    days = wide["adj_close"].index
    etfs = pd.read_csv(source / "etfs_daily.csv.gz", dtype={"ticker": str, "date": str})
    spy = etfs[etfs["ticker"] == "SPY"].set_index("date")["adj_close"].reindex(days)
    vix = pd.read_csv(source / "vix_daily.csv", dtype={"date": str}).set_index("date").reindex(days).ffill().bfill()
    if spy.isna().any():
        raise SystemExit(f"{source}: SPY has no bar on {int(spy.isna().sum())} of the stocks' days")
    sectors = pd.read_csv(source / "gics_sectors.csv").set_index("ticker")
    close = wide["close"].to_numpy()
    return {
        "returns": (wide["adj_close"].pct_change().to_numpy()[1:]),
        "spy": spy.pct_change().to_numpy()[1:],
        "ratios": {c: (wide[c].to_numpy() / close)[1:] for c in ("open", "high", "low")},
        "volume": wide["volume"].to_numpy()[1:],
        "vix": vix[["open", "high", "low", "close"]].to_numpy()[1:],
        "names": np.asarray(full, dtype=object),
        "sectors": sectors.reindex(full),
    }


def block_bootstrap(rng: np.random.Generator, length: int, available: int) -> np.ndarray:
    """Source day per target day: blocks of consecutive days (geometric lengths, mean MEAN_BLOCK)."""
    blocks = 2 * length // MEAN_BLOCK + 2
    sizes = np.minimum(rng.geometric(1.0 / MEAN_BLOCK, blocks), available)
    while sizes.sum() < length:
        sizes = np.r_[sizes, np.minimum(rng.geometric(1.0 / MEAN_BLOCK, blocks), available)]
    starts = rng.integers(0, available - sizes + 1)
    offsets = np.repeat(starts - np.r_[0, np.cumsum(sizes)[:-1]], sizes)
    return (offsets + np.arange(sizes.sum()))[:length]


def build(out: Path, source: Path, tickers: int, years: float, portfolios: int, seed: int,
          trades_per_ticker_year: float) -> dict[str, int]:
    """Write the lake under `out` (replaced); returns row counts."""
    rng = np.random.default_rng(seed)
    src = load_source(source)
    sessions = nyse_sessions()
    end = pd.Timestamp(END)
    days = sessions[(sessions > end - pd.Timedelta(days=round(365.25 * years))) & (sessions <= end)]
    t, n = len(days), tickers
    pick = block_bootstrap(rng, t, len(src["spy"]))
    origin = rng.integers(0, len(src["names"]), n)  # the real stock each generated one follows
    names = np.array([f"S{i:05d}" for i in range(n)], dtype=object)
    noise = rng.uniform(0.002, 0.008, n)
    listed = np.where(rng.random(n) < LISTED_LATE, rng.integers(1, int(t * 0.9), n), 0)
    delisted = np.where(rng.random(n) < DELISTED_EARLY, listed + rng.integers(min(252, t // 4), t, n), t - 1)
    delisted = np.minimum(delisted, t - 1)
    alive = (np.arange(t)[:, None] >= listed[None, :]) & (np.arange(t)[:, None] <= delisted[None, :])

    returns = src["returns"][pick][:, origin] + rng.normal(0.0, 1.0, (t, n)) * noise[None, :]
    returns = np.clip(returns, -0.5, 1.0)
    log_level = np.cumsum(np.log1p(returns), axis=0)
    log_level -= log_level[listed, np.arange(n)][None, :]  # each stock starts at its first price
    adj = np.exp(np.log(rng.lognormal(np.log(40.0), 0.8, n))[None, :] + log_level)
    del returns, log_level
    dividend = rng.uniform(0.0, 0.03, n)  # adj_close < close before the end, like a dividend adjustment
    close = adj * np.exp(dividend[None, :] * (t - 1 - np.arange(t))[:, None] / 252.0)
    bars = {c: close * src["ratios"][c][pick][:, origin] for c in ("open", "high", "low")}
    volume = (src["volume"][pick][:, origin] * rng.uniform(0.2, 5.0, n)[None, :]).astype(np.int64)
    spy_returns = src["spy"][pick].copy()
    spy_returns[0] = 0.0
    spy = 100.0 * np.cumprod(1.0 + spy_returns)

    if out.exists():
        shutil.rmtree(out)
    counts = {"price_rows": 0}
    dates = pa.array(days.date, pa.date32())
    years_of = days.year.to_numpy()
    for year in np.unique(years_of):
        rows = np.flatnonzero(years_of == year)
        mask = alive[rows]
        r, c = np.nonzero(mask)
        table = pa.table({"date": dates.take(pa.array(rows[r])), "ticker": pa.array(names[c], pa.string()),
                          "open": bars["open"][rows][mask], "high": bars["high"][rows][mask],
                          "low": bars["low"][rows][mask], "close": close[rows][mask], "adj_close": adj[rows][mask],
                          "volume": volume[rows][mask]}, schema=PRICE_SCHEMA)
        write_parquet(table, out / "prices" / f"stocks_{year}.parquet")
        counts["price_rows"] += table.num_rows
    spy_close = spy * np.exp(0.015 * (t - 1 - np.arange(t)) / 252.0)
    write_parquet(pa.table({"date": dates, "ticker": pa.array(["SPY"] * t, pa.string()),
                            "open": spy_close, "high": spy_close * 1.004, "low": spy_close * 0.996,
                            "close": spy_close, "adj_close": spy, "volume": np.full(t, 80_000_000, np.int64)},
                           schema=PRICE_SCHEMA), out / "prices" / "spy.parquet")
    vix = src["vix"][pick]
    write_parquet(pa.table({"date": dates, "vix_open": vix[:, 0], "vix_high": vix[:, 1], "vix_low": vix[:, 2],
                            "vix_close": vix[:, 3]}), out / "features" / "vix.parquet")
    sectors = src["sectors"].iloc[origin]
    (out / "reference").mkdir(parents=True)
    pd.DataFrame({"ticker": names, "name": [f"Generated {i} ({o})" for i, o in zip(names, sectors.index)],
                  "gics_sector": sectors["gics_sector"].to_numpy(),
                  "gics_sub_industry": sectors["gics_sub_industry"].to_numpy()}).to_csv(
        out / "reference" / "sectors.csv", index=False)

    counts["portfolios"] = write_portfolios(out / "portfolios", rng, days, names, listed, delisted, portfolios)
    counts["trades"] = write_trades(out, rng, days, names, close, bars["open"], listed, delisted,
                                    int(round(trades_per_ticker_year * n * t / 252)))
    (out / "README.md").write_text(
        f"# Generated scale lake\n\nWritten by `scripts/build_scale_lake.py` (seed {seed}): {n} stocks + SPY, "
        f"{t} NYSE sessions {days[0].date()}..{days[-1].date()}, {portfolios} portfolios, {counts['trades']} "
        "trades. Bootstrapped from the real data in ../shared/data; regenerate instead of editing.\n")
    return {"tickers": n, "sessions": t, **counts}


def write_portfolios(folder: Path, rng: np.random.Generator, days: pd.DatetimeIndex, names: np.ndarray,
                     listed: np.ndarray, delisted: np.ndarray, count: int) -> int:
    """`count` portfolios of HOLDINGS stocks rebalanced on each quarter's first session (70% of the names kept
    when still listed), each starting on one of the first quarters; only stocks listed through the quarter."""
    folder.mkdir(parents=True)
    firsts = np.flatnonzero(~days.to_period("Q").duplicated())
    nexts = np.r_[firsts[1:], len(days)] - 1
    holdable = [np.flatnonzero((listed <= a) & (delisted >= b)) for a, b in zip(firsts, nexts)]
    width = len(str(count))
    for p in range(count):
        first_q = int(rng.integers(0, max(len(firsts) // 5, 1))) if p % 4 else 0
        held: np.ndarray = np.array([], dtype=int)
        holdings = []
        for q in range(first_q, len(firsts)):
            pool = holdable[q]
            keep = held[np.isin(held, pool) & (rng.random(len(held)) < 0.7)]
            fresh = rng.choice(np.setdiff1d(pool, keep), min(HOLDINGS, len(pool)) - len(keep), replace=False)
            held = np.sort(np.r_[keep, fresh]).astype(int)
            weights = np.floor(rng.dirichlet(np.ones(len(held))) * 0.95 * 1e6) / 1e6
            holdings.append({"effective_date": str(days[firsts[q]].date()),
                             "weights": {names[i]: float(w) for i, w in zip(held, weights)}})
        spec = {"name": f"Scale {p + 1:0{width}d}", "description": "Generated: 30 stocks, quarterly",
                "source": "build_scale_lake", "start_date": holdings[0]["effective_date"], "initial_nav": 100,
                "benchmark": "SPY", "variants": VARIANTS, "holdings": holdings}
        (folder / f"scale_{p + 1:0{width}d}.json").write_text(json.dumps(spec, separators=(",", ":")))
    return count


def write_trades(out: Path, rng: np.random.Generator, days: pd.DatetimeIndex, names: np.ndarray,
                 close: np.ndarray, opens: np.ndarray, listed: np.ndarray, delisted: np.ndarray, count: int) -> int:
    """`count` trades of listed stocks (entry at a session's open, exit at a later close 5-30 sessions on, the
    last 1% still open) and one routing decision per trade at 16:00 of the session before its entry."""
    if count == 0:
        return 0
    t = len(days)
    who = rng.integers(0, len(names), count)
    lo, hi = listed[who] + 1, delisted[who] - 1
    ok = hi - lo > 40
    who, lo, hi = who[ok], lo[ok], hi[ok]
    entry = lo + (rng.random(len(who)) * (hi - lo - 31)).astype(int)
    exit_ = np.minimum(entry + rng.integers(5, 31, len(who)), hi)
    is_open = entry > t - 1 - max(t // 100, 31)
    strategy = STRATEGIES[rng.integers(0, 2, len(who))]
    klass = CLASSES[rng.integers(0, 2, len(who))]
    confidence = np.round(rng.uniform(0.35, 0.95, len(who)), 2)
    entry_price = np.round(opens[entry, who], 4)
    ids = np.array([f"T{i:07d}" for i in range(len(who))], dtype=object)
    entry_dates = days[entry]
    trades = pd.DataFrame({
        "trade_id": ids, "symbol": names[who], "strategy": strategy, "classification": klass,
        "entry_date": entry_dates.date, "entry_price": entry_price,
        "quantity": np.maximum((10_000 / entry_price).astype(np.int64), 1),
        "exit_date": pd.Series(days[exit_].date, dtype=object).where(~is_open, None),
        "exit_price": np.where(is_open, np.nan, np.round(close[exit_, who], 4)),
        "exit_reason": np.where(is_open, None, np.where(exit_ - entry >= 30, "max_hold", "signal")),
        "routing_confidence": confidence})
    decided = days[entry - 1] + pd.Timedelta(hours=16)
    routing = pd.DataFrame({"decision_id": np.char.add("D", ids.astype(str)), "symbol": names[who],
                            "selected_strategy": strategy, "classification": klass, "confidence": confidence,
                            "reason": "generated", "timestamp": decided})
    for year in np.unique(entry_dates.year):
        in_year = entry_dates.year == year
        write_parquet(pa.Table.from_pandas(trades[in_year], preserve_index=False),
                      out / "trades" / f"trades_{year}.parquet")
        write_parquet(pa.Table.from_pandas(routing[in_year], preserve_index=False),
                      out / "routing" / f"decisions_{year}.parquet")
    return len(trades)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="lake folder (replaced)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiple of 2,000 stocks and 200 portfolios")
    parser.add_argument("--tickers", type=int, help="stocks (overrides --scale)")
    parser.add_argument("--years", type=float, default=BASE["years"], help="years of sessions up to " + END)
    parser.add_argument("--portfolios", type=int, help="portfolios (overrides --scale)")
    parser.add_argument("--trades-per-ticker-year", type=float, default=TRADES_PER_TICKER_YEAR)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="the shared real data")
    args = parser.parse_args(argv)
    tickers = args.tickers or max(round(BASE["tickers"] * args.scale), 2)
    portfolios = args.portfolios or max(round(BASE["portfolios"] * args.scale), 1)
    if not (args.source / "stocks_daily.csv.gz").is_file():
        looked = ", ".join(map(str, SOURCE_CANDIDATES))
        parser.error(f"no stocks_daily.csv.gz under {args.source} (the shared real data, looked for in {looked}; "
                     "see --source)")
    t0 = time.perf_counter()
    counts = build(args.out, args.source, tickers, args.years, portfolios, args.seed, args.trades_per_ticker_year)
    print(f"scale lake {args.out}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items())
          + f" ({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
