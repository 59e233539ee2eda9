"""performance_dashboard: the HTML performance report per portfolio, written to TRACKING_REPORTS."""

import datetime as dt
import os
import re
from pathlib import Path

import dagster as dg
import pandas as pd
import polars as pl
from dagster import AssetExecutionContext
from dagster_aws.s3 import S3Resource

from tracking_pipeline.analytics.metrics import period_metrics
from tracking_pipeline.defs.common import DefsContext
from tracking_pipeline.defs.resources import TrackingSettings, WarehouseResource
from tracking_pipeline.reporting.html import index_page, portfolio_page
from tracking_pipeline.reporting.output import write_report


def report_link(location: str) -> dg.MetadataValue:
    """A link the UI renders for a written report: file:// for a local file, the object's https URL on S3."""
    if location.startswith("s3://"):
        bucket, _, key = location[len("s3://"):].partition("/")
        endpoint = os.environ.get("AWS_ENDPOINT_URL", "").rstrip("/")
        return dg.MetadataValue.url(f"{endpoint}/{bucket}/{key}" if endpoint else f"https://{bucket}.s3.amazonaws.com/{key}")
    return dg.MetadataValue.url(Path(location).resolve().as_uri())


def report_file(name: str) -> str:
    """A file name for a portfolio page (names may hold any characters)."""
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower() + ".html"


def build(ctx: DefsContext) -> list[dg.AssetsDefinition]:
    @dg.asset(
        group_name="reports", deps=["portfolio_daily_nav"], kinds={"html"},
        description="Self-contained HTML dashboard (KPI cards, growth and drawdown of every variant, monthly "
                    "returns) per active portfolio plus an index, written to TRACKING_REPORTS (folder or s3://).",
    )
    def performance_dashboard(context: AssetExecutionContext, warehouse: WarehouseResource,
                              tracking: TrackingSettings, s3: S3Resource) -> dg.MaterializeResult:
        with warehouse.session() as wh:
            defs = wh.read_table("portfolio_definitions", "is_active")
            nav = wh.read_table("portfolio_daily_nav")
            client = s3.get_client() if tracking.reports.startswith("s3://") else None
            generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
            returns = nav[nav["trade_date"] > nav.groupby(["portfolio_id", "variant"])["trade_date"].transform("min")]
            metrics = period_metrics(
                pl.from_pandas(returns[["portfolio_id", "variant", "trade_date", "daily_return"]]
                               .rename(columns={"daily_return": "r"})).with_columns(pl.col("trade_date").cast(pl.Date)),
                ["portfolio_id", "variant"], tracking.risk_free_rate, period_types=("all",),
            ).to_pandas() if len(returns) else pd.DataFrame(columns=["portfolio_id", "variant"])
            index_rows, written = [], []
            for row in defs.itertuples(index=False):
                mine = nav[nav["portfolio_id"] == row.portfolio_id]
                if mine.empty:
                    continue
                kpis = metrics[metrics["portfolio_id"] == row.portfolio_id]
                name = report_file(row.name)
                written.append(write_report(tracking.reports, name, portfolio_page(
                    row.name, row.description or "", mine, kpis, row.benchmark, generated), client))
                raw = kpis[kpis["variant"] == "raw"]
                first = raw.iloc[0] if len(raw) else None
                index_rows.append({"name": row.name, "file": name, "last_day": mine["trade_date"].max().date(),
                                   **{k: (float(first[k]) if first is not None and pd.notna(first[k]) else None)
                                      for k in ("total_return", "cagr", "sharpe_ratio", "max_drawdown")}})
            index = write_report(tracking.reports, "index.html", index_page(index_rows, generated), client)
            context.log.info(f"wrote {len(written)} portfolio pages and {index}")
            return dg.MaterializeResult(metadata={"index": dg.MetadataValue.path(index), "open": report_link(index),
                                                  "pages": len(written),
                                                  "files": dg.MetadataValue.md("\n".join(f"- {w}" for w in written))})

    return [performance_dashboard]
