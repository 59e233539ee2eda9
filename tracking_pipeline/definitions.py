"""The one place that assembles the code location's Definitions, from the settings at load time."""

from __future__ import annotations

import warnings

import dagster as dg

from tracking_pipeline.defs.automation.alerts import check_failure_alert_sensor, run_failure_alert_sensor
from tracking_pipeline.defs.automation.schedules import nightly_daily_assets
from tracking_pipeline.defs.automation.sensors import downstream_after_daily_sensor, portfolio_registration_sensor
from tracking_pipeline.defs.common import DefsContext
from tracking_pipeline.defs.executors import batch_events, build_executor
from tracking_pipeline.defs.jobs import daily_assets_job, downstream_job, registry_job
from tracking_pipeline.defs.market import assets as market_assets
from tracking_pipeline.defs.monitoring import assets as monitoring_assets
from tracking_pipeline.defs.overlays import assets as overlay_assets
from tracking_pipeline.defs.partitions import build_trading_days
from tracking_pipeline.defs.performance import assets as performance_assets
from tracking_pipeline.defs.portfolios import assets as portfolio_assets
from tracking_pipeline.defs.reports import assets as report_assets
from tracking_pipeline.defs.resources import build_resources
from tracking_pipeline.defs.risk import assets as risk_assets
from tracking_pipeline.defs.trades import assets as trade_assets
from tracking_pipeline.settings import Settings, load_settings

# Each domain's asset module (a `build(ctx)` factory); add a new domain here.
ASSET_MODULES = [
    market_assets,
    overlay_assets,
    portfolio_assets,
    risk_assets,
    performance_assets,
    report_assets,
    trade_assets,
    monitoring_assets,
]
SCHEDULES: list[dg.ScheduleDefinition] = [nightly_daily_assets]
SENSORS: list[dg.SensorDefinition] = [portfolio_registration_sensor, downstream_after_daily_sensor,
                                      run_failure_alert_sensor, check_failure_alert_sensor]


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """Definitions for the settings (default: the environment): partitions, kinds and resources follow them."""
    settings = settings or load_settings()
    ctx = DefsContext(settings=settings, partitions=build_trading_days(settings))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)  # backfill_policy: one range run per backfill
        assets = [asset for module in ASSET_MODULES for asset in module.build(ctx)]
    return dg.Definitions(
        assets=assets,
        jobs=[daily_assets_job, registry_job, downstream_job],
        schedules=SCHEDULES,
        sensors=SENSORS,
        resources=build_resources(settings),
        # DuckDB has one writer: steps in one process; PostgreSQL: multiprocess, or Celery (TRACKING_EXECUTOR).
        executor=build_executor(settings),
    )


batch_events()  # every process that loads the code location to run steps (UI, daemon, schedule, sensor runs)
defs = build_definitions()
