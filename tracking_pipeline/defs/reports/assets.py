"""performance_dashboard: the HTML performance report (a page per portfolio, an index, plotly.js and CSV exports),
written to TRACKING_REPORTS (folder or s3://); rendering lives in `tracking_pipeline/reporting/performance.py`."""

import os
from pathlib import Path

import dagster as dg
from dagster import AssetExecutionContext
from dagster_aws.s3 import S3Resource

from tracking_pipeline.defs.common import DefsContext
from tracking_pipeline.defs.resources import TrackingSettings, WarehouseResource
from tracking_pipeline.reporting.performance import APP_URL_ENV, app_url, report_files, write_files
from tracking_pipeline.services import tracker
from tracking_pipeline.services.portfolio_risk import rebalance_threshold


def report_link(location: str) -> dg.MetadataValue:
    """A link the UI renders for a written report: file:// for a local file, the object's https URL on S3."""
    if location.startswith("s3://"):
        bucket, _, key = location[len("s3://"):].partition("/")
        endpoint = os.environ.get("AWS_ENDPOINT_URL", "").rstrip("/")
        return dg.MetadataValue.url(f"{endpoint}/{bucket}/{key}" if endpoint else f"https://{bucket}.s3.amazonaws.com/{key}")
    return dg.MetadataValue.url(Path(location).resolve().as_uri())


def build(ctx: DefsContext) -> list[dg.AssetsDefinition]:
    @dg.asset(
        group_name="reports", deps=["portfolio_daily_nav", "portfolio_metrics", "portfolio_snapshots",
                                    "portfolio_stress_tests"], kinds={"html"},
        description="The HTML performance report (seed 000 §3): per active portfolio a page with KPI cards per "
                    "variant, comparison with the benchmark per period (best marked), annual and monthly tables, "
                    "crisis periods, cumulative / drawdown / allocation charts (Plotly, plotly.js written once "
                    "beside the pages), signals, risk and CSV exports, plus an index; every figure read from the "
                    "warehouse. Written to TRACKING_REPORTS (folder or s3://). Metadata `open` links to the index, "
                    f"`app` to the interactive Performance Tracker ({APP_URL_ENV}, `make dashboard`).",
    )
    def performance_dashboard(context: AssetExecutionContext, warehouse: WarehouseResource,
                              tracking: TrackingSettings, s3: S3Resource) -> dg.MaterializeResult:
        try:
            threshold = rebalance_threshold()
        except ValueError as exc:
            context.log.warning(f"drift chart without its threshold line: {exc}")
            threshold = None
        client = s3.get_client() if tracking.reports.startswith("s3://") else None
        written = write_files(tracking.reports, report_files(warehouse.get(), tracking.risk_free_rate,
                                                             threshold=threshold, workers=os.cpu_count() or 1),
                              client)
        index = written[-1].location
        pages = [w for w in written if w.kind == "page" and w.name != "index.html"]
        with warehouse.session() as wh:
            as_of = tracker.as_of(wh)
        context.log.info(f"wrote {len(pages)} portfolio pages and {index}")
        return dg.MaterializeResult(metadata={
            "open": report_link(index), "index": dg.MetadataValue.path(index), "app": dg.MetadataValue.url(app_url()),
            "pages": len(pages), "as_of": str(as_of.date()) if as_of is not None else "none",
            "bytes_per_page": dg.MetadataValue.md("\n".join(
                f"- {w.name}: {w.size:,}" for w in written if w.kind == "page")),
            "files": dg.MetadataValue.md("\n".join(f"- {w.location}" for w in written)),
        })

    return [performance_dashboard]
