"""NAV checks, reported from the NAV step for its range: positive, no gaps, stale prices, failed portfolios."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from tracking_pipeline.services.nav import NavRun, load_active_portfolios
from tracking_pipeline.trading_calendar import sessions_between
from tracking_pipeline.warehouse import Warehouse

NAV_CHECKS = [
    dg.AssetCheckSpec("nav_positive", asset="portfolio_daily_nav", description="Every NAV in the range is > 0."),
    dg.AssetCheckSpec("nav_no_gaps", asset="portfolio_daily_nav",
                      description="Every active portfolio has a row per variant on every trading day of the range "
                                  "from its start date."),
    dg.AssetCheckSpec("stale_prices", asset="portfolio_daily_nav",
                      description="Held tickers whose last price was carried forward (at most 5 trading days)."),
    dg.AssetCheckSpec("all_portfolios_computed", asset="portfolio_daily_nav",
                      description="No portfolio failed (one failure never stops the others)."),
]


def nav_check_results(wh: Warehouse, start: pd.Timestamp, end: pd.Timestamp, run: NavRun) -> list[dg.AssetCheckResult]:
    lo, hi = start.date(), end.date()
    non_positive = int(wh.scalar("SELECT COUNT(*) FROM portfolio_daily_nav WHERE trade_date BETWEEN ? AND ? "
                                 "AND NOT (nav > 0)", [lo, hi]))
    counts = wh.query("SELECT portfolio_id, variant, COUNT(*) AS n FROM portfolio_daily_nav "
                      "WHERE trade_date BETWEEN ? AND ? GROUP BY portfolio_id, variant", [lo, hi])
    have = {(int(r.portfolio_id), r.variant): int(r.n) for r in counts.itertuples(index=False)}
    gaps = {}
    for p in run.active if run.active is not None else load_active_portfolios(wh, end):
        expected = len(sessions_between(max(p.start, start), end))
        for variant in p.variants:
            got = have.get((p.portfolio_id, variant), 0)
            if got != expected:
                gaps[f"{p.name} / {variant}"] = f"{got} of {expected} days"
    stale_cells = sum(len(days) for tickers in run.stale.values() for days in tickers.values())
    return [
        dg.AssetCheckResult(check_name="nav_positive", passed=non_positive == 0, metadata={"bad_rows": non_positive}),
        dg.AssetCheckResult(check_name="nav_no_gaps", passed=not gaps, metadata={"gaps": dg.MetadataValue.json(gaps)}),
        dg.AssetCheckResult(check_name="stale_prices", passed=stale_cells == 0, severity=dg.AssetCheckSeverity.WARN,
                            metadata={"stale": dg.MetadataValue.json(run.stale), "stale_cells": stale_cells}),
        dg.AssetCheckResult(check_name="all_portfolios_computed", passed=not run.errors,
                            severity=dg.AssetCheckSeverity.ERROR,
                            metadata={"errors": dg.MetadataValue.json(run.errors)}),
    ]
