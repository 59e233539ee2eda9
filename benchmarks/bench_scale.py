"""Figure 5: a generated universe through the analytics layer (no Dagster, no warehouse) at 1x, 2x and 4x.

1x is 2,000 tickers (plus the market SPY), 20 years of NYSE sessions, 200 portfolios of 30 stocks rebalanced
quarterly, 3 variants each (raw + the registered overlays). Other sizes multiply tickers and portfolios (the
history stays 20 years); a size whose peak RSS, extrapolated linearly from the previous one, would exceed 70% of
the memory available is skipped and says so. Each size runs in its own child process (peak RSS measured with wait4), through:
prices -> market features + overlay signals (compute_overlay_signals) -> raw NAV per portfolio (raw_nav_path)
-> overlay variant NAV (variant_nav) -> rolling market betas of every ticker (rolling_market_betas, as the
position_market_betas asset) -> portfolio_metrics rows (performance.service.compute_rows, as the asset).

    python benchmarks/bench_scale.py [--quick] [--sizes 0.5,1,2,4]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
warnings.filterwarnings("ignore")

from _common import PYTHON, figure, header, run_child  # noqa: E402

BASE = {"tickers": 2000, "years": 20, "portfolios": 200}
QUICK = {"tickers": 40, "years": 2, "portfolios": 4}
GOAL_SECONDS = 60.0
GOAL_MIB = 4096.0
MEMORY_SHARE = 0.7


def available_mib() -> float:
    """MemAvailable from /proc/meminfo (MiB); a larger size is skipped when it would not fit."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return float(line.split()[1]) / 1024.0
    return float("inf")


def child(tickers: int, years: int, portfolios: int) -> dict[str, float]:
    """Run the pipeline once; seconds per stage."""
    import resource

    import pandas as pd

    from _universe import generated_universe, overlay_allocations, raw_navs, return_series, variant_navs
    from tracking_pipeline.analytics.betas import rolling_market_betas
    from tracking_pipeline.analytics.indicators import simple_returns
    from tracking_pipeline.services.performance import compute_rows, full_plan

    rf_d = 0.0
    stages: dict[str, float] = {}
    peaks: dict[str, float] = {}
    t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        stages[name] = now - t
        peaks[name] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        t = now

    prices, books = generated_universe(tickers, years, portfolios)
    lap("generate")
    allocations = overlay_allocations(prices["SPY"], None)
    lap("overlay signals")
    end = pd.Timestamp(prices.index[-1])
    raws = raw_navs(books, prices, end, rf_d)
    lap("raw NAV")
    navs = variant_navs(books, raws, allocations, rf_d)
    lap("variant NAV")
    returns = simple_returns(prices)
    betas = rolling_market_betas(returns, returns["SPY"], 90, 30)
    lap("betas")
    series = return_series(books, navs, prices)
    lap("return series")
    rows = compute_rows(series, full_plan(series), 0.0)
    lap("metrics")
    stages["peak_mib"] = peaks
    stages["rows"] = {"prices": int(prices.size), "nav": len(navs), "betas": len(betas), "metrics": rows.height}
    return stages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"a tiny universe {QUICK} (smoke test)")
    parser.add_argument("--sizes", default="0.5,1,2,4", help="multiples of the base size (tickers and portfolios)")
    parser.add_argument("--child", nargs=3, type=int, metavar=("TICKERS", "YEARS", "PORTFOLIOS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0
    base = QUICK if args.quick else BASE
    header(f"scale: generated universe through the analytics layer, base {base}")
    results: dict[float, tuple[float, float]] = {}
    for factor in sorted(float(x) for x in args.sizes.split(",")):
        label = f"{factor:g}x"
        size = (max(round(base["tickers"] * factor), 2), base["years"], max(round(base["portfolios"] * factor), 1))
        if results:
            last = max(results)
            predicted = results[last][1] * factor / last
            if predicted > MEMORY_SHARE * available_mib():
                figure(f"scale {label}", f"skipped: predicted peak RSS {predicted:.0f} MiB (linear from {last:g}x) "
                                         f"exceeds {MEMORY_SHARE:.0%} of the {available_mib():.0f} MiB available")
                continue
        result = run_child([PYTHON, __file__, "--child", *map(str, size)])
        stages = json.loads(result.stdout.strip().splitlines()[-1])
        rows = stages.pop("rows")
        peaks = stages.pop("peak_mib")
        analytics = sum(v for k, v in stages.items() if k != "generate")
        results[factor] = (analytics, result.peak_rss_mib)
        figure(f"scale {label}", f"{size[0]} tickers, {size[1]} years, {size[2]} portfolios x 3 variants: "
                                 f"analytics {analytics:.1f} s (" + ", ".join(f"{k} {v:.1f} s" for k, v in
                                                                             stages.items())
               + f"), process wall {result.wall_s:.1f} s, CPU {result.cpu_s:.1f} s, peak RSS {result.peak_rss_mib:.0f} MiB (high-water mark "
               + ", ".join(f"after {k} {v:.0f}" for k, v in peaks.items()) + f"); rows {rows}")
    if 1.0 in results:
        seconds, mib = results[1.0]
        ok = seconds < GOAL_SECONDS and mib < GOAL_MIB
        figure("scale 1x goal", f"{seconds:.1f} s < {GOAL_SECONDS:.0f} s and {mib:.0f} MiB < {GOAL_MIB:.0f} MiB: "
                                f"{'met' if ok else 'MISSED'}")
        growth = ", ".join(f"{f:g}x size -> {results[f][0] / seconds:.2f}x time, {results[f][1] / mib:.2f}x RSS"
                           for f in sorted(results) if f != 1.0)
        if growth:
            figure("scale growth", growth)
    return 0


if __name__ == "__main__":
    sys.exit(main())
