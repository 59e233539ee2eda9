"""Portfolio assets: registered definitions and holdings, and the daily NAV of every variant."""


import dagster as dg
from dagster import AssetExecutionContext
import pandas as pd

from tracking_pipeline.analytics.nav import NavError
from tracking_pipeline.analytics.overlays.registry import available_models, get_model
from tracking_pipeline.defs.common import SINGLE_RUN, partition_window, preview, table_metadata
from tracking_pipeline.defs.market.assets import price_data
from tracking_pipeline.defs.overlays.assets import overlay_signals
from tracking_pipeline.defs.partitions import trading_days
from tracking_pipeline.defs.portfolios.checks import NAV_CHECKS, nav_check_results
from tracking_pipeline.defs.portfolios.nav_service import compute_nav_range
from tracking_pipeline.defs.portfolios.registry import register_portfolios
from tracking_pipeline.defs.resources import LakeResource, TrackingSettings, WarehouseResource
from tracking_pipeline.lake.tables import load_model_config
from tracking_pipeline.warehouse import Write

GROUP = "portfolios"
# Run tag restricting portfolio_daily_nav to some portfolio ids (comma-separated), set by the registration
# sensor's per-portfolio history backfill so only that portfolio's rows are replaced.
PORTFOLIO_TAG = "tracking/portfolio"


def portfolios_from_tag(value: str | None) -> list[int] | None:
    """The portfolio ids of a PORTFOLIO_TAG value, or None (every portfolio) when the tag is absent."""
    if value is None or not value.strip():
        return None
    try:
        return [int(part) for part in value.split(",") if part.strip()]
    except ValueError as exc:
        raise dg.Failure(description=f"run tag {PORTFOLIO_TAG}={value!r}: expected comma-separated "
                                     "integer portfolio ids") from exc


@dg.multi_asset(
    group_name=GROUP, pool="warehouse",
    specs=[
        dg.AssetSpec("portfolio_definitions", kinds={"duckdb", "postgres"},
                     description="One row per portfolio file (stable integer portfolio_id per name); removed or "
                                 "is_active: false files are kept inactive with their history."),
        dg.AssetSpec("portfolio_holdings", kinds={"duckdb", "postgres"}, deps=["portfolio_definitions"],
                     description="Target weights per effective_date from portfolios/* in the lake."),
    ],
    check_specs=[dg.AssetCheckSpec("portfolio_files_valid", asset="portfolio_definitions",
                                   description="Every portfolio file in the lake parsed and validated.")],
)
def portfolio_registry(context: AssetExecutionContext, lake: LakeResource, warehouse: WarehouseResource,
                       tracking: TrackingSettings):
    """Register portfolios from portfolios/*.yaml|json; a bad file is reported and the others still register."""
    source = lake.open()
    with warehouse.session() as wh:
        definitions, holdings, errors = register_portfolios(source, wh, tracking.market_ticker)
    for file, message in errors.items():
        context.log.error(message)
    shown = definitions[["portfolio_id", "name", "start_date", "benchmark", "is_active"]]
    yield dg.MaterializeResult(asset_key="portfolio_definitions", metadata=table_metadata(
        shown, None, source.warnings, active=int(definitions["is_active"].sum()), invalid_files=len(errors)))
    yield dg.MaterializeResult(asset_key="portfolio_holdings", metadata=table_metadata(holdings, "effective_date"))
    yield dg.AssetCheckResult(
        check_name="portfolio_files_valid", asset_key="portfolio_definitions", passed=not errors,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"errors": dg.MetadataValue.md("\n".join(f"- {m}" for m in errors.values()) or "none")},
    )


@dg.asset(
    group_name=GROUP, partitions_def=trading_days, backfill_policy=SINGLE_RUN, pool="warehouse",
    deps=[price_data, "portfolio_holdings", overlay_signals], check_specs=NAV_CHECKS, kinds={"duckdb", "postgres"},
    description="Daily NAV of every active portfolio in every variant (raw, and each overlay it lists), per "
                "CONTRACT §4. A range continues from the last stored NAV before it.",
)
def portfolio_daily_nav(context: AssetExecutionContext, lake: LakeResource, warehouse: WarehouseResource,
                        tracking: TrackingSettings) -> dg.MaterializeResult:
    start, end = partition_window(context)
    with warehouse.session() as wh:
        source = lake.open()
        costs = {m: float(get_model(m).resolve_config(load_model_config(source, m)).get("cost_bps", 0.0))
                 for m in available_models()}
        only = portfolios_from_tag(context.run.tags.get(PORTFOLIO_TAG))
        if only is not None:
            context.log.info(f"run restricted to portfolio_id(s) {only} by tag {PORTFOLIO_TAG}")
        try:
            run = compute_nav_range(wh, start, end, tracking.rf_daily, costs, only)
        except NavError as exc:
            raise dg.Failure(description=str(exc)) from exc
        for name, message in run.errors.items():
            context.log.error(f"portfolio {name!r} not updated: {message}")
        if run.portfolio_ids:
            wh.replace(Write("portfolio_daily_nav", run.rows,
                             {"trade_date": (start.date(), end.date()), "portfolio_id": run.portfolio_ids}))
        rows = run.rows
        summary = _latest_summary(rows)
        return dg.MaterializeResult(
            metadata=table_metadata(rows, "trade_date", source.warnings, portfolios_updated=len(run.portfolio_ids),
                                    portfolios_failed=len(run.errors), latest=summary),
            check_results=nav_check_results(wh, start, end, run),
        )


def _latest_summary(rows: pd.DataFrame) -> dg.MetadataValue:
    if rows.empty:
        return dg.MetadataValue.md("_no rows_")
    last = rows[rows["trade_date"] == rows["trade_date"].max()]
    return preview(last[["portfolio_id", "trade_date", "variant", "nav", "cumulative_return", "equity_allocation"]],
                   rows=50)
