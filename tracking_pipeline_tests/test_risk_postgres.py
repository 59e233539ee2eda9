"""The risk assets on a real PostgreSQL warehouse: the chain over a short range writes every risk table, its checks
pass, and stored numbers match independent references (statsmodels, hand-computed weights)."""

from __future__ import annotations

import json

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from tracking_pipeline.lake.portfolios import portfolio_id_for
from tracking_pipeline.settings import DEMO_LAKE
from tracking_pipeline.trading_calendar import sessions_between
from tracking_pipeline.warehouse import open_warehouse
from tracking_pipeline_tests.helpers import make_lake, run_job

START, END = "2018-01-02", "2018-08-31"


def test_risk_tables_on_postgres(tmp_path, monkeypatch: pytest.MonkeyPatch, postgres_url: str) -> None:
    lake = make_lake(tmp_path / "lake", START, END)
    for name, value in {"TRACKING_LAKE": str(lake), "TRACKING_WAREHOUSE": postgres_url,
                        "TRACKING_REPORTS": str(tmp_path / "reports"), "TRACKING_LAKE_CACHE": str(tmp_path / "cache"),
                        "TRACKING_PARTITIONS_START": START, "DAGSTER_EVENT_BATCH_SIZE": "1000"}.items():
        monkeypatch.setenv(name, value)
    for name in ("TRACKING_RISK_FREE_RATE", "TRACKING_MARKET_TICKER", "TRACKING_REBALANCE_THRESHOLD"):
        monkeypatch.delenv(name, raising=False)
    from tracking_pipeline.definitions import build_definitions

    defs = build_definitions()
    (tmp_path / "dagster_home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster_home")) as instance:
        results = [run_job(defs, "portfolio_registry_job", instance),
                   run_job(defs, "daily_assets_job", instance, START, END), run_job(defs, "downstream_job", instance)]
    for result in results:
        assert not [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
    wh = open_warehouse(postgres_url)
    for table in ("position_market_betas", "portfolio_snapshots", "portfolio_stress_tests",
                  "asset_performance_metrics", "asset_correlations", "portfolio_rolling_metrics", "rebalancing_events"):
        assert int(wh.scalar(f"SELECT COUNT(*) FROM {table}")) > 0, table
    # issue 15 on PostgreSQL: JSON and boolean columns round-trip, no forecast of 0, events reproduce the targets
    events = wh.read_table("rebalancing_events", "event_type IN ('initial', 'scheduled')")
    assert len(events) > 0 and events["trades"].map(lambda v: len(json.loads(v)) > 0).all()
    assert wh.scalar("SELECT COUNT(*) FROM portfolio_snapshots WHERE expected_volatility_21d <= 0") == 0
    assert wh.scalar("SELECT COUNT(*) FROM position_market_betas WHERE is_significant <> (p_value < 0.10)") == 0
    # the portfolios start in July 2018: by August no 63-return window is full, so every rolling figure is NULL
    assert wh.scalar("SELECT COUNT(volatility_63) FROM portfolio_rolling_metrics") == 0

    long = pd.concat([pd.read_parquet(DEMO_LAKE / "prices" / f"{n}.parquet") for n in ("stocks", "etfs")])
    long["date"] = pd.to_datetime(long["date"])
    prices = long.pivot(index="date", columns="ticker", values="adj_close").reindex(sessions_between(START, END))
    returns = prices.pct_change(fill_method=None).iloc[-90:]
    fit = sm.OLS(returns["XOM"].to_numpy(), sm.add_constant(returns["SPY"].to_numpy())).fit()
    row = wh.read_table("position_market_betas", "ticker = 'XOM' AND calc_date = ?", [pd.Timestamp(END).date()])
    assert row.iloc[0].beta == pytest.approx(fit.params[1], rel=1e-8)
    assert row.iloc[0].p_value == pytest.approx(fit.pvalues[1], rel=1e-6)

    # Balanced 60/40 on END: SPY and AGG drifted from 0.55 / 0.40 since 2018-07-02, 5% cash (rf 0)
    nav = wh.query("SELECT trade_date, nav FROM portfolio_daily_nav WHERE portfolio_id = ? AND variant = 'raw'",
                   [portfolio_id_for("Balanced 60/40")]).set_index("trade_date")["nav"]
    r, t = pd.Timestamp("2018-07-02"), pd.Timestamp(END)
    w = np.array([0.55 * prices.loc[t, "SPY"] / prices.loc[r, "SPY"], 0.40 * prices.loc[t, "AGG"] / prices.loc[r, "AGG"]])
    w *= nav[r] / nav[t]
    snap = wh.read_table("portfolio_snapshots", "portfolio_id = ? AND snapshot_date = ?",
                         [portfolio_id_for("Balanced 60/40"), t.date()]).iloc[0]
    assert snap.hhi == pytest.approx(float((w ** 2).sum() * 10000), rel=1e-9)
    drift = pd.Series(np.abs(w - [0.55, 0.40]), index=["SPY", "AGG"])
    assert snap.max_drift_ticker == drift.idxmax()
    assert snap.max_allocation_drift == pytest.approx(drift.max(), rel=1e-9)
    assert snap.rebalance_recommended == (drift.max() > 0.05)
    assert isinstance(snap.sector_exposure, str) and '"Unclassified"' in snap.sector_exposure
