"""Portfolio assets: registered definitions and holdings, and the daily NAV of every variant."""


import dagster as dg
from dagster import AssetExecutionContext
import pandas as pd

from tracking_pipeline.analytics.nav import NavError
from tracking_pipeline.analytics.overlays.registry import available_models, get_model
from tracking_pipeline.defs.common import DefsContext, SINGLE_RUN, partition_window, preview, table_metadata, \
    table_spec_metadata, with_names
from tracking_pipeline.defs.history import lookbacks, previous_day, require_history
from tracking_pipeline.defs.portfolios.checks import NAV_CHECKS, nav_check_results
from tracking_pipeline.services.nav import PRICE_LOOKBACK_SESSIONS, compute_nav_range
from tracking_pipeline.services.registry import register_portfolios
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


def build(ctx: DefsContext) -> list[dg.AssetsDefinition]:
    @dg.multi_asset(
        group_name=GROUP, pool="warehouse",
        specs=[
            dg.AssetSpec("portfolio_definitions", kinds=ctx.kinds, metadata=table_spec_metadata("portfolio_definitions"),
                         description="One row per portfolio file (stable integer portfolio_id per name); removed or "
                                     "is_active: false files are kept inactive with their history."),
            dg.AssetSpec("portfolio_holdings", kinds=ctx.kinds, deps=["portfolio_definitions"],
                         metadata=table_spec_metadata("portfolio_holdings"),
                         description="Target weights per effective_date from portfolios/* in the lake."),
        ],
        check_specs=[dg.AssetCheckSpec("portfolio_files_valid", asset="portfolio_definitions",
                                       description="Every portfolio file in the lake parsed and validated, and every "
                                                   "portfolio starts on or after the first daily partition.")],
    )
    def portfolio_registry(context: AssetExecutionContext, lake: LakeResource, warehouse: WarehouseResource,
                           tracking: TrackingSettings):
        """Register portfolios from portfolios/*.yaml|json; a bad file is reported and the others still register."""
        source = lake.open()
        with warehouse.session() as wh:
            definitions, holdings, errors = register_portfolios(source, wh, tracking.market_ticker,
                                                                first_partition=ctx.first_partition)
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
        group_name=GROUP, partitions_def=ctx.partitions, backfill_policy=SINGLE_RUN, pool="warehouse",
        deps=["price_data", "portfolio_holdings", "overlay_signals", previous_day("portfolio_daily_nav")],
        check_specs=NAV_CHECKS, kinds=ctx.kinds,
        metadata={**table_spec_metadata("portfolio_daily_nav"),
                  **lookbacks(price_data=PRICE_LOOKBACK_SESSIONS, overlay_signals=1)},
        description="Daily NAV of every active portfolio in every variant (raw, and each overlay it lists), per "
                    "CONTRACT §4. Path-dependent: a range continues from the stored NAV of the day before it. Fails "
                    "when no portfolio could be computed; one failing portfolio fails the ERROR check "
                    "all_portfolios_computed (and alerts) while the others are written.",
    )
    def portfolio_daily_nav(context: AssetExecutionContext, lake: LakeResource, warehouse: WarehouseResource,
                            tracking: TrackingSettings) -> dg.MaterializeResult:
        require_history(context)
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
            if run.errors and not run.portfolio_ids:
                raise dg.Failure(description=(
                    f"no portfolio could be computed for {start.date()}..{end.date()}, nothing was written: "
                    + "; ".join(f"{name}: {message}" for name, message in run.errors.items())),
                    metadata={"errors": dg.MetadataValue.json(run.errors)})
            if run.portfolio_ids:
                wh.replace(Write("portfolio_daily_nav", run.rows,
                                 {"trade_date": (start.date(), end.date()), "portfolio_id": run.portfolio_ids}))
            rows = run.rows
            summary = _latest_summary(wh, rows)
            return dg.MaterializeResult(
                metadata=table_metadata(rows, "trade_date", source.warnings, wh=wh,
                                        portfolios_updated=len(run.portfolio_ids), portfolios_failed=len(run.errors),
                                        latest=summary),
                check_results=nav_check_results(wh, start, end, run),
            )

    return [portfolio_registry, portfolio_daily_nav]


def _latest_summary(wh, rows: pd.DataFrame) -> dg.MetadataValue:  # noqa: ANN001 - a Warehouse
    if rows.empty:
        return dg.MetadataValue.md("_no rows_")
    last = rows[rows["trade_date"] == rows["trade_date"].max()]
    return preview(last[["portfolio_id", "trade_date", "variant", "nav", "cumulative_return", "equity_allocation"]],
                   rows=50, wh=wh)
