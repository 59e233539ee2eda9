"""Monitoring assets, computed after the daily chain (downstream_job): `system_health` (seed 004's health
monitor, from the Dagster instance and the warehouse) and `daily_report` (seed 004's daily e-mail: an HTML page
under TRACKING_REPORTS/daily/, sent by SMTP when TRACKING_SMTP_URL and TRACKING_REPORT_TO are set)."""

import datetime as dt

import dagster as dg
from dagster import AssetExecutionContext
from dagster_aws.s3 import S3Resource
import pandas as pd

from tracking_pipeline.analytics.outcomes import WARNING
from tracking_pipeline.defs.automation.alerts import record_alert
from tracking_pipeline.defs.common import DefsContext, preview
from tracking_pipeline.defs.monitoring.health import asset_graph, collect_health
from tracking_pipeline.defs.reports.assets import report_link
from tracking_pipeline.defs.resources import LakeResource, TrackingSettings, WarehouseResource
from tracking_pipeline.lake import LakeInputError
from tracking_pipeline.lake.tables import price_day_span
from tracking_pipeline.lake.trades import load_trade_analytics_config
from tracking_pipeline.reporting.daily import (
    REPORT_TO_ENV, SMTP_URL_ENV, ReportDeliveryError, render_daily_report, send_report, smtp_settings, text_summary,
)
from tracking_pipeline.reporting.output import write_report
from tracking_pipeline.services.daily_report import daily_report_data
from tracking_pipeline.warehouse import Write

GROUP = "monitoring"
TRADE_ASSETS = ["trade_tracking", "strategy_metrics", "trade_outcomes", "confidence_calibration",
                "volume_spike_candidates"]


def _reference_day(lake: LakeResource, last_partition: str | None) -> str | None:
    """The latest trading day with data: the lake's last price day, capped at the last partition."""
    try:
        last = price_day_span(lake.open())[1].isoformat()
    except (LakeInputError, OSError, RuntimeError):
        return last_partition
    return min(last, last_partition) if last_partition else last


def build(ctx: DefsContext) -> list[dg.AssetsDefinition]:
    @dg.asset(
        group_name=GROUP, pool="warehouse", kinds=ctx.kinds, deps=["price_data", "portfolio_daily_nav", *TRADE_ASSETS],
        description="System health (seed 004): each daily asset's latest materialized partition against the latest "
                    "trading day with data, failed asset checks and failed runs in the last 7 days, and table row "
                    "counts; GOOD / WARNING / CRITICAL per component and overall (metadata `status`), also stored "
                    "in the system_health table.",
    )
    def system_health(context: AssetExecutionContext, lake: LakeResource,
                      warehouse: WarehouseResource) -> dg.MaterializeResult:
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        reference = _reference_day(lake, ctx.partitions.get_last_partition_key())
        with warehouse.session() as wh:
            graph, complete = asset_graph(context)
            rows = collect_health(context.instance, graph, wh, reference, now, complete)
            rows["checked_at"] = pd.Timestamp(now.replace(tzinfo=None))
            wh.replace(Write("system_health", rows, {"checked_at": [rows["checked_at"].iloc[0]]}))
        overall = rows.iloc[0]
        return dg.MaterializeResult(metadata={
            "status": str(overall["status"]), "summary": str(overall["detail"]), "reference_day": reference or "none",
            "dagster/row_count": len(rows),
            "components": preview(rows[["component", "status", "value", "detail"]], rows=len(rows)),
        })

    @dg.asset(
        group_name=GROUP, kinds={"html"}, pool="warehouse", deps=[system_health, "portfolio_daily_nav", *TRADE_ASSETS],
        description="The daily report (seed 004's daily e-mail) of the latest trading day: each portfolio's return "
                    "by variant, trades opened and closed, strategy alerts (also recorded as alerts), volume-spike "
                    f"candidates and system health; written to TRACKING_REPORTS/daily/<day>.html and sent by SMTP "
                    f"when {SMTP_URL_ENV} and {REPORT_TO_ENV} are set.",
    )
    def daily_report(context: AssetExecutionContext, lake: LakeResource, warehouse: WarehouseResource,
                     tracking: TrackingSettings, s3: S3Resource) -> dg.MaterializeResult:
        try:
            _, config = load_trade_analytics_config(lake.open())
            smtp = smtp_settings()
        except (LakeInputError, ValueError) as exc:
            raise dg.Failure(description=str(exc)) from exc
        with warehouse.session() as wh:
            health = wh.query("SELECT component, status, value, detail FROM system_health WHERE checked_at = "
                              "(SELECT MAX(checked_at) FROM system_health) ORDER BY component")
            health = pd.concat([health[health["component"] == "overall"], health[health["component"] != "overall"]])
            data = daily_report_data(wh, health, config)
            if data is None:
                context.log.warning("no prices in the warehouse yet: no daily report (materialize the daily assets)")
                return dg.MaterializeResult(metadata={"day": "none", "status": "no prices yet"})
            for alert in data["alerts"]:
                record_alert({"alert_id": f"strategy:{data['day']}:{alert['strategy']}:{alert['stock_type']}",
                              "created_at": dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0).isoformat(),
                              "run_id": context.run.run_id, "job_name": context.job_name, "step_key": "daily_report",
                              "error": f"{alert['status']} {alert['strategy']} / {alert['stock_type']} "
                                       f"({config.status_period}, {alert['total_trades']} trades): {alert['reasons']}"},
                             warehouse, context.log, warning=alert["status"] == WARNING)
        html = render_daily_report(data)
        client = s3.get_client() if tracking.reports.startswith("s3://") else None
        location = write_report(tracking.reports, f"daily/{data['day']}.html", html, client)
        sent = "not configured"
        if smtp is not None:
            subject = f"tracking_pipeline daily report {data['day']}: {data['status'] or 'n/a'}"
            try:
                send_report(smtp, subject, html, text_summary(data))
            except ReportDeliveryError as exc:
                raise dg.Failure(description=f"{exc} (the report was written to {location})") from exc
            sent = f"{len(smtp.recipients)} recipient(s) via {smtp.describe()}"
            context.log.info(f"daily report sent to {sent}")
        return dg.MaterializeResult(metadata={
            "day": data["day"], "status": data["status"] or "n/a", "path": dg.MetadataValue.path(location),
            "open": report_link(location), "email": sent, "alerts": len(data["alerts"]),
            "trades_opened": len(data["opened"]), "trades_closed": len(data["closed"]),
            "candidates": len(data["candidates"]),
        })

    return [system_health, daily_report]
