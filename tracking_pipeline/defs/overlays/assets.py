"""overlay_signals: each registered model's decision at the close of every trading day (no look-ahead)."""


import dagster as dg
from dagster import AssetExecutionContext
import pandas as pd

from tracking_pipeline.analytics.overlays.registry import available_models, compute_overlay_signals
from tracking_pipeline.defs.common import DefsContext, SINGLE_RUN, partition_window, table_metadata, \
    table_spec_metadata
from tracking_pipeline.defs.history import previous_day, require_history
from tracking_pipeline.defs.resources import LakeResource, WarehouseResource
from tracking_pipeline.lake.tables import load_allocation_history, load_model_config
from tracking_pipeline.warehouse import Write

FEATURE_COLUMNS = ["close", "sma_50", "sma_200", "rsi_14", "momentum_63", "momentum_126", "realized_vol_21",
                   "drawdown", "vix_close"]


def build(ctx: DefsContext) -> list[dg.AssetsDefinition]:
    @dg.asset(
        group_name="overlays", partitions_def=ctx.partitions, backfill_policy=SINGLE_RUN, kinds=ctx.kinds,
        deps=["market_features", previous_day("overlay_signals")], pool="warehouse",
        metadata=table_spec_metadata("overlay_signals"),
        description="One row per overlay model per trading day: target and actual equity allocation decided at the "
                    "close from market features up to that day, with the inputs (signals) and per-factor impacts. "
                    "Path-dependent (an allocation changes only past the rebalance threshold): day D continues D-1.",
    )
    def overlay_signals(context: AssetExecutionContext, lake: LakeResource,
                        warehouse: WarehouseResource) -> dg.MaterializeResult:
        require_history(context)
        start, end = partition_window(context)
        with warehouse.session() as wh:
            features = wh.query(f"SELECT trade_date, {', '.join(FEATURE_COLUMNS)} FROM market_features "
                                "WHERE trade_date <= ? ORDER BY trade_date", [end.date()])
            features = features.set_index(pd.DatetimeIndex(features.pop("trade_date"))).astype(float)
            source = lake.open()
            frames, changes = [], {}
            for model in available_models():
                signals = compute_overlay_signals(model, features, load_model_config(source, model),
                                                  load_allocation_history(source, model), since=start)
                window = signals.loc[start:end].rename_axis("trade_date").reset_index().assign(model=model)
                frames.append(window)
                changes[model] = int(window["trade_required"].sum())
            rows = pd.concat(frames, ignore_index=True)
            wh.replace(Write("overlay_signals", rows, {"trade_date": (start.date(), end.date())}))
            shown = rows[["trade_date", "model", "target_allocation", "actual_allocation", "trade_required"]]
            return dg.MaterializeResult(metadata=table_metadata(
                shown, "trade_date", source.warnings, allocation_changes=dg.MetadataValue.json(changes)))

    return [overlay_signals]
