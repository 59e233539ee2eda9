"""Trade and strategy analytics assets (seeds 001 and 004), all partitioned by trading day:

`routing_decisions` and `trade_tracking` from the lake's routing/* and trades/* files (open trades marked to
market from price_data), `strategy_metrics`, `trade_outcomes` and `confidence_calibration` over trailing 30, 90,
365 days and all time, and the `volume_spike_candidates` scan. docs/strategies.md defines every column.
"""

from collections.abc import Callable

import dagster as dg
from dagster import AssetExecutionContext
import pandas as pd

from tracking_pipeline.analytics.strategy_metrics import ALL, top_performers
from tracking_pipeline.defs.common import DefsContext, SINGLE_RUN, partition_window, preview, table_metadata, \
    table_spec_metadata
from tracking_pipeline.defs.history import lookbacks, previous_day, require_history
from tracking_pipeline.defs.resources import LakeResource, WarehouseResource
from tracking_pipeline.lake import Lake, LakeInputError
from tracking_pipeline.lake.tables import priced_tickers
from tracking_pipeline.lake.trades import load_trade_analytics_config
from tracking_pipeline.services.trades import (
    LedgerRun, compute_calibration, compute_outcomes, compute_strategy_metrics, compute_volume_scan,
    refresh_routing, refresh_trades,
)
from tracking_pipeline.warehouse import Warehouse, Write

GROUP = "trades"
WINDOW_HISTORY = 260
"""Sessions of trade_tracking a window reads (365 calendar days); `all` relies on the asset's previous day."""
SCAN_HISTORY = 20


def _files_check(check: str, run: LedgerRun, folder: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=check, passed=not run.errors, severity=dg.AssetCheckSeverity.ERROR,
        metadata={"files_loaded": len(run.files), "files_rejected": len(run.errors),
                  "errors": dg.MetadataValue.md("\n".join(f"- {m}" for m in run.errors.values()) or "none")},
        description=f"Every {folder}/* file is valid; a bad one is left out whole (its previous rows kept) and "
                    "named here with its row and field.")


def _config(lake: Lake):  # noqa: ANN202 - (ScanConfig, OutcomeConfig)
    try:
        return load_trade_analytics_config(lake)
    except LakeInputError as exc:
        raise dg.Failure(description=str(exc)) from exc


def _write_range(context: AssetExecutionContext, warehouse: WarehouseResource, table: str, date_column: str,
                 compute: Callable[[Warehouse, pd.Timestamp, pd.Timestamp], pd.DataFrame]) -> pd.DataFrame:
    """Check the history, compute the partition range's rows and replace the range's rows of `table` with them."""
    require_history(context)
    start, end = partition_window(context)
    with warehouse.session() as wh:
        rows = compute(wh, start, end)
        wh.replace(Write(table, rows, {date_column: (start.date(), end.date())}))
    return rows


def _latest(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    return frame[frame[column] == frame[column].max()] if len(frame) else frame


def build(ctx: DefsContext) -> list[dg.AssetsDefinition]:
    daily = dict(group_name=GROUP, partitions_def=ctx.partitions, backfill_policy=SINGLE_RUN, pool="warehouse",
                 kinds=ctx.kinds)

    @dg.asset(
        **daily, metadata=table_spec_metadata("routing_decisions"), deps=["price_data"],
        check_specs=[dg.AssetCheckSpec("routing_files_valid", asset="routing_decisions")],
        description="Routing decisions (seed 001) from the lake's routing/* files, partitioned by the session of "
                    "their timestamp: symbol (one the lake has prices for), selected strategy, classification, "
                    "confidence, reason. After price_data: a day whose prices failed has no decisions either.",
    )
    def routing_decisions(context: AssetExecutionContext, lake: LakeResource,
                          warehouse: WarehouseResource) -> dg.MaterializeResult:
        require_history(context)
        start, end = partition_window(context)
        source = lake.open()
        with warehouse.session() as wh:
            run = refresh_routing(wh, source, start, end, priced_tickers(source))
            wh.replace(*run.writes)
        for message in run.errors.values():
            context.log.error(message)
        return dg.MaterializeResult(
            metadata=table_metadata(run.rows.drop(columns=["reason"]), "decision_date", source.warnings,
                                    files=len(run.files)),
            check_results=[_files_check("routing_files_valid", run, "routing")])

    @dg.asset(
        **daily, metadata=table_spec_metadata("trade_tracking"), deps=["price_data", routing_decisions],
        check_specs=[dg.AssetCheckSpec("trade_files_valid", asset="trade_tracking")],
        description="Every trade of the lake's trades/* ledger (seed 001) with P&L in currency and percent, hold "
                    "days and was_profitable; a trade belongs to the session of its exit, and open trades to the "
                    "latest session with prices, where they are marked to market from price_data (is_open). "
                    "Matched to its routing decision: entry delay and timing cost (seed 004).",
    )
    def trade_tracking(context: AssetExecutionContext, lake: LakeResource,
                       warehouse: WarehouseResource) -> dg.MaterializeResult:
        require_history(context)
        start, end = partition_window(context)
        source = lake.open()
        with warehouse.session() as wh:
            run = refresh_trades(wh, source, start, end, priced_tickers(source))
            wh.replace(*run.writes)
        for message in run.errors.values():
            context.log.error(message)
        rows = run.rows
        open_rows = rows[rows["is_open"].astype(bool)] if len(rows) else rows
        return dg.MaterializeResult(
            metadata=table_metadata(
                rows[["trade_id", "status_date", "is_open", "profit_loss", "profit_loss_pct", "hold_days"]],
                "status_date", source.warnings, closed_trades=len(rows) - len(open_rows), open_trades=len(open_rows),
                marked_open_trades=run.frontier, files=len(run.files),
                open_positions=preview(open_rows[["trade_id", "symbol", "strategy", "entry_date", "entry_price",
                                                  "mark_date", "mark_price", "profit_loss_pct"]], rows=50)),
            check_results=[_files_check("trade_files_valid", run, "trades")])

    windowed = lookbacks(trade_tracking=WINDOW_HISTORY)

    @dg.asset(
        **daily, metadata={**table_spec_metadata("strategy_metrics"), **windowed},
        deps=[trade_tracking, previous_day("strategy_metrics")],
        description="Seed 001's strategy metrics per strategy x stock type (and per strategy and overall, labelled "
                    f"'{ALL}') over the trailing 30, 90, 365 days and all time ending each session: trades, wins, "
                    "losses, win rate, average profit / winner / loser, total return, max drawdown, hold days, "
                    "Sharpe, profit factor, confidence accuracy and seed 004's status.",
    )
    def strategy_metrics(context: AssetExecutionContext, lake: LakeResource,
                         warehouse: WarehouseResource) -> dg.MaterializeResult:
        _, outcome_config = _config(lake.open())
        rows = _write_range(context, warehouse, "strategy_metrics", "period_end",
                            lambda wh, start, end: compute_strategy_metrics(wh, start, end, outcome_config))
        latest = _latest(rows, "period_end")
        shown = ["strategy", "stock_type", "total_trades", "win_rate", "avg_profit", "sharpe_ratio",
                 "profit_factor", "max_drawdown", "status"]
        return dg.MaterializeResult(metadata=table_metadata(
            rows[["strategy", "stock_type", "period_type", "period_end", "total_trades", "win_rate", "status"]],
            "period_end",
            latest_all_time=preview(latest[latest["period_type"] == "all"][shown], rows=50),
            latest_30d=preview(latest[latest["period_type"] == "30d"][shown], rows=50),
            top_by_win_rate=preview(top_performers(rows, "win_rate", "all", min_trades=5)[["rank", *shown]])))

    @dg.asset(
        **daily, metadata={**table_spec_metadata("trade_outcomes"), **windowed},
        deps=[trade_tracking, previous_day("trade_outcomes")],
        description="Seed 004's outcome monitoring over all trades per session and window: win rate, average "
                    "return, explosive growth rate, confidence accuracy, Brier score, market timing, the baseline "
                    "and the progress towards it, and the CRITICAL / WARNING / GOOD status (thresholds and baseline "
                    "in reference/trade_analytics.yaml).",
    )
    def trade_outcomes(context: AssetExecutionContext, lake: LakeResource,
                       warehouse: WarehouseResource) -> dg.MaterializeResult:
        _, outcome_config = _config(lake.open())
        rows = _write_range(context, warehouse, "trade_outcomes", "as_of_date",
                            lambda wh, start, end: compute_outcomes(wh, start, end, outcome_config))
        latest = _latest(rows, "as_of_date")
        current = latest[latest["period_type"] == outcome_config.status_period]
        return dg.MaterializeResult(metadata=table_metadata(
            rows[["as_of_date", "period_type", "closed_trades", "win_rate", "avg_return", "status"]], "as_of_date",
            status=str(current["status"].iloc[0]) if len(current) else "no trades",
            baseline=outcome_config.baseline.label,
            latest=preview(latest[["period_type", "closed_trades", "win_rate", "avg_return", "explosive_rate",
                                   "confidence_accuracy", "brier_score", "recovery_progress", "status"]])))

    @dg.asset(
        **daily, metadata={**table_spec_metadata("confidence_calibration"), **windowed},
        deps=[trade_tracking, previous_day("confidence_calibration")],
        description="Routing confidence against outcomes per session, window and band (>80%, 50-80%, <50%, all): "
                    "realised win rate vs mean confidence, seed 001's accuracy and the Brier score.",
    )
    def confidence_calibration(context: AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        rows = _write_range(context, warehouse, "confidence_calibration", "as_of_date", compute_calibration)
        latest = _latest(rows, "as_of_date")
        return dg.MaterializeResult(metadata=table_metadata(
            rows[["as_of_date", "period_type", "band", "trades", "win_rate", "accuracy", "brier_score"]],
            "as_of_date", latest_all_time=preview(latest[latest["period_type"] == "all"][
                ["band", "trades", "win_rate", "mean_confidence", "accuracy", "brier_score"]])))

    @dg.asset(
        **daily, metadata={**table_spec_metadata("volume_spike_candidates"), **lookbacks(price_data=SCAN_HISTORY)},
        deps=["price_data"],
        description="Seed 004's volume-spike scan: tickers whose volume is at least a multiple of their average "
                    "over the previous 20 sessions with a price inside a band (seed defaults 15x and $1-$8; the "
                    "lake's reference/trade_analytics.yaml overrides them), each with its similarity to the "
                    "configured reference patterns.",
    )
    def volume_spike_candidates(context: AssetExecutionContext, lake: LakeResource,
                                warehouse: WarehouseResource) -> dg.MaterializeResult:
        scan_config, _ = _config(lake.open())
        rows = _write_range(context, warehouse, "volume_spike_candidates", "trade_date",
                            lambda wh, start, end: compute_volume_scan(wh, start, end, scan_config))
        return dg.MaterializeResult(metadata=table_metadata(
            rows.drop(columns=["similarities"]), "trade_date", candidates=len(rows),
            min_volume_multiple=scan_config.min_volume_multiple,
            price_band=f"{scan_config.min_price:g} to {scan_config.max_price:g}",
            patterns=", ".join(p.name for p in scan_config.patterns)))

    return [routing_decisions, trade_tracking, strategy_metrics, trade_outcomes, confidence_calibration,
            volume_spike_candidates]
