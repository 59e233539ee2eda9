"""Jobs: the daily chain over trading-day partitions, and the unpartitioned assets around it."""

from __future__ import annotations

import dagster as dg


DAILY_GROUPS = ("market", "overlays", "portfolios", "risk")

# Unpartitioned assets of the "risk" group: computed after the daily chain, with the downstream assets.
UNPARTITIONED_RISK = dg.AssetSelection.assets("portfolio_stress_tests", "asset_correlations")

daily_selection = dg.AssetSelection.all().materializable() - dg.AssetSelection.assets(
    "portfolio_definitions", "portfolio_holdings") - dg.AssetSelection.groups("performance", "reports") \
    - UNPARTITIONED_RISK

daily_assets_job = dg.define_asset_job(
    "daily_assets_job", selection=daily_selection,  # partitioned by trading_days, inferred from the assets
    description="Every trading-day-partitioned asset: prices, features, overlay signals, NAV, betas, snapshots.",
)
registry_job = dg.define_asset_job(
    "portfolio_registry_job", selection=dg.AssetSelection.assets("portfolio_definitions", "portfolio_holdings"),
    description="Register the lake's portfolio files.",
)
downstream_job = dg.define_asset_job(
    "downstream_job", selection=dg.AssetSelection.groups("performance", "reports") | UNPARTITIONED_RISK,
    description="The unpartitioned assets computed from the daily tables (metrics, reports).",
)
