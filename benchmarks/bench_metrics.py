"""Figure 4: every `portfolio_metrics` row of the demo vs the same numbers from empyrical-reloaded / quantstats.

The return series are those the asset reads (`performance.service.load_series`): from a demo backfill
warehouse when one is given or found at data/warehouse.duckdb, else computed from the demo lake through the
analytics layer (benchmarks/_universe.py; identical rows). Ours is the asset's computation without I/O,
`compute_rows(series, full_plan(series), rf)`: all portfolios x variants (benchmark included) x period types in one
polars pass. The reference loops over series and periods in pandas and calls the library per period:
empyrical annual_return, annual_volatility, sharpe_ratio, sortino_ratio, max_drawdown, calmar_ratio,
value_at_risk, conditional_value_at_risk (95% and 99%), alpha_beta, cum_returns_final, excess_sharpe (information
ratio, x sqrt(252)), quantstats win_rate and treynor_ratio, pandas' rolling 21-day product (var_95_1m); tracking_error, which neither library has, is numpy std(r - b, ddof=1) x
sqrt(252). Every value is compared (relative 1e-9); where the contract makes a metric NULL (too few returns,
zero variance) and a library returns a number anyway, the cell is counted separately, by metric.

    python benchmarks/bench_metrics.py [--quick] [--warehouse PATH_OR_URL] [--repeat N]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import polars as pl  # noqa: E402

from _common import ROOT, best_of, figure, header  # noqa: E402

GOAL = 20.0
RTOL = 1e-9
ATOL = 1e-12
SQRT_ANN = math.sqrt(252)


def load_series(warehouse: str | None, quick: bool) -> tuple[pl.DataFrame, str]:
    """The series and where they came from."""
    from _universe import demo_series

    candidate = warehouse or (str(ROOT / "data" / "warehouse.duckdb")
                              if (ROOT / "data" / "warehouse.duckdb").exists() else None)
    if candidate:
        try:
            from tracking_pipeline.services.performance import active_portfolios
            from tracking_pipeline.services.performance import load_series as service_series
            from tracking_pipeline.warehouse import open_warehouse

            wh = open_warehouse(candidate)
            series = service_series(wh, active_portfolios(wh))
            if series.height:
                if quick:
                    first = series["portfolio_id"].unique().sort()[0]
                    series = series.filter(pl.col("portfolio_id") == first)
                return series, f"warehouse {candidate}"
            print(f"warehouse {candidate} has no NAV rows; using the demo lake")
        except Exception as exc:  # noqa: BLE001 - any unusable warehouse: fall back to the lake
            print(f"warehouse {candidate} not usable ({exc.__class__.__name__}: {exc}); using the demo lake")
    return demo_series(max_portfolios=1 if quick else None), "demo lake via the analytics layer"


def ours(series: pl.DataFrame, rf_annual: float) -> pl.DataFrame:
    from tracking_pipeline.services.performance import compute_rows, full_plan

    return compute_rows(series, full_plan(series), rf_annual)


def period_labels(dates: pd.DatetimeIndex) -> dict[str, np.ndarray]:
    """Period label of each day per period type (ytd: NaT outside the last year)."""
    last_year = dates.max().year
    year_start = dates.to_period("Y").start_time
    return {
        "week": (dates - pd.to_timedelta(dates.weekday, unit="D")).to_numpy(),
        "month": dates.to_period("M").start_time.to_numpy(),
        "quarter": dates.to_period("Q").start_time.to_numpy(),
        "year": year_start.to_numpy(),
        "ytd": year_start.where(dates.year == last_year).to_numpy(),
        "all": np.full(len(dates), dates.min().to_datetime64()),
    }


def library_metrics(r: np.ndarray, b: np.ndarray, rf_d: float) -> dict[str, float]:
    import empyrical as ep
    import quantstats as qs

    alpha, beta = ep.alpha_beta(r, b, risk_free=rf_d)
    nav = np.cumprod(1.0 + r)
    return {
        "total_return": ep.cum_returns_final(r),
        "cagr": ep.annual_return(r),
        "volatility": ep.annual_volatility(r),
        "sharpe_ratio": ep.sharpe_ratio(r, risk_free=rf_d),
        "sortino_ratio": ep.sortino_ratio(r, required_return=rf_d),
        "max_drawdown": ep.max_drawdown(r),
        "calmar_ratio": ep.calmar_ratio(r),
        "win_rate": qs.stats.win_rate(pd.Series(r), prepare_returns=False),
        "var_95": ep.value_at_risk(r, cutoff=0.05),
        "cvar_95": ep.conditional_value_at_risk(r, cutoff=0.05),
        "beta": beta,
        "alpha": alpha,
        "tracking_error": np.std(r - b, ddof=1) * SQRT_ANN if len(r) > 1 else np.nan,
        "information_ratio": ep.excess_sharpe(r, b) * SQRT_ANN,
        "var_99": ep.value_at_risk(r, cutoff=0.01),
        "cvar_99": ep.conditional_value_at_risk(r, cutoff=0.01),
        "var_95_1m": np.percentile(pd.Series(1.0 + r).rolling(21).apply(np.prod, raw=True).dropna() - 1.0, 5)
        if len(r) >= 21 else np.nan,
        "treynor_ratio": qs.stats.treynor_ratio(pd.Series(r), pd.Series(b), periods=252,
                                                rf=(1.0 + rf_d) ** 252 - 1.0),
        "current_drawdown": nav[-1] / max(1.0, nav.max()) - 1.0,
    }


def reference(series: pl.DataFrame, rf_annual: float) -> pd.DataFrame:
    """The same rows from the libraries, one call per series, period and metric."""
    rf_d = (1.0 + rf_annual) ** (1.0 / 252) - 1.0
    frame = series.to_pandas()
    rows = []
    for (pid, variant), group in frame.groupby(["portfolio_id", "variant"], sort=True):
        group = group.sort_values("trade_date")
        dates = pd.DatetimeIndex(group["trade_date"])
        r = group["r"].to_numpy(float)
        b = group["b"].to_numpy(float)
        for period_type, labels in period_labels(dates).items():
            valid = ~pd.isna(labels)
            for label in pd.unique(labels[valid]):
                mask = labels == label
                rows.append({"portfolio_id": pid, "variant": variant, "period_type": period_type,
                             "period_start": dates[mask][0].date(), "period_end": dates[mask][-1].date(),
                             **library_metrics(r[mask], b[mask], rf_d)})
    return pd.DataFrame(rows)


def compare(ours_rows: pl.DataFrame, ref: pd.DataFrame) -> tuple[int, int, dict[str, int], list[str]]:
    """(values compared equal, rows, NULL-by-contract-vs-library-number per metric, mismatches)."""
    from tracking_pipeline.analytics.metrics import METRIC_COLUMNS

    keys = ["portfolio_id", "variant", "period_type", "period_start"]
    mine = ours_rows.to_pandas()
    mine["period_start"] = pd.to_datetime(mine["period_start"]).dt.date
    merged = mine.merge(ref, on=keys, how="outer", suffixes=("", "_ref"), indicator=True)
    mismatches = [f"row only in {'ours' if s == 'left_only' else 'reference'}: {dict(zip(keys, k))}"
                  for s, *k in merged.loc[merged["_merge"] != "both", ["_merge", *keys]].itertuples(index=False)]
    both = merged[merged["_merge"] == "both"]
    equal, null_by_contract = 0, {}
    for metric in METRIC_COLUMNS:
        a = both[metric].to_numpy(float, na_value=np.nan)
        r = both[f"{metric}_ref"].to_numpy(float, na_value=np.nan)
        a_ok, r_ok = np.isfinite(a), np.isfinite(r)
        close = a_ok & r_ok & np.isclose(a, r, rtol=RTOL, atol=ATOL)
        equal += int(close.sum() + (~a_ok & ~r_ok).sum())
        only_ref = ~a_ok & r_ok
        if only_ref.any():
            null_by_contract[metric] = int(only_ref.sum())
        bad = (a_ok & ~close)
        for i in np.flatnonzero(bad)[:5]:
            row = both.iloc[i]
            mismatches.append(f"{metric} {dict((k, row[k]) for k in keys)}: ours {a[i]!r}, library {r[i]!r}")
    return equal, len(both), null_by_contract, mismatches


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one portfolio (smoke test)")
    parser.add_argument("--warehouse", help="a demo backfill warehouse (DuckDB path or postgresql:// URL)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of ours (best reported)")
    args = parser.parse_args(argv)
    from tracking_pipeline.analytics.metrics import METRIC_COLUMNS
    from tracking_pipeline.settings import load_settings

    header("portfolio_metrics: polars pass vs empyrical-reloaded / quantstats per series and period")
    rf = load_settings().risk_free_rate
    series, source = load_series(args.warehouse, args.quick)
    n_series = series.select("portfolio_id", "variant").unique().height
    print(f"series from {source}: {series['portfolio_id'].n_unique()} portfolios, {n_series} series "
          f"(variants incl. benchmark), {series.height} daily returns, rf {rf}")
    t_ours, rows, runs = best_of(lambda: ours(series, rf), args.repeat)
    library_metrics(np.array([0.01, -0.01, 0.02]), np.array([0.0, 0.01, -0.01]), 0.0)  # warm-up imports
    t0 = time.perf_counter()
    ref = reference(series, rf)
    t_ref = time.perf_counter() - t0
    equal, n_rows, null_by_contract, mismatches = compare(rows, ref)
    figure("metrics rows", f"{rows.height} rows ({n_series} series x {rows['period_type'].n_unique()} period types)")
    figure("metrics ours", f"{t_ours * 1000:.1f} ms (best of {runs})")
    figure("metrics libraries", f"{t_ref * 1000:.0f} ms")
    speedup = t_ref / t_ours
    figure("metrics speedup", f"{speedup:.0f}x; goal >= {GOAL:.0f}x {'met' if speedup >= GOAL else 'MISSED'}")
    extra = ", ".join(f"{k} {v}" for k, v in null_by_contract.items()) or "none"
    figure("metrics values", f"{equal} of {n_rows * len(METRIC_COLUMNS)} values equal (rtol {RTOL}); {len(mismatches)} mismatches; "
                             f"NULL by contract where a library returns a number: {extra}")
    for line in mismatches[:20]:
        print(f"  mismatch: {line}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
