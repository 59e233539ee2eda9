"""Performance assets: periodic metrics of every portfolio, variant and benchmark."""

import time

import dagster as dg
from dagster import AssetExecutionContext
import polars as pl

from tracking_pipeline.defs.common import DefsContext, preview, table_spec_metadata
from tracking_pipeline.defs.performance.checks import METRICS_CHECKS, metrics_check_results
from tracking_pipeline.services.performance import kpi_table, refresh_metrics
from tracking_pipeline.defs.resources import TrackingSettings, WarehouseResource

GROUP = "performance"


class MetricsConfig(dg.Config):
    """full_refresh: recompute every period of every portfolio instead of only the periods with changed days."""

    full_refresh: bool = False


def build(ctx: DefsContext) -> list[dg.AssetsDefinition]:
    @dg.asset(
        group_name=GROUP, deps=["portfolio_daily_nav", "price_data"], check_specs=METRICS_CHECKS, pool="warehouse",
        kinds=ctx.kinds, metadata=table_spec_metadata("portfolio_metrics"),
        description="Total return, CAGR, volatility, Sharpe, Sortino, max drawdown (with its peak, trough, recovery "
                    "and duration), current drawdown, Calmar, win rate, VaR/CVaR 95 and 99, 21-day VaR 95, beta, alpha, "
                    "Treynor, tracking error and information ratio (CONTRACT §4) of every active portfolio, variant "
                    "and its benchmark (variant 'benchmark') per week, month, quarter, year, ytd and all. Periods under "
                    "a year have no CAGR/Calmar, periods under 20 returns no risk figures (GIPS). Incremental: "
                    "only the periods containing changed or new NAV days are recomputed (docs/metrics.md).",
    )
    def portfolio_metrics(context: AssetExecutionContext, config: MetricsConfig, warehouse: WarehouseResource,
                          tracking: TrackingSettings) -> dg.MaterializeResult:
        t0 = time.monotonic()
        with warehouse.session() as wh:
            refresh = refresh_metrics(wh, tracking.risk_free_rate, full=config.full_refresh)
            for message in refresh.errors.values():
                context.log.error(message)
            names = dict(zip(refresh.portfolios["portfolio_id"].to_list(), refresh.portfolios["name"].to_list()))
            plan = {names[r["portfolio_id"]]: ("full" if r["full"] else f"from {r['since']}")
                    for r in refresh.plan.iter_rows(named=True)}
            rows = refresh.rows
            period_counts = rows.group_by("period_type").len().sort("period_type")
            return dg.MaterializeResult(
                metadata={
                    "dagster/row_count": refresh.rows_total,
                    "rows_recomputed": rows.height,
                    "rows_total": refresh.rows_total,
                    "recomputed_by_period_type": dg.MetadataValue.json(dict(period_counts.iter_rows())),
                    "portfolios_recomputed": dg.MetadataValue.json(plan),
                    "portfolios_unchanged": len(refresh.unchanged),
                    "portfolios_failed": len(refresh.errors),
                    "risk_free_rate": tracking.risk_free_rate,
                    "kpi": dg.MetadataValue.md(kpi_table(wh, refresh.portfolios)),
                    "preview": preview(rows.filter(pl.col("period_type") == "month").to_pandas(), wh=wh),
                    "seconds": round(time.monotonic() - t0, 3),
                },
                check_results=metrics_check_results(wh, refresh),
            )

    return [portfolio_metrics]
