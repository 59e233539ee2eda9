"""Checks on stored prices, reported from the price_data step itself (one result per run, cheap)."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from tracking_pipeline.warehouse import Warehouse

PRICE_CHECKS = [
    dg.AssetCheckSpec("prices_positive", asset="price_data",
                      description="Every stored adj_close in the range is finite and > 0."),
    dg.AssetCheckSpec("no_conflicting_duplicates", asset="price_data",
                      description="One row per (trade_date, ticker) in the range."),
    dg.AssetCheckSpec("held_tickers_priced", asset="price_data",
                      description="Every ticker held by an active portfolio has a price on every trading day of "
                                  "the range on which the market has prices."),
]


def price_check_results(wh: Warehouse, start: pd.Timestamp, end: pd.Timestamp) -> list[dg.AssetCheckResult]:
    lo, hi = start.date(), end.date()
    bad = int(wh.scalar("SELECT COUNT(*) FROM price_data WHERE trade_date BETWEEN ? AND ? "
                        "AND NOT (adj_close > 0 AND adj_close < 1e300)", [lo, hi]))
    dups = int(wh.scalar("SELECT COUNT(*) FROM (SELECT trade_date, ticker FROM price_data WHERE trade_date "
                         "BETWEEN ? AND ? GROUP BY trade_date, ticker HAVING COUNT(*) > 1) d", [lo, hi]))
    missing = wh.query(
        """
        WITH days AS (SELECT DISTINCT trade_date FROM price_data WHERE trade_date BETWEEN ? AND ?),
             held AS (SELECT DISTINCT h.ticker, d.start_date FROM portfolio_holdings h
                      JOIN portfolio_definitions d ON d.portfolio_id = h.portfolio_id
                      WHERE d.is_active AND h.weight > 0)
        SELECT held.ticker, days.trade_date FROM held JOIN days ON days.trade_date >= held.start_date
        LEFT JOIN (SELECT ticker, trade_date FROM price_data WHERE trade_date BETWEEN ? AND ?) p
               ON p.ticker = held.ticker AND p.trade_date = days.trade_date
        WHERE p.ticker IS NULL ORDER BY held.ticker, days.trade_date
        """, [lo, hi, lo, hi])  # the range on both sides: PostgreSQL scanned the whole table for the anti-join
    by_ticker = missing.groupby("ticker")["trade_date"].apply(lambda s: [str(d.date()) for d in s]).to_dict()
    return [
        dg.AssetCheckResult(check_name="prices_positive", passed=bad == 0, metadata={"bad_rows": bad}),
        dg.AssetCheckResult(check_name="no_conflicting_duplicates", passed=dups == 0, metadata={"duplicate_keys": dups}),
        dg.AssetCheckResult(
            check_name="held_tickers_priced", passed=not by_ticker, severity=dg.AssetCheckSeverity.WARN,
            metadata={"missing": dg.MetadataValue.json({t: d[:20] for t, d in by_ticker.items()}),
                      "missing_cells": int(len(missing))},
        ),
    ]
