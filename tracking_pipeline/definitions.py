"""The one place that assembles the code location's Definitions."""

from __future__ import annotations

import dagster as dg

from tracking_pipeline.defs.automation.alerts import run_failure_alert_sensor
from tracking_pipeline.defs.automation.schedules import nightly_daily_assets
from tracking_pipeline.defs.automation.sensors import downstream_after_daily_sensor, portfolio_registration_sensor
from tracking_pipeline.defs.jobs import daily_assets_job, downstream_job, registry_job
from tracking_pipeline.defs.market import assets as market_assets
from tracking_pipeline.defs.overlays import assets as overlay_assets
from tracking_pipeline.defs.portfolios import assets as portfolio_assets
from tracking_pipeline.defs.performance import assets as performance_assets
from tracking_pipeline.defs.reports import assets as report_assets
from tracking_pipeline.defs.resources import build_resources
from tracking_pipeline.defs.risk import assets as risk_assets
from tracking_pipeline.settings import load_settings

# Each domain's asset module; add a new domain here.
ASSET_MODULES = [
    market_assets,
    overlay_assets,
    portfolio_assets,
    risk_assets,
    performance_assets,
    report_assets,
]
SCHEDULES: list[dg.ScheduleDefinition] = [nightly_daily_assets]
SENSORS: list[dg.SensorDefinition] = [portfolio_registration_sensor, downstream_after_daily_sensor,
                                      run_failure_alert_sensor]


def build_definitions() -> dg.Definitions:
    settings = load_settings()
    on_duckdb = not settings.warehouse.startswith("postgres")
    return dg.Definitions(
        assets=dg.load_assets_from_modules(ASSET_MODULES),
        asset_checks=dg.load_asset_checks_from_modules(ASSET_MODULES),
        jobs=[daily_assets_job, registry_job, downstream_job],
        schedules=SCHEDULES,
        sensors=SENSORS,
        resources=build_resources(settings),
        # DuckDB has one writer: run each job's steps in one process (the warehouse lock serialises runs).
        executor=dg.in_process_executor if on_duckdb else dg.multiprocess_executor,
    )


defs = build_definitions()
