"""Issue 17's speed figure: 100,000 trades across 500 symbols through every trade asset in under 10 s.

A generated universe (500 symbols x 5 years of daily bars in price_data, a lake with the price file, a 100,000-row
ledger with 3% of trades still open at the end and a routing decision before each entry) goes through the bodies
of the six trade assets over the whole period as one partition range (a single-run backfill), on a DuckDB
warehouse: routing_decisions, trade_tracking, strategy_metrics, trade_outcomes, confidence_calibration and
volume_spike_candidates, each read, computed and written as the asset does (`services/trades.py`). Then the
nightly case: the last day alone.

    python benchmarks/bench_trades.py [--quick] [--trades N] [--symbols N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from _common import figure, header  # noqa: E402

GOAL_S = 10.0
START, END = "2019-01-02", "2023-12-29"


def synthetic(n_trades: int, n_symbols: int, start: str, end: str, seed: int = 17):  # noqa: ANN201
    """(long prices, ledger, routing) of a random universe."""
    from tracking_pipeline.trading_calendar import sessions_between

    rng = np.random.default_rng(seed)
    days = sessions_between(start, end)
    symbols = np.array([f"S{i:04d}" for i in range(n_symbols)])
    close = 50 * np.exp(np.cumsum(rng.normal(0.0003, 0.02, (len(days), n_symbols)), axis=0))
    volume = rng.lognormal(13, 0.5, (len(days), n_symbols))
    volume[rng.random(volume.shape) < 0.002] *= 8  # some spikes for the scan
    prices = pd.DataFrame({"trade_date": np.repeat(days, n_symbols), "ticker": np.tile(symbols, len(days)),
                           "close": close.ravel(), "adj_close": close.ravel(), "volume": volume.ravel()})
    entry = rng.integers(2, len(days) - 1, n_trades)
    exit_ = np.minimum(entry + rng.integers(0, 30, n_trades), len(days) - 1)
    column = rng.integers(0, n_symbols, n_trades)
    still_open = rng.random(n_trades) < 0.03
    strategies = np.array(["rsi_mean_reversion", "breakout_20d", "momentum"])[rng.integers(0, 3, n_trades)]
    ledger = pd.DataFrame({
        "trade_id": [f"T{i:06d}" for i in range(n_trades)], "symbol": symbols[column], "strategy": strategies,
        "classification": np.array(["etf", "large_cap", "high_volatility", "mid_cap"])[rng.integers(0, 4, n_trades)],
        "entry_date": days[entry], "entry_price": close[entry, column].round(4),
        "quantity": rng.integers(1, 500, n_trades),
        "exit_date": pd.Series(days[exit_]).where(~still_open), "exit_price": np.where(
            still_open, np.nan, close[exit_, column].round(4)),
        "exit_reason": np.where(still_open, None, "rule"), "routing_confidence": rng.uniform(0.2, 1.0, n_trades).round(2),
    })
    decided = entry - rng.integers(1, 3, n_trades)
    routing = pd.DataFrame({
        "decision_id": [f"D{i:06d}" for i in range(n_trades)], "symbol": ledger["symbol"],
        "selected_strategy": strategies, "classification": ledger["classification"],
        "confidence": ledger["routing_confidence"], "reason": "generated",
        "timestamp": pd.Series(days[decided]).dt.strftime("%Y-%m-%d") + " 16:00:00"})
    return prices, ledger, routing


def run_once(root: Path, wh, start: pd.Timestamp, end: pd.Timestamp) -> dict[str, float]:  # noqa: ANN001
    """Seconds of each trade asset's body over [start, end] (reads, computation and the write)."""
    from tracking_pipeline.lake import open_lake
    from tracking_pipeline.lake.tables import priced_tickers
    from tracking_pipeline.lake.trades import load_trade_analytics_config
    from tracking_pipeline.services import trades as service
    from tracking_pipeline.warehouse import Write

    lake = open_lake(str(root / "lake"))
    scan, outcome = load_trade_analytics_config(lake)
    steps = {
        "routing_decisions": lambda w: service.refresh_routing(w, lake, start, end, priced_tickers(lake)).writes,
        "trade_tracking": lambda w: service.refresh_trades(w, lake, start, end, priced_tickers(lake)).writes,
        "strategy_metrics": lambda w: [Write("strategy_metrics", service.compute_strategy_metrics(
            w, start, end, outcome), {"period_end": (start.date(), end.date())})],
        "trade_outcomes": lambda w: [Write("trade_outcomes", service.compute_outcomes(w, start, end, outcome),
                                           {"as_of_date": (start.date(), end.date())})],
        "confidence_calibration": lambda w: [Write("confidence_calibration", service.compute_calibration(
            w, start, end), {"as_of_date": (start.date(), end.date())})],
        "volume_spike_candidates": lambda w: [Write("volume_spike_candidates", service.compute_volume_scan(
            w, start, end, scan), {"trade_date": (start.date(), end.date())})],
    }
    seconds = {}
    for name, step in steps.items():
        t0 = time.perf_counter()
        with wh.session() as w:
            w.replace(*step(w))
        seconds[name] = time.perf_counter() - t0
    seconds["rows"] = {name: int(wh.scalar(f"SELECT COUNT(*) FROM {name}")) for name in steps}
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 trades, 100 symbols, one year")
    parser.add_argument("--trades", type=int, default=100_000)
    parser.add_argument("--symbols", type=int, default=500)
    args = parser.parse_args(argv)
    n_trades, n_symbols, start = (10_000, 100, "2023-01-03") if args.quick else (args.trades, args.symbols, START)
    header(f"trade assets: {n_trades:,} trades across {n_symbols} symbols, {start}..{END}")
    prices, ledger, routing = synthetic(n_trades, n_symbols, start, END)
    with tempfile.TemporaryDirectory(prefix="bench_trades_") as tmp:
        root = Path(tmp)
        os.environ["TRACKING_LAKE_CACHE"] = str(root / "cache")
        (root / "lake" / "prices").mkdir(parents=True)
        (root / "lake" / "trades").mkdir()
        (root / "lake" / "routing").mkdir()
        prices.rename(columns={"trade_date": "date"}).to_parquet(root / "lake" / "prices" / "prices.parquet")
        ledger.to_parquet(root / "lake" / "trades" / "ledger.parquet")
        routing.to_parquet(root / "lake" / "routing" / "decisions.parquet")
        (root / "lake" / "reference").mkdir()
        (root / "lake" / "reference" / "trade_analytics.yaml").write_text(
            "volume_spike: {min_volume_multiple: 5, min_price: 1, max_price: 100000}\n")
        from tracking_pipeline.warehouse import Write, open_warehouse

        first, last = pd.Timestamp(prices["trade_date"].min()), pd.Timestamp(prices["trade_date"].max())
        wh = open_warehouse(str(root / "warehouse.duckdb"))
        wh.replace(Write("price_data", prices, {"trade_date": (first.date(), last.date())}))
        backfill = run_once(root, wh, first, last)
        rows = backfill.pop("rows")
        total = sum(backfill.values())
        for name, seconds in backfill.items():
            print(f"  {name:26s} {seconds:7.2f} s  {rows[name]:>9,} rows")
        nightly = run_once(root, wh, last, last)
        nightly.pop("rows")
    figure("trades rows", f"{n_trades:,} trades, {n_symbols} symbols, {len(prices):,} bars, "
                          f"{int(ledger['exit_date'].isna().sum()):,} open")
    figure("trades backfill", f"{total:.2f} s for every trade asset over {first.date()}..{last.date()} "
                              f"(goal < {GOAL_S:.0f} s: {'met' if total < GOAL_S else 'MISSED'})")
    figure("trades nightly", f"{sum(nightly.values()):.2f} s for the last day")
    return 0


if __name__ == "__main__":
    sys.exit(main())
