"""Checks on the risk tables, reported from each asset's step (one result per run, cheap SQL over its range)."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd

from tracking_pipeline.analytics.rolling import rolling_columns
from tracking_pipeline.services.nav import load_active_portfolios
from tracking_pipeline.services.market_risk import BETA_MIN_OBS, BETA_WINDOW
from tracking_pipeline.services.performance import in_list
from tracking_pipeline.services.portfolio_risk import PortfolioRiskRun
from tracking_pipeline.trading_calendar import sessions_between
from tracking_pipeline.warehouse import Warehouse

BETA_CHECKS = [
    dg.AssetCheckSpec("betas_valid", asset="position_market_betas",
                      description=f"Every row in the range: beta in [-5, 5], {BETA_MIN_OBS} <= observations <= "
                                  f"{BETA_WINDOW}, r_squared and p_value in [0, 1]."),
    dg.AssetCheckSpec("market_ticker_beta_one", asset="position_market_betas",
                      description="The market ticker regressed on itself has beta 1 and R^2 1 (alignment check)."),
]
SNAPSHOT_CHECKS = [
    dg.AssetCheckSpec("snapshot_every_day", asset="portfolio_snapshots",
                      description="Every active portfolio has one snapshot per trading day of the range from its "
                                  "start, and none failed."),
    dg.AssetCheckSpec("snapshot_values_valid", asset="portfolio_snapshots",
                      description="0 < hhi <= 10000, top_3 <= top_10 <= 1, volatilities >= 0, HAR forecast > 0 "
                                  "(never 0), percentile in (0, 1]."),
]
ROLLING_CHECKS = [
    dg.AssetCheckSpec("rolling_metrics_complete", asset="portfolio_rolling_metrics",
                      description="Every NAV day of the range with a return has a row per variant and benchmark; "
                                  "volatilities >= 0, max drawdowns in [-1, 0], no inf/NaN stored."),
]
REBALANCING_CHECKS = [
    dg.AssetCheckSpec("rebalancing_events_valid", asset="rebalancing_events",
                      description="Every active portfolio's first NAV day and holdings dates in the range have an "
                                  "event; one-way turnover in [0, 1]; traded value and estimated cost >= 0."),
]
STRESS_CHECKS = [
    dg.AssetCheckSpec("stress_rows_complete", asset="portfolio_stress_tests",
                      description="Every stressed snapshot date has the four market-shock scenarios."),
]
METRIC_CHECKS = [
    dg.AssetCheckSpec("indicators_in_range", asset="asset_performance_metrics",
                      description="RSI and stochastic %K/%D in [0, 100]; Bollinger lower <= mid <= upper."),
]
CORRELATION_CHECKS = [
    dg.AssetCheckSpec("correlations_valid", asset="asset_correlations",
                      description="Correlations in [-1, 1], p-values in [0, 1], enough paired observations."),
]
EPS = 1e-9


def _count(wh: Warehouse, sql: str, params: list) -> int:
    return int(wh.scalar(sql, params) or 0)


def beta_check_results(wh: Warehouse, start: pd.Timestamp, end: pd.Timestamp,
                       market: str) -> list[dg.AssetCheckResult]:
    lo, hi = start.date(), end.date()
    bad = _count(wh, "SELECT COUNT(*) FROM position_market_betas WHERE calc_date BETWEEN ? AND ? AND NOT ("
                     "beta BETWEEN -5 AND 5 AND observations BETWEEN ? AND window_days "
                     "AND COALESCE(r_squared BETWEEN 0 AND 1, TRUE) AND COALESCE(p_value BETWEEN 0 AND 1, TRUE))",
                 [lo, hi, BETA_MIN_OBS])
    off = _count(wh, "SELECT COUNT(*) FROM position_market_betas WHERE calc_date BETWEEN ? AND ? AND ticker = ? "
                     "AND market_index = ? AND NOT (ABS(beta - 1) < 1e-6 AND ABS(r_squared - 1) < 1e-6)",
                 [lo, hi, market, market])
    return [
        dg.AssetCheckResult(check_name="betas_valid", passed=bad == 0, metadata={"bad_rows": bad}),
        dg.AssetCheckResult(check_name="market_ticker_beta_one", passed=off == 0, metadata={"bad_rows": off}),
    ]


def snapshot_check_results(wh: Warehouse, start: pd.Timestamp, end: pd.Timestamp,
                           run: PortfolioRiskRun) -> list[dg.AssetCheckResult]:
    lo, hi = start.date(), end.date()
    counts = wh.query("SELECT portfolio_id, COUNT(*) AS n FROM portfolio_snapshots WHERE snapshot_date BETWEEN ? "
                      "AND ? GROUP BY portfolio_id", [lo, hi])
    have = {int(r.portfolio_id): int(r.n) for r in counts.itertuples(index=False)}
    gaps = {}
    for p in run.active if run.active is not None else load_active_portfolios(wh, end):
        expected = len(sessions_between(max(p.start, start), end))
        if have.get(p.portfolio_id, 0) != expected:
            gaps[p.name] = f"{have.get(p.portfolio_id, 0)} of {expected} days"
    bad = _count(wh, "SELECT COUNT(*) FROM portfolio_snapshots WHERE snapshot_date BETWEEN ? AND ? AND NOT ("
                     "COALESCE(hhi > 0 AND hhi <= 10000 + ?, hhi = 0) AND top_3_concentration <= top_10_concentration "
                     "+ ? AND top_10_concentration <= 1 + ? AND COALESCE(realized_volatility_21d >= 0, TRUE) "
                     "AND COALESCE(realized_volatility_63d >= 0, TRUE) AND COALESCE(expected_volatility_21d > 0, TRUE) "
                     "AND COALESCE(volatility_percentile > 0 AND volatility_percentile <= 1, TRUE))",
                 [lo, hi, EPS, EPS, EPS])
    return [
        dg.AssetCheckResult(check_name="snapshot_every_day", passed=not gaps and not run.errors,
                            metadata={"gaps": dg.MetadataValue.json(gaps),
                                      "errors": dg.MetadataValue.json(run.errors)}),
        dg.AssetCheckResult(check_name="snapshot_values_valid", passed=bad == 0, metadata={"bad_rows": bad}),
    ]


def rolling_check_results(wh: Warehouse, start: pd.Timestamp, end: pd.Timestamp,
                          portfolio_ids: list[int]) -> list[dg.AssetCheckResult]:
    """Rows expected from the NAV (each variant's, plus one benchmark row per portfolio and day) against the rows
    stored, and the value rules."""
    if not portfolio_ids:
        return [dg.AssetCheckResult(check_name="rolling_metrics_complete", passed=True, metadata={"rows": 0})]
    marks = ", ".join("?" for _ in portfolio_ids)
    nav = wh.query("SELECT COUNT(*) AS n, COUNT(DISTINCT variant) AS variants FROM portfolio_daily_nav n "
                   f"WHERE trade_date BETWEEN ? AND ? AND portfolio_id IN ({marks}) AND trade_date > (SELECT "
                   "MIN(trade_date) FROM portfolio_daily_nav f WHERE f.portfolio_id = n.portfolio_id) "
                   "GROUP BY portfolio_id", [start.date(), end.date(), *portfolio_ids]).astype("int64")
    expected = int((nav["n"] + nav["n"] // nav["variants"].clip(lower=1)).sum())
    columns = rolling_columns()
    rules = [f"({c} > 1e308 OR {c} < -1e308)" for c in columns]
    rules += [f"{c} < 0" for c in columns if c.startswith("volatility")]
    rules += [f"({c} > 0 OR {c} < -1)" for c in columns if c.startswith("max_drawdown")]
    stored = wh.query(f"SELECT COUNT(*) AS n, SUM(CASE WHEN {' OR '.join(rules)} THEN 1 ELSE 0 END) AS bad "
                      f"FROM portfolio_rolling_metrics WHERE trade_date BETWEEN ? AND ? AND portfolio_id IN ({marks})",
                      [start.date(), end.date(), *portfolio_ids]).iloc[0]
    rows, bad = int(stored["n"] or 0), int(stored["bad"] or 0)
    return [dg.AssetCheckResult(check_name="rolling_metrics_complete", passed=rows == expected and bad == 0,
                                metadata={"rows": rows, "expected_rows": expected, "bad_rows": bad})]


def rebalancing_check_results(wh: Warehouse, start: pd.Timestamp, end: pd.Timestamp,
                              run: PortfolioRiskRun) -> list[dg.AssetCheckResult]:
    lo, hi = start.date(), end.date()
    stored = wh.query("SELECT portfolio_id, event_date FROM rebalancing_events WHERE event_date BETWEEN ? AND ? "
                      "AND event_type IN ('initial', 'scheduled')", [lo, hi])
    have = set(zip(stored["portfolio_id"].astype("int64"), pd.to_datetime(stored["event_date"])))
    missing = {}
    for p in run.active if run.active is not None else load_active_portfolios(wh, end):
        days = [d for d, _ in p.schedule if start <= d <= end]
        lacking = [d.date().isoformat() for d in days if (p.portfolio_id, d) not in have]
        if lacking:
            missing[p.name] = lacking
    bad = _count(wh, "SELECT COUNT(*) FROM rebalancing_events WHERE event_date BETWEEN ? AND ? AND NOT ("
                     "turnover >= 0 AND turnover <= 1 + ? AND traded_value >= 0 AND estimated_cost >= 0)",
                 [lo, hi, EPS])
    return [dg.AssetCheckResult(check_name="rebalancing_events_valid", passed=not missing and bad == 0
                                and not run.errors,
                                metadata={"missing_events": dg.MetadataValue.json(missing), "bad_rows": bad,
                                          "errors": dg.MetadataValue.json(run.errors)})]


def stress_check_results(wh: Warehouse) -> list[dg.AssetCheckResult]:
    short = _count(wh, "SELECT COUNT(*) FROM (SELECT portfolio_id, snapshot_date FROM portfolio_stress_tests "
                       "GROUP BY portfolio_id, snapshot_date HAVING SUM(CASE WHEN scenario LIKE 'Market %' "
                       "THEN 1 ELSE 0 END) <> 4) s", [])
    return [dg.AssetCheckResult(check_name="stress_rows_complete", passed=short == 0,
                                metadata={"incomplete_dates": short})]


def metric_check_results(wh: Warehouse, start: pd.Timestamp, end: pd.Timestamp) -> list[dg.AssetCheckResult]:
    bad = _count(wh, "SELECT COUNT(*) FROM asset_performance_metrics WHERE trade_date BETWEEN ? AND ? AND NOT ("
                     "COALESCE(rsi_14 BETWEEN 0 AND 100, TRUE) AND COALESCE(stoch_k BETWEEN -? AND 100 + ?, TRUE) "
                     "AND COALESCE(stoch_d BETWEEN -? AND 100 + ?, TRUE) "
                     "AND COALESCE(bollinger_lower <= bollinger_mid + ? AND bollinger_mid <= bollinger_upper + ?, "
                     "TRUE))", [start.date(), end.date(), EPS, EPS, EPS, EPS, EPS, EPS])
    return [dg.AssetCheckResult(check_name="indicators_in_range", passed=bad == 0, metadata={"bad_rows": bad})]


def correlation_check_results(wh: Warehouse, dates: list[dt.date]) -> list[dg.AssetCheckResult]:
    """The rows of the calc dates this run wrote (the others were checked when they were written; a nightly run
    writes one date of a table that holds tens of millions of rows)."""
    where, params = in_list("calc_date", dates)
    bad = _count(wh, f"SELECT COUNT(*) FROM asset_correlations WHERE {where} AND NOT (correlation BETWEEN -1 AND 1 "
                     "AND p_value BETWEEN 0 AND 1 AND 5 * observations >= 4 * window_days)", params)
    return [dg.AssetCheckResult(check_name="correlations_valid", passed=bad == 0,
                                metadata={"bad_rows": bad, "dates_checked": len(dates)})]
