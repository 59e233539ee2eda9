"""Checks on `portfolio_metrics`, reported by its asset after each refresh."""

from __future__ import annotations

import dagster as dg
import polars as pl

from tracking_pipeline.analytics.metrics import METRIC_COLUMNS
from tracking_pipeline.services.performance import BENCHMARK, KEYS, MetricsRefresh, in_list, to_polars
from tracking_pipeline.warehouse import Warehouse

METRICS_CHECKS = [
    dg.AssetCheckSpec("metrics_up_to_date", asset="portfolio_metrics",
                      description="Every active portfolio's variants and benchmark have an `all` row ending on its "
                                  "last NAV day, and no portfolio was skipped for bad returns."),
    dg.AssetCheckSpec("metrics_values_valid", asset="portfolio_metrics",
                      description="No stored inf/NaN; max_drawdown <= current_drawdown <= 0; win_rate in [0, 1]; "
                                  "period_start <= period_end; no CAGR/Calmar on a week, month or quarter (GIPS); "
                                  "drawdown peak <= trough <= recovery."),
]


def metrics_check_results(wh: Warehouse, refresh: MetricsRefresh) -> list[dg.AssetCheckResult]:
    ids = refresh.portfolios["portfolio_id"].to_list()
    where, params = in_list("portfolio_id", ids)
    last = to_polars(wh.query(f"SELECT portfolio_id, variant, MAX(trade_date) AS last FROM portfolio_daily_nav "
                               f"WHERE {where} GROUP BY portfolio_id, variant", params),
                      {"portfolio_id": pl.Int64, "variant": pl.String, "last": pl.Date})
    expected = pl.concat([last, last.group_by("portfolio_id").agg(pl.col("last").max())
                         .select("portfolio_id", pl.lit(BENCHMARK).alias("variant"), "last")])
    stored = to_polars(wh.query(f"SELECT portfolio_id, variant, period_end FROM portfolio_metrics "
                                 f"WHERE period_type = 'all' AND {where}", params),
                        {"portfolio_id": pl.Int64, "variant": pl.String, "period_end": pl.Date})
    names = dict(zip(ids, refresh.portfolios["name"].to_list()))
    first_days = dict(zip(ids, refresh.portfolios["first_day"].to_list()))
    behind = (expected.join(stored, on=KEYS, how="left")
              .filter(pl.col("period_end").is_null() | (pl.col("period_end") != pl.col("last")))
              .filter(pl.col("last") > pl.col("portfolio_id").replace_strict(first_days, return_dtype=pl.Date)))
    stale = {f"{names[r['portfolio_id']]} / {r['variant']}": f"all row ends {r['period_end']}, NAV {r['last']}"
             for r in behind.iter_rows(named=True)}
    bad_values = _invalid_value_counts(wh, where, params)
    return [
        dg.AssetCheckResult(
            check_name="metrics_up_to_date", passed=not stale and not refresh.errors,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"behind": dg.MetadataValue.json(stale), "errors": dg.MetadataValue.json(refresh.errors)}),
        dg.AssetCheckResult(
            check_name="metrics_values_valid", passed=not bad_values, severity=dg.AssetCheckSeverity.ERROR,
            metadata={"bad_rows": dg.MetadataValue.json(bad_values)}),
    ]


def _invalid_value_counts(wh: Warehouse, where: str, params: list) -> dict[str, int]:
    """Rows breaking a value rule, per rule (NaN compares greater than every number in DuckDB and Postgres)."""
    rules = {f"{m}_not_finite": f"({m} > 1e308 OR {m} < -1e308)" for m in METRIC_COLUMNS}
    rules.update({"max_drawdown_positive": "max_drawdown > 0", "win_rate_outside_0_1": "(win_rate < 0 OR win_rate > 1)",
                  "period_start_after_end": "period_start > period_end",
                  "current_drawdown_outside_range": "(current_drawdown > 0 OR current_drawdown < max_drawdown)",
                  "short_period_annualised": "(period_type IN ('week', 'month', 'quarter') "
                                             "AND (cagr IS NOT NULL OR calmar_ratio IS NOT NULL))",
                  "drawdown_dates_out_of_order": "(max_drawdown_start > max_drawdown_trough "
                                                 "OR max_drawdown_recovery <= max_drawdown_trough)"})
    select = ", ".join(f"SUM(CASE WHEN {rule} THEN 1 ELSE 0 END) AS {name}" for name, rule in rules.items())
    frame = wh.query(f"SELECT {select} FROM portfolio_metrics WHERE {where}", params)
    if frame.empty:
        return {}
    counts = {name: int(frame.at[0, name]) if frame.at[0, name] is not None and frame.at[0, name] == frame.at[0, name]
              else 0 for name in rules}
    return {name: n for name, n in counts.items() if n}
