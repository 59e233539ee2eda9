"""Figure 3: `position_market_betas` for every demo ticker over the demo period vs statsmodels RollingOLS per ticker.

Same input for both: the demo lake's adj_close (wide, NYSE sessions x tickers, missing days NaN) turned into
simple returns the way the asset does (`indicators.simple_returns`), the market ticker's returns as regressor,
window 90 rows, at least 30 paired observations. Ours is the asset's computation without I/O,
`rolling_market_betas` (one cumulative-sum pass over all tickers, long table out). The reference fits
`RollingOLS(y, add_constant(x), window=90, min_nobs=30, expanding=True, missing="drop")` per ticker and reads
params, bse, pvalues (use_t) and rsquared. Values are compared on full windows (90 paired observations):
beta (capped to [-5, 5] on both sides), alpha, r_squared, std_error, p_value to rtol 1e-8.

    python benchmarks/bench_betas.py [--quick] [--repeat N]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from _common import DEMO_END, DEMO_START, best_of, figure, header  # noqa: E402

GOAL = 100.0
WINDOW = 90
MIN_OBS = 30
RTOL = 1e-8
ATOL = 1e-12
QUICK_TICKERS = 6


def demo_returns(quick: bool) -> tuple[pd.DataFrame, str]:
    """Wide daily returns of every demo ticker over the demo period, and the market ticker."""
    from tracking_pipeline.analytics.indicators import simple_returns
    from tracking_pipeline.lake import open_lake
    from tracking_pipeline.lake.tables import load_prices
    from tracking_pipeline.settings import load_settings
    from tracking_pipeline.trading_calendar import sessions_between

    settings = load_settings()
    long = load_prices(open_lake(settings.lake), DEMO_START, DEMO_END)
    prices = long.pivot(index="trade_date", columns="ticker", values="adj_close").astype(float)
    prices = prices.reindex(sessions_between(DEMO_START, DEMO_END)).sort_index(axis=1)
    market = settings.market_ticker
    if quick:
        keep = [c for c in prices.columns if c != market][:QUICK_TICKERS - 1] + [market]
        prices = prices[keep]
    return simple_returns(prices), market


def ours(returns: pd.DataFrame, market: str) -> pd.DataFrame:
    from tracking_pipeline.analytics.betas import rolling_market_betas

    return rolling_market_betas(returns, returns[market], WINDOW, MIN_OBS)


def reference(returns: pd.DataFrame, market: str) -> dict[str, pd.DataFrame]:
    """statsmodels per ticker: wide frames of beta, alpha, r_squared, std_error, p_value, observations."""
    import statsmodels.api as sm
    from statsmodels.regression.rolling import RollingOLS

    x = sm.add_constant(returns[market].to_numpy(float), has_constant="add")
    out: dict[str, dict[str, np.ndarray]] = {k: {} for k in
                                             ("beta", "alpha", "r_squared", "std_error", "p_value", "observations")}
    for ticker in returns.columns:
        fit = RollingOLS(returns[ticker].to_numpy(float), x, window=WINDOW, min_nobs=MIN_OBS, expanding=True,
                         missing="drop").fit(use_t=True)
        params, bse, pvalues = fit.params, fit.bse, fit.pvalues
        out["alpha"][ticker] = params[:, 0]
        out["beta"][ticker] = params[:, 1]
        out["std_error"][ticker] = bse[:, 1]
        out["p_value"][ticker] = pvalues[:, 1]
        out["r_squared"][ticker] = fit.rsquared
        out["observations"][ticker] = fit.nobs
    return {k: pd.DataFrame(v, index=returns.index) for k, v in out.items()}


def compare(rows: pd.DataFrame, ref: dict[str, pd.DataFrame],
            full_only: bool = True) -> tuple[int, int, list[str]]:
    """(rows compared, values equal, mismatch descriptions); full windows only unless `full_only` is False."""
    from tracking_pipeline.analytics.betas import BETA_CAP

    long = {k: v.stack(future_stack=True).rename(k) for k, v in ref.items()}
    ref_long = pd.concat(long, axis=1).rename_axis(["calc_date", "ticker"]).reset_index()
    merged = rows.merge(ref_long, on=["calc_date", "ticker"], how="left", suffixes=("", "_ref"))
    full = merged[merged["observations"] == WINDOW] if full_only else merged
    merged_ref_beta = full["beta_ref"].clip(-BETA_CAP, BETA_CAP)
    pairs = {"beta": merged_ref_beta, "alpha": full["alpha_ref"], "r_squared": full["r_squared_ref"],
             "std_error": full["std_error_ref"], "p_value": full["p_value_ref"],
             "observations": full["observations_ref"]}
    equal, mismatches = 0, []
    for column, expected in pairs.items():
        a = full[column].to_numpy(float)
        e = expected.to_numpy(float)
        ok = np.isclose(a, e, rtol=RTOL, atol=ATOL)
        equal += int(ok.sum())
        for i in np.flatnonzero(~ok)[:3]:
            row = full.iloc[i]
            mismatches.append(f"{column} {row['ticker']} {row['calc_date'].date()}: ours {a[i]!r}, "
                              f"statsmodels {e[i]!r}")
        if (~ok).sum() > 3:
            mismatches.append(f"{column}: {(~ok).sum()} mismatches in total")
    return len(full), equal, mismatches


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_TICKERS} tickers (smoke test)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of ours (best reported)")
    args = parser.parse_args(argv)
    header(f"rolling market betas (window {WINDOW}): one cumulative-sum pass vs statsmodels RollingOLS per ticker")
    returns, market = demo_returns(args.quick)
    print(f"input: {returns.shape[1]} tickers x {returns.shape[0]} sessions ({DEMO_START}..{DEMO_END}), "
          f"market {market}")
    t_ours, rows, runs = best_of(lambda: ours(returns, market), args.repeat)
    reference(returns[[market]], market)  # warm-up (imports, first-call overheads)
    t0 = time.perf_counter()
    ref = reference(returns, market)
    t_ref = time.perf_counter() - t0
    n_full, equal, mismatches = compare(rows, ref)
    figure("betas rows", f"{len(rows)} rows, {n_full} on full {WINDOW}-day windows")
    figure("betas ours", f"{t_ours * 1000:.1f} ms (best of {runs})")
    figure("betas statsmodels", f"{t_ref * 1000:.0f} ms")
    speedup = t_ref / t_ours
    figure("betas speedup", f"{speedup:.0f}x; goal >= {GOAL:.0f}x {'met' if speedup >= GOAL else 'MISSED'}")
    figure("betas values", f"{equal} of {n_full * 6} values equal on full windows (rtol {RTOL}); "
                           f"{len(mismatches)} mismatch lines")
    for line in mismatches[:20]:
        print(f"  mismatch: {line}")
    n_all, equal_all, _ = compare(rows, ref, full_only=False)
    print(f"all {n_all} rows incl. the {n_all - n_full} windows with {MIN_OBS}..{WINDOW - 1} observations: "
          f"{equal_all} of {n_all * 6} values equal (rtol {RTOL})")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
