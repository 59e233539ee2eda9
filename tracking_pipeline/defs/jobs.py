"""Jobs: the daily chain over trading-day partitions, and the unpartitioned assets around it."""

from __future__ import annotations

import dagster as dg

from tracking_pipeline.defs.automation.daily_runs import CHAIN_TAG, DAILY_JOB, DOWNSTREAM_JOB

# Unpartitioned assets of the "risk" group: computed after the daily chain, with the downstream assets.
UNPARTITIONED_RISK = dg.AssetSelection.assets("portfolio_stress_tests", "asset_correlations")
DOWNSTREAM_GROUPS = ("performance", "reports", "monitoring")

daily_selection = dg.AssetSelection.all().materializable() - dg.AssetSelection.assets(
    "portfolio_definitions", "portfolio_holdings") - dg.AssetSelection.groups(*DOWNSTREAM_GROUPS) \
    - UNPARTITIONED_RISK

daily_assets_job = dg.define_asset_job(
    DAILY_JOB, selection=daily_selection,  # partitioned by the trading days, inferred from the assets
    tags={CHAIN_TAG: "daily"},
    description="Every trading-day-partitioned asset: prices, features, overlay signals, NAV, betas, snapshots. "
                "Runs carry the tag tracking/chain=daily: the run queue starts one at a time, earliest days first.",
)
registry_job = dg.define_asset_job(
    "portfolio_registry_job", selection=dg.AssetSelection.assets("portfolio_definitions", "portfolio_holdings"),
    description="Register the lake's portfolio files.",
)
downstream_job = dg.define_asset_job(
    DOWNSTREAM_JOB, selection=dg.AssetSelection.groups(*DOWNSTREAM_GROUPS) | UNPARTITIONED_RISK,
    description="The unpartitioned assets computed from the daily tables (metrics, reports).",
)
