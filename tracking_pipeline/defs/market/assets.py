"""Market data assets: validated daily bars and the market ticker's features."""

import json

import dagster as dg
from dagster import AssetExecutionContext
import numpy as np
import pandas as pd

from tracking_pipeline.analytics.market_features import market_indicators
from tracking_pipeline.defs.common import DefsContext, SINGLE_RUN, partition_window, table_metadata, \
    table_spec_metadata, window_sessions
from tracking_pipeline.defs.history import lookbacks, previous_day, require_history
from tracking_pipeline.defs.market.checks import price_check_results, PRICE_CHECKS
from tracking_pipeline.defs.partitions import CLOSE_HOUR, NYSE_TIMEZONE
from tracking_pipeline.defs.resources import LakeResource, TrackingSettings, WarehouseResource
from tracking_pipeline.lake.tables import load_features, load_prices
from tracking_pipeline.warehouse import Write

GROUP = "market"
FEATURE_LOOKBACK = 252
"""Sessions of prices the market features look back over (SMA 200, momentum 126, a year of drawdown); the
recursive ones (Wilder RSI, drawdown from the running peak) continue from the previous day's partition."""


def build(ctx: DefsContext) -> list[dg.AssetsDefinition]:
    @dg.asset(
        group_name=GROUP, partitions_def=ctx.partitions, backfill_policy=SINGLE_RUN, check_specs=PRICE_CHECKS,
        kinds=ctx.kinds, pool="warehouse", metadata=table_spec_metadata("price_data"),
        description="Validated daily bars (adj_close required; open/high/low/close/volume optional) from prices/** "
                    "in the lake for the partition's trading days. A day the lake has no price for fails (and "
                    "stays unmaterialized) instead of storing nothing.",
    )
    def price_data(context: AssetExecutionContext, lake: LakeResource,
                   warehouse: WarehouseResource) -> dg.MaterializeResult:
        start, end = partition_window(context)
        close = pd.Timestamp(f"{end.date()} {CLOSE_HOUR}:00").tz_localize(NYSE_TIMEZONE)
        if close > pd.Timestamp.now(tz=NYSE_TIMEZONE):
            raise dg.Failure(description=f"the {end.date()} session has not closed yet (16:00 New York): its "
                                         "partition can run after the close")
        source = lake.open()
        prices = load_prices(source, start, end)
        empty = window_sessions(start, end).difference(pd.DatetimeIndex(prices["trade_date"].unique()))
        if len(empty):
            last = prices["trade_date"].max() if len(prices) else None
            raise dg.Failure(description=(
                f"the lake has no prices on {len(empty)} trading day(s) of {start.date()}..{end.date()}, first "
                f"{empty[0].date()}, last {empty[-1].date()} (prices under {source.describe('prices/')}; within "
                f"this range the last day with prices is {last.date() if last is not None else 'none'}): nothing "
                "was stored. Those partitions stay unmaterialized until the lake has their prices."))
        with warehouse.session() as wh:
            wh.replace(Write("price_data", prices, {"trade_date": (start.date(), end.date())}))
            checks = price_check_results(wh, start, end)
            return dg.MaterializeResult(
                metadata=table_metadata(prices, "trade_date", source.warnings,
                                        tickers=int(prices["ticker"].nunique())),
                check_results=checks,
            )

    @dg.asset(
        group_name=GROUP, partitions_def=ctx.partitions, backfill_policy=SINGLE_RUN, kinds=ctx.kinds,
        pool="warehouse", metadata={**table_spec_metadata("market_features"), **lookbacks(price_data=FEATURE_LOOKBACK)},
        deps=[price_data, previous_day("market_features")],
        description="One row per trading day for the market ticker: SMA 50/200, RSI 14, momentum 63/126, realized "
                    "volatility 21d, drawdown from peak, joined with the lake's features/* columns (vix_close, ...). "
                    "History before the partition is read from the warehouse.",
    )
    def market_features(context: AssetExecutionContext, lake: LakeResource, warehouse: WarehouseResource,
                        tracking: TrackingSettings) -> dg.MaterializeResult:
        require_history(context)
        start, end = partition_window(context)
        with warehouse.session() as wh:
            history = wh.query("SELECT trade_date, adj_close FROM price_data WHERE ticker = ? AND trade_date <= ? "
                               "ORDER BY trade_date", [tracking.market_ticker, end.date()])
            close = pd.Series(history["adj_close"].to_numpy(float), index=pd.DatetimeIndex(history["trade_date"]))
            missing = window_sessions(start, end).difference(close.index)
            if len(missing):
                raise dg.Failure(description=(
                    f"market ticker {tracking.market_ticker!r} (TRACKING_MARKET_TICKER) has no price in price_data "
                    f"on {len(missing)} of the range's trading days, first {missing[0].date()}: add its bars to the "
                    "lake's prices/ (and materialize price_data) or choose another market ticker"))
            frame = market_indicators(close).loc[start:end]
            frame = frame.rename_axis("trade_date").reset_index()
            source = lake.open()
            extra = load_features(source)
            frame = frame.merge(extra, on="trade_date", how="left")
            extra_cols = [c for c in extra.columns if c not in ("trade_date", "vix_close")]
            frame["features"] = [json.dumps({c: _clean(v) for c, v in zip(extra_cols, row)}, sort_keys=True)
                                 for row in frame[extra_cols].itertuples(index=False, name=None)] \
                if extra_cols else None
            if "vix_close" not in frame:
                frame["vix_close"] = np.nan
            frame = frame.drop(columns=extra_cols)
            frame["market_ticker"] = tracking.market_ticker
            wh.replace(Write("market_features", frame, {"trade_date": (start.date(), end.date())}))
            missing = int(frame["sma_200"].isna().sum())
            return dg.MaterializeResult(metadata=table_metadata(
                frame, "trade_date", source.warnings, market_ticker=tracking.market_ticker,
                days_without_sma_200=missing,
                lake_feature_columns=", ".join(c for c in extra.columns if c != "trade_date"),
            ))

    return [price_data, market_features]


def _clean(value: object) -> object:
    return None if isinstance(value, float) and not np.isfinite(value) else value
