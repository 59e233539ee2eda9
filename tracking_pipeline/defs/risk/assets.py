"""Risk assets: position market betas, portfolio snapshots, rebalancing events and stress tests, per-ticker
indicators, correlations.

Daily-partitioned: `position_market_betas`, `portfolio_snapshots`, `rebalancing_events`, `portfolio_rolling_metrics`,
`asset_performance_metrics` (each computes a whole partition range in one vectorised pass, reading the history it needs from the warehouse). Unpartitioned
(run by downstream_job after the daily chain): `portfolio_stress_tests` (month ends and the latest day) and
`asset_correlations` (month ends and the latest day). docs/risk.md explains the choices.
"""

import datetime as dt
from functools import lru_cache

import dagster as dg
from dagster import AssetExecutionContext
import pandas as pd

from tracking_pipeline.defs.common import DefsContext, SINGLE_RUN, partition_window, \
    preview, table_metadata, table_spec_metadata
from tracking_pipeline.defs.history import lookbacks, previous_day, require_history
from tracking_pipeline.services.nav import load_active_portfolios
from tracking_pipeline.defs.resources import LakeResource, TrackingSettings, WarehouseResource
from tracking_pipeline.defs.risk.checks import (
    BETA_CHECKS, CORRELATION_CHECKS, METRIC_CHECKS, REBALANCING_CHECKS, ROLLING_CHECKS, SNAPSHOT_CHECKS,
    STRESS_CHECKS, beta_check_results, correlation_check_results, metric_check_results, rebalancing_check_results,
    rolling_check_results, snapshot_check_results, stress_check_results,
)
from tracking_pipeline.services.market_risk import (
    BETA_METHOD, BETA_WINDOW, CORRELATION_WINDOWS, CORRELATIONS, RETURN_HORIZONS, RiskInputError, compute_asset_metrics,
    compute_betas, refresh_correlations,
)
from tracking_pipeline.services.fingerprints import stored_summary
from tracking_pipeline.services.portfolio_risk import (
    STRESS_TESTS, THRESHOLD_ENV, compute_snapshots, compute_stress_tests, rebalance_threshold,
)
from tracking_pipeline.services.rebalancing import COST_ENV, compute_rebalancing_events, rebalance_cost_bps
from tracking_pipeline.services.rolling_metrics import ROLLING_LOOKBACK, ROLLING_WINDOWS, compute_rolling_metrics
from tracking_pipeline.lake import LakeInputError
from tracking_pipeline.lake.tables import load_benchmark_sector_weights, load_sectors
from tracking_pipeline.warehouse import Warehouse, Write

GROUP = "risk"


def build(ctx: DefsContext) -> list[dg.AssetsDefinition]:
    @dg.asset(
        group_name=GROUP, partitions_def=ctx.partitions, backfill_policy=SINGLE_RUN, pool="warehouse",
        deps=["price_data"], check_specs=BETA_CHECKS, kinds=ctx.kinds,
        metadata={**table_spec_metadata("position_market_betas"), **lookbacks(price_data=BETA_WINDOW)},
        description=f"Rolling {BETA_WINDOW}-day OLS of every ticker's daily returns on the market ticker's "
                    f"(method {BETA_METHOD}, CONTRACT §4): beta (capped to [-5, 5]), alpha, R^2, std error, p-value, "
                    "observations, is_significant (p < 0.10, seed 003); rows only with >= 30 paired observations. "
                    "One pass over the whole range.",
    )
    def position_market_betas(context: AssetExecutionContext, warehouse: WarehouseResource,
                              tracking: TrackingSettings) -> dg.MaterializeResult:
        require_history(context)
        start, end = partition_window(context)
        with warehouse.session() as wh:
            market = tracking.market_ticker
            try:
                rows = compute_betas(wh, start, end, market)
            except RiskInputError as exc:
                raise dg.Failure(description=str(exc)) from exc
            wh.replace(Write("position_market_betas", rows, {
                "calc_date": (start.date(), end.date()), "window_days": [BETA_WINDOW], "method": [BETA_METHOD],
                "market_index": [market]}))
            last = rows[rows["calc_date"] == rows["calc_date"].max()].sort_values("beta", ascending=False)
            return dg.MaterializeResult(
                metadata=table_metadata(rows, "calc_date", market_index=market, window_days=BETA_WINDOW,
                                        tickers=int(rows["ticker"].nunique()),
                                        latest=preview(last[["calc_date", "ticker", "beta", "r_squared", "p_value",
                                                             "observations"]], rows=200)),
                check_results=beta_check_results(wh, start, end, market),
            )


    @dg.asset(
        group_name=GROUP, partitions_def=ctx.partitions, backfill_policy=SINGLE_RUN, pool="warehouse",
        deps=[position_market_betas, "portfolio_daily_nav"], check_specs=SNAPSHOT_CHECKS, kinds=ctx.kinds,
        metadata=table_spec_metadata("portfolio_snapshots"),
        description="Daily risk snapshot of every active portfolio (raw variant, CONTRACT §4): weighted and direct "
                    "market beta, sector exposure vs the benchmark with positions per sector and the largest over- "
                    "and underweight, unclassified tickers, HHI (0-10,000) / effective N / top-3 / top-10 with their "
                    "names, realized volatility 21/63d and risk level (seed 003 bands), HAR-RV forecast (insanity "
                    "filter flagged), trend and percentile, allocation drift, rebalance_recommended (drift above "
                    f"{THRESHOLD_ENV}, default 0.05) and the positions outside the portfolio file's bounds.",
    )
    def portfolio_snapshots(context: AssetExecutionContext, lake: LakeResource, warehouse: WarehouseResource,
                            tracking: TrackingSettings) -> dg.MaterializeResult:
        require_history(context)
        start, end = partition_window(context)
        with warehouse.session() as wh:
            source = lake.open()
            try:
                threshold = rebalance_threshold()
                sectors = load_sectors(source)
                benchmark = lru_cache(maxsize=None)(lambda code: load_benchmark_sector_weights(source, code))
                run = compute_snapshots(wh, start, end, tracking.market_ticker, tracking.rf_daily, sectors, benchmark,
                                        threshold)
            except (RiskInputError, LakeInputError, ValueError) as exc:
                raise dg.Failure(description=str(exc)) from exc
            for name, message in run.errors.items():
                context.log.error(f"portfolio {name!r}: no snapshots: {message}")
            if run.errors and not run.portfolio_ids:
                raise dg.Failure(description=(
                    f"no portfolio snapshot could be computed for {start.date()}..{end.date()}, nothing was "
                    "written: " + "; ".join(f"{name}: {message}" for name, message in run.errors.items())))
            if run.portfolio_ids:
                wh.replace(Write("portfolio_snapshots", run.rows,
                                 {"snapshot_date": (start.date(), end.date()), "portfolio_id": run.portfolio_ids}))
            json_columns = ["sector_exposure", "sector_positions", "unclassified_tickers", "top_3_positions",
                            "top_10_positions", "bounds_breaches"]
            rows = run.rows.drop(columns=json_columns, errors="ignore")
            shown = rows.rename(columns={"hhi": "hhi (0-10,000)", "realized_volatility_63d": "volatility 63d",
                                         "expected_volatility_21d": "HAR forecast 21d",
                                         "expected_volatility_filtered": "forecast filtered"})
            return dg.MaterializeResult(
                metadata=table_metadata(rows, "snapshot_date", source.warnings, wh=wh, rebalance_threshold=threshold,
                                        portfolios_updated=len(run.portfolio_ids), portfolios_failed=len(run.errors),
                                        latest=_latest_per_portfolio(wh, shown, "snapshot_date", [
                                            "market_beta_weighted", "market_beta_direct", "hhi (0-10,000)",
                                            "effective_num_positions", "top_3_concentration", "volatility 63d",
                                            "risk_level", "HAR forecast 21d", "forecast filtered", "volatility_trend",
                                            "largest_overweight_sector", "largest_underweight_sector",
                                            "max_allocation_drift", "rebalance_recommended"])),
                check_results=snapshot_check_results(wh, start, end, run),
            )


    @dg.asset(
        group_name=GROUP, partitions_def=ctx.partitions, backfill_policy=SINGLE_RUN, pool="warehouse",
        deps=["portfolio_daily_nav", "price_data"], check_specs=REBALANCING_CHECKS, kinds=ctx.kinds,
        metadata=table_spec_metadata("rebalancing_events"),
        description="Every rebalance of every active portfolio (seed 002): the initial investment, each scheduled "
                    "rebalance (a holdings date) and each day the drift from the targets rises above "
                    f"{THRESHOLD_ENV} (default 0.05) with the trades that would restore them; pre and post weights, "
                    "trades per ticker (weight change, value, shares at that close), one-way turnover and the cost "
                    f"estimated at {COST_ENV} basis points (default 10) of the traded value.",
    )
    def rebalancing_events(context: AssetExecutionContext, warehouse: WarehouseResource,
                           tracking: TrackingSettings) -> dg.MaterializeResult:
        require_history(context)
        start, end = partition_window(context)
        with warehouse.session() as wh:
            try:
                threshold, cost_bps = rebalance_threshold(), rebalance_cost_bps()
                run = compute_rebalancing_events(wh, start, end, tracking.rf_daily, threshold, cost_bps)
            except (RiskInputError, ValueError) as exc:
                raise dg.Failure(description=str(exc)) from exc
            for name, message in run.errors.items():
                context.log.error(f"portfolio {name!r}: no rebalancing events: {message}")
            if run.errors and not run.portfolio_ids:
                raise dg.Failure(description="no rebalancing events could be computed, nothing was written: "
                                 + "; ".join(f"{name}: {message}" for name, message in run.errors.items()))
            if run.portfolio_ids:
                wh.replace(*run.writes)
            shown = run.rows[["portfolio_id", "event_date", "event_type", "nav", "max_drift", "turnover",
                              "traded_value", "estimated_cost"]] if len(run.rows) else run.rows
            return dg.MaterializeResult(
                metadata=table_metadata(shown, "event_date", wh=wh, rebalance_threshold=threshold, cost_bps=cost_bps,
                                        events_by_type=dg.MetadataValue.json(
                                            run.rows["event_type"].value_counts().to_dict() if len(run.rows) else {}),
                                        portfolios_failed=len(run.errors)),
                check_results=rebalancing_check_results(wh, start, end, run),
            )

    @dg.asset(
        group_name=GROUP, partitions_def=ctx.partitions, backfill_policy=SINGLE_RUN, pool="warehouse",
        deps=["portfolio_daily_nav", "price_data"], check_specs=ROLLING_CHECKS, kinds=ctx.kinds,
        metadata={**table_spec_metadata("portfolio_rolling_metrics"),
                  **lookbacks(portfolio_daily_nav=ROLLING_LOOKBACK, price_data=ROLLING_LOOKBACK)},
        description=f"Rolling {' and '.join(map(str, ROLLING_WINDOWS))}-day Sharpe, Sortino, volatility, beta to the "
                    "benchmark and max drawdown of every active portfolio, variant and its benchmark (variant "
                    "'benchmark'), per trading day; NULL until a window is full. Equal to quantstats' rolling_sharpe / "
                    "rolling_sortino / rolling_volatility (docs/metrics.md). A range reads only the year of returns "
                    "before it.",
    )
    def portfolio_rolling_metrics(context: AssetExecutionContext, warehouse: WarehouseResource,
                                  tracking: TrackingSettings) -> dg.MaterializeResult:
        require_history(context)
        start, end = partition_window(context)
        with warehouse.session() as wh:
            run = compute_rolling_metrics(wh, start, end, tracking.risk_free_rate)
            if run.portfolio_ids:
                wh.replace(run.write(start, end))
            last = run.rows[run.rows["trade_date"] == run.rows["trade_date"].max()] if len(run.rows) else run.rows
            return dg.MaterializeResult(
                metadata=table_metadata(run.rows, "trade_date", risk_free_rate=tracking.risk_free_rate,
                                        latest=preview(last, rows=60, wh=wh)),
                check_results=rolling_check_results(wh, start, end, run.portfolio_ids),
            )

    @dg.asset(
        group_name=GROUP, pool="warehouse", deps=[portfolio_snapshots], check_specs=STRESS_CHECKS, kinds=ctx.kinds,
        metadata=table_spec_metadata("portfolio_stress_tests"),
        description="Stress tests of every active portfolio on each month end and its latest snapshot: market shocks "
                    "-10/-20/-30/+10% through the weighted beta, and replays of the named crises already over by that "
                    "day (2018 Q4 sell-off, COVID crash, 2022 bear market) held with that day's weights. Only dates "
                    "whose inputs changed are recomputed.",
    )
    def portfolio_stress_tests(context: AssetExecutionContext, warehouse: WarehouseResource,
                               tracking: TrackingSettings) -> dg.MaterializeResult:
        with warehouse.session() as wh:
            try:
                run = compute_stress_tests(wh, tracking.market_ticker, tracking.rf_daily)
            except RiskInputError as exc:
                raise dg.Failure(description=str(exc)) from exc
            for name, message in run.errors.items():
                context.log.error(f"portfolio {name!r}: no stress tests: {message}")
            if run.writes:
                wh.replace(*run.writes)
            latest = wh.query("SELECT portfolio_id, snapshot_date, scenario, market_shock, expected_return, expected_pnl "
                              "FROM portfolio_stress_tests s WHERE snapshot_date = (SELECT MAX(snapshot_date) FROM "
                              "portfolio_stress_tests t WHERE t.portfolio_id = s.portfolio_id) "
                              "ORDER BY portfolio_id, scenario")
            written = sum(len(w.scope["snapshot_date"]) * len(w.scope["portfolio_id"]) for w in run.writes
                          if w.table == "portfolio_stress_tests")
            return dg.MaterializeResult(
                metadata={**stored_summary(wh, STRESS_TESTS), "preview": preview(latest, wh=wh),
                          "portfolios": len(run.portfolio_ids), "dates_written": written, "rows_written": len(run.rows),
                          "latest": _with_names(wh, latest, ["snapshot_date", "scenario", "market_shock",
                                                             "expected_return", "expected_pnl"])},
                check_results=stress_check_results(wh),
            )


    @dg.asset(
        group_name=GROUP, partitions_def=ctx.partitions, backfill_policy=SINGLE_RUN, pool="warehouse",
        deps=["price_data", previous_day("asset_performance_metrics")], check_specs=METRIC_CHECKS, kinds=ctx.kinds,
        metadata={**table_spec_metadata("asset_performance_metrics"),
                  **lookbacks(price_data=max(RETURN_HORIZONS.values()))},
        description="Per ticker and day: SMA 20/50/200, EMA 12/26, RSI 14, MACD and signal, Bollinger (20, 2), ATR 14, "
                    "stochastic %K/%D, OBV, returns 1m..5y, and 1-year volatility, beta and Sharpe (docs/risk.md). "
                    "The recursive ones continue from the state stored after the day before "
                    "(asset_indicator_state) when it matches the stored prices, else from the whole history: the same "
                    "values either way.",
    )
    def asset_performance_metrics(context: AssetExecutionContext, warehouse: WarehouseResource,
                                  tracking: TrackingSettings) -> dg.MaterializeResult:
        require_history(context)
        start, end = partition_window(context)
        with warehouse.session() as wh:
            metrics = compute_asset_metrics(wh, start, end, tracking.market_ticker, tracking.rf_daily)
            wh.replace(*metrics.writes(start, end))
            rows = metrics.rows
            shown = rows[["trade_date", "ticker", "sma_50", "rsi_14", "macd", "atr_14", "return_1y", "volatility_1y",
                          "beta_1y", "sharpe_1y"]] if len(rows) else rows
            return dg.MaterializeResult(
                metadata=table_metadata(shown, "trade_date", tickers=int(rows["ticker"].nunique()) if len(rows) else 0),
                check_results=metric_check_results(wh, start, end),
            )


    @dg.asset(
        group_name=GROUP, pool="warehouse", deps=["price_data", "portfolio_holdings"], check_specs=CORRELATION_CHECKS,
        kinds=ctx.kinds, metadata=table_spec_metadata("asset_correlations"),
        description="Pairwise correlations of daily returns (with p-values) over "
                    f"{', '.join(map(str, CORRELATION_WINDOWS))} sessions of every pair of tickers an active portfolio "
                    "holds together, on every month end and the latest day; only dates whose inputs changed are "
                    "recomputed.",
    )
    def asset_correlations(context: AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        with warehouse.session() as wh:
            end = wh.scalar("SELECT MAX(trade_date) FROM price_data")
            portfolios = load_active_portfolios(wh, pd.Timestamp(end)) if end is not None else []
            dates_written: list[dt.date] = []
            rows_written = 0
            for batch in refresh_correlations(wh, portfolios):
                if batch.writes:
                    wh.replace(*batch.writes)
                dates_written += batch.dates
                rows_written += len(batch.rows)
            last = wh.query("SELECT calc_date, window_days, ticker_a, ticker_b, correlation, p_value, observations "
                            "FROM asset_correlations WHERE window_days = 60 AND calc_date = "
                            "(SELECT MAX(calc_date) FROM asset_correlations) ORDER BY ABS(correlation) DESC, ticker_a, "
                            "ticker_b LIMIT 10")
            return dg.MaterializeResult(
                metadata={**stored_summary(wh, CORRELATIONS),
                          "calc_dates_written": len(dates_written), "rows_written": rows_written,
                          "preview": preview(last, rows=10)},
                check_results=correlation_check_results(wh, dates_written),
            )

    return [position_market_betas, portfolio_snapshots, rebalancing_events, portfolio_rolling_metrics,
            portfolio_stress_tests, asset_performance_metrics, asset_correlations]


def _with_names(wh: Warehouse, frame: pd.DataFrame, columns: list[str]) -> dg.MetadataValue:
    """A markdown table of `frame` with the portfolio name in front."""
    if frame.empty:
        return preview(frame)
    return preview(frame[["portfolio_id", *columns]], rows=len(frame), wh=wh)


def _latest_per_portfolio(wh: Warehouse, rows: pd.DataFrame, date_column: str,
                          columns: list[str]) -> dg.MetadataValue:
    if rows.empty:
        return preview(rows)
    latest = rows[rows[date_column] == rows.groupby("portfolio_id")[date_column].transform("max")]
    return _with_names(wh, latest, [date_column, *columns])
