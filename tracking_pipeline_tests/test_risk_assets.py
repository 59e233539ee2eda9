"""The risk assets materialized for real (small demo lake, DuckDB, Dagster instance) and checked against
independent references: statsmodels OLS, numpy, scipy, hand computations from the lake's prices and holdings.

One environment per module (materializing the chain is the slow part). Its lake is the test lake with two edits:
IBM (held by no portfolio) loses ~3 months of prices, so some beta windows have fewer than 30 observations, and
PM keeps only adj_close, so its ATR / stochastic / OBV must be NULL.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import yaml
from scipy import stats

from tracking_pipeline.analytics.concentration import BUILTIN_SP500_SECTOR_WEIGHTS
from tracking_pipeline.analytics.indicators import atr, ema, rsi, stochastic
from tracking_pipeline.services.market_risk import compute_asset_metrics
from tracking_pipeline.services.portfolio_risk import compute_snapshots
from tracking_pipeline.lake.portfolios import portfolio_id_for
from tracking_pipeline.trading_calendar import sessions_between
from tracking_pipeline.warehouse import TABLES
from tracking_pipeline_tests.helpers import assert_same_tables, make_lake, run_job

START, END = "2018-01-02", "2019-06-28"
SESSIONS = sessions_between(START, END)
GAP_TICKER, GAP = "IBM", ("2018-06-01", "2018-09-14")
ADJ_ONLY = "PM"
RISK_ASSETS = ("position_market_betas", "portfolio_snapshots", "asset_performance_metrics",
               "portfolio_stress_tests", "asset_correlations")


@dataclass
class RiskEnv:
    lake: Path
    warehouse: str
    instance: dg.DagsterInstance
    defs: dg.Definitions
    results: dict[str, dg.ExecuteInProcessResult]

    def wh(self):  # noqa: ANN201
        from tracking_pipeline.warehouse import open_warehouse

        return open_warehouse(self.warehouse)


@pytest.fixture(scope="module")
def risk_env(tmp_path_factory: pytest.TempPathFactory) -> RiskEnv:
    root = tmp_path_factory.mktemp("risk")
    lake = make_lake(root / "lake")
    stocks = pd.read_parquet(lake / "prices" / "stocks.parquet")
    day = pd.to_datetime(stocks["date"])
    stocks = stocks[~((stocks["ticker"] == GAP_TICKER) & (day >= GAP[0]) & (day <= GAP[1]))].copy()
    bars = ["open", "high", "low", "close", "volume"]
    stocks[bars] = stocks[bars].astype(float)
    stocks.loc[stocks["ticker"] == ADJ_ONLY, bars] = np.nan
    stocks.to_parquet(lake / "prices" / "stocks.parquet", index=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRACKING_LAKE", str(lake))
        mp.setenv("TRACKING_WAREHOUSE", str(root / "warehouse.duckdb"))
        mp.setenv("TRACKING_REPORTS", str(root / "reports"))
        mp.setenv("TRACKING_LAKE_CACHE", str(root / "lake_cache"))
        mp.setenv("TRACKING_PARTITIONS_START", START)
        mp.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")
        for name in ("TRACKING_RISK_FREE_RATE", "TRACKING_MARKET_TICKER", "TRACKING_REBALANCE_THRESHOLD"):
            mp.delenv(name, raising=False)
        (root / "dagster_home").mkdir()
        with dg.instance_for_test(temp_dir=str(root / "dagster_home")) as instance:
            from tracking_pipeline.definitions import build_definitions

            defs = build_definitions()
            results = {"registry": run_job(defs, "portfolio_registry_job", instance),
                       "daily": run_job(defs, "daily_assets_job", instance, START, END),
                       "downstream": run_job(defs, "downstream_job", instance)}
            yield RiskEnv(lake, str(root / "warehouse.duckdb"), instance, defs, results)


# --- independent references ------------------------------------------------------------------------------------

def lake_wide(env: RiskEnv, column: str = "adj_close") -> pd.DataFrame:
    frames = [pd.read_parquet(env.lake / "prices" / f"{n}.parquet") for n in ("stocks", "etfs")]
    long = pd.concat(frames)
    long["date"] = pd.to_datetime(long["date"])
    return long.pivot(index="date", columns="ticker", values=column).astype(float).reindex(SESSIONS)


def lake_returns(env: RiskEnv) -> pd.DataFrame:
    return lake_wide(env).pct_change(fill_method=None)


def ols(y: np.ndarray, x: np.ndarray):  # noqa: ANN201
    keep = np.isfinite(y) & np.isfinite(x)
    return sm.OLS(y[keep], sm.add_constant(x[keep])).fit()


def window(frame: pd.DataFrame | pd.Series, day: str, n: int):  # noqa: ANN201
    """The last n sessions ending at day."""
    pos = frame.index.get_loc(pd.Timestamp(day))
    return frame.iloc[pos - n + 1:pos + 1]


def portfolio_file(env: RiskEnv, name: str) -> dict:
    for path in (env.lake / "portfolios").glob("*.yaml"):
        spec = yaml.safe_load(path.read_text())
        if spec["name"] == name:
            return spec
    raise KeyError(name)


def schedule(env: RiskEnv, name: str) -> list[tuple[pd.Timestamp, dict[str, float]]]:
    """(session, weights) of each rebalance: effective dates moved to the next session."""
    out = []
    for entry in portfolio_file(env, name)["holdings"]:
        i = SESSIONS.searchsorted(pd.Timestamp(entry["effective_date"]))
        if i < len(SESSIONS):
            out.append((SESSIONS[i], entry["weights"]))
    return out


def stored_nav(env: RiskEnv, name: str) -> pd.Series:
    frame = env.wh().query("SELECT trade_date, nav FROM portfolio_daily_nav WHERE portfolio_id = ? AND variant = 'raw' "
                           "ORDER BY trade_date", [portfolio_id_for(name)])
    return pd.Series(frame["nav"].to_numpy(float), index=pd.DatetimeIndex(frame["trade_date"]))


def weights_by_hand(env: RiskEnv, name: str, day: str) -> tuple[pd.Series, dict[str, float]]:
    """w_i(t) = w_i(R) * NAV(R) / NAV(t) * P_i(t) / P_i(R) for the last rebalance R <= t; and the target."""
    t = pd.Timestamp(day)
    rebalance, target = [(d, w) for d, w in schedule(env, name) if d <= t][-1]
    nav = stored_nav(env, name)
    prices = lake_wide(env)
    w = pd.Series({k: v * nav[rebalance] / nav[t] * prices.loc[t, k] / prices.loc[rebalance, k]
                   for k, v in target.items()})
    return w, target


def snapshot(env: RiskEnv, name: str, day: str) -> pd.Series:
    frame = env.wh().read_table("portfolio_snapshots", "portfolio_id = ? AND snapshot_date = ?",
                                [portfolio_id_for(name), pd.Timestamp(day).date()])
    assert len(frame) == 1
    return frame.iloc[0]


def portfolio_returns(env: RiskEnv, name: str) -> pd.Series:
    """Raw daily returns from the stored NAV, the start row excluded."""
    nav = stored_nav(env, name)
    return (nav / nav.shift(1) - 1.0).iloc[1:]


# --- tests ------------------------------------------------------------------------------------------------------

def test_every_run_succeeded_and_checks_passed(risk_env: RiskEnv) -> None:
    for result in risk_env.results.values():
        assert result.success
        failed = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
        assert not failed
    events = {e.asset_key.to_user_string(): e for result in risk_env.results.values()
              for e in result.get_asset_materialization_events()}
    for asset in RISK_ASSETS:
        metadata = events[asset].materialization.metadata
        assert metadata["dagster/row_count"].value > 0
        assert {"preview", "first_date", "last_date"} <= set(metadata)
    assert "latest" in events["portfolio_snapshots"].materialization.metadata


@pytest.mark.parametrize("ticker, day", [("NVDA", "2019-06-28"), ("JNJ", "2018-11-15"), ("GLD", "2018-12-24"),
                                         ("AGG", "2019-03-01"), ("SPY", "2019-02-04"), ("IBM", "2018-11-01")])
def test_betas_equal_statsmodels(risk_env: RiskEnv, ticker: str, day: str) -> None:
    returns = window(lake_returns(risk_env), day, 90)
    fit = ols(returns[ticker].to_numpy(), returns["SPY"].to_numpy())
    row = risk_env.wh().read_table("position_market_betas", "ticker = ? AND calc_date = ?",
                                   [ticker, pd.Timestamp(day).date()])
    assert len(row) == 1
    row = row.iloc[0]
    assert (row.window_days, row.method, row.market_index) == (90, "OLS_SIMPLE", "SPY")
    assert row.observations == fit.nobs
    assert row.beta == pytest.approx(np.clip(fit.params[1], -5, 5), rel=1e-8)
    assert row.alpha == pytest.approx(fit.params[0], rel=1e-6, abs=1e-12)
    assert row.r_squared == pytest.approx(fit.rsquared, rel=1e-8)
    assert row.std_error == pytest.approx(fit.bse[1], rel=1e-6, abs=1e-12)
    assert row.p_value == pytest.approx(fit.pvalues[1], rel=1e-6, abs=1e-12)
    if ticker == "IBM":
        assert 30 <= fit.nobs < 90  # a window partly inside the price gap


def test_beta_rows_need_30_observations(risk_env: RiskEnv) -> None:
    wh = risk_env.wh()
    first = wh.scalar("SELECT MIN(calc_date) FROM position_market_betas WHERE ticker = 'AAPL'")
    assert pd.Timestamp(first) == SESSIONS[30]  # the 30th return (the first day has none)
    returns = lake_returns(risk_env)
    counts = (returns[GAP_TICKER].notna() & returns["SPY"].notna()).rolling(90, min_periods=1).sum()
    stored = set(pd.DatetimeIndex(wh.query("SELECT calc_date FROM position_market_betas WHERE ticker = ?",
                                           [GAP_TICKER])["calc_date"]))
    expected = set(counts.index[counts >= 30])
    assert stored == expected
    assert (counts < 30).loc["2018-07-01":"2018-12-31"].any()  # the gap really leaves short windows


def test_snapshot_weights_concentration_and_weighted_beta_by_hand(risk_env: RiskEnv) -> None:
    name, day = "Diversified Large Cap", "2019-03-15"
    w, target = weights_by_hand(risk_env, name, day)
    row = snapshot(risk_env, name, day)
    assert row.hhi == pytest.approx((w ** 2).sum() * 10000, rel=1e-9)
    assert row.effective_num_positions == pytest.approx(1 / (w ** 2).sum(), rel=1e-9)
    top = w.sort_values(ascending=False)
    assert row.top_3_concentration == pytest.approx(top.iloc[:3].sum(), rel=1e-9)
    assert row.top_10_concentration == pytest.approx(top.iloc[:10].sum(), rel=1e-9)
    returns = window(lake_returns(risk_env), day, 90)
    fits = {t: ols(returns[t].to_numpy(), returns["SPY"].to_numpy()) for t in w.index}
    assert row.market_beta_weighted == pytest.approx(sum(w[t] * fits[t].params[1] for t in w.index), rel=1e-8)
    assert row.market_beta_r_squared == pytest.approx(sum(w[t] * fits[t].rsquared for t in w.index), rel=1e-8)
    assert row.market_beta_observations == min(f.nobs for f in fits.values())
    drift = (w - pd.Series(target)).abs()
    assert row.max_allocation_drift == pytest.approx(drift.max(), rel=1e-9)
    assert row.max_drift_ticker == drift.idxmax()
    assert row.rebalance_recommended == (drift.max() > 0.05)


def test_drift_flag_follows_the_threshold(risk_env: RiskEnv) -> None:
    name, day = "Tech Leaders", "2019-06-28"
    w, target = weights_by_hand(risk_env, name, day)
    row = snapshot(risk_env, name, day)
    drift = (w - pd.Series(target)).abs().max()
    assert row.max_allocation_drift == pytest.approx(drift, rel=1e-9)
    wh = risk_env.wh()
    stored = wh.read_table("portfolio_snapshots")
    assert (stored["rebalance_recommended"] == (stored["max_allocation_drift"] > 0.05)).all()
    # no demo portfolio drifts 5 points in this period; at 1 point some days need a rebalance
    run = compute_snapshots(wh, SESSIONS[0], SESSIONS[-1], "SPY", 0.0, {}, lambda code: None, threshold=0.01)
    rows = run.rows.sort_values(["portfolio_id", "snapshot_date"], ignore_index=True)
    flags = rows["rebalance_recommended"].astype(bool)
    assert flags.any() and not flags.all()
    assert (flags == (rows["max_allocation_drift"] > 0.01)).all()
    np.testing.assert_allclose(rows["max_allocation_drift"], stored["max_allocation_drift"], rtol=1e-10)


@pytest.mark.parametrize("name, day", [("Alpha Momentum 10", "2019-06-28"), ("Balanced 60/40", "2019-05-15")])
def test_direct_beta_and_volatility_independently(risk_env: RiskEnv, name: str, day: str) -> None:
    r = portfolio_returns(risk_env, name)
    row = snapshot(risk_env, name, day)
    market = lake_returns(risk_env)["SPY"].reindex(r.index)
    fit = ols(window(r, day, 90).to_numpy(), window(market, day, 90).to_numpy())
    assert row.market_beta_direct == pytest.approx(fit.params[1], rel=1e-8)
    upto = r.loc[:day].to_numpy()
    rv21 = math.sqrt(252 / 21 * np.sum(upto[-21:] ** 2))
    rv63 = math.sqrt(252 / 63 * np.sum(upto[-63:] ** 2))
    assert row.realized_volatility_21d == pytest.approx(rv21, rel=1e-10)
    assert row.realized_volatility_63d == pytest.approx(rv63, rel=1e-10)
    trend = "increasing" if rv21 > 1.1 * rv63 else "decreasing" if rv21 < 0.9 * rv63 else "stable"
    assert row.volatility_trend == trend
    history = np.array([math.sqrt(252 / 21 * np.sum(upto[i - 21:i] ** 2)) for i in range(21, len(upto) + 1)])
    last = history[-252:]
    assert row.volatility_percentile == pytest.approx(np.mean(last <= last[-1] + 1e-15))
    assert row.expected_volatility_21d == pytest.approx(har_by_statsmodels(upto), rel=1e-8)


def har_by_statsmodels(r: np.ndarray) -> float:
    """The contract's HAR-RV forecast at the last row, fitted with statsmodels on explicitly built rows."""
    rv = r ** 2
    t = len(rv) - 1
    xs, ys = [], []
    for s in range(21, t - 21 + 1):  # rv_m needs 22 values; the target's 21 days must be known at t
        xs.append([rv[s], rv[s - 4:s + 1].mean(), rv[s - 21:s + 1].mean()])
        ys.append(rv[s + 1:s + 22].mean())
    xs, ys = np.array(xs[-504:]), np.array(ys[-504:])
    assert len(ys) >= 126
    fit = sm.OLS(ys, sm.add_constant(xs)).fit()
    now = np.array([[1.0, rv[t], rv[t - 4:t + 1].mean(), rv[t - 21:t + 1].mean()]])
    return min(math.sqrt(252 * max(float(fit.predict(now)[0]), 0.0)), 3.0)


def test_har_is_null_without_126_observations(risk_env: RiskEnv) -> None:
    # Tech Leaders starts 2019-01-02: fewer than 126 complete HAR rows by 2019-06-28
    assert pd.isna(snapshot(risk_env, "Tech Leaders", "2019-06-28").expected_volatility_21d)
    assert pd.isna(snapshot(risk_env, "Tech Leaders", "2019-01-02").realized_volatility_21d)


@pytest.mark.parametrize("name", ["Balanced 60/40", "Defensive Income"])
def test_sector_exposure_with_unclassified_etfs(risk_env: RiskEnv, name: str) -> None:
    day = "2019-04-30"
    w, _ = weights_by_hand(risk_env, name, day)
    sectors = pd.read_csv(risk_env.lake / "reference" / "sectors.csv").set_index("ticker")["gics_sector"]
    by_sector: dict[str, float] = {}
    for ticker, weight in w.items():
        sector = sectors.get(ticker, "Unclassified")
        by_sector[sector] = by_sector.get(sector, 0.0) + weight
    exposure = json.loads(snapshot(risk_env, name, day).sector_exposure)
    assert set(exposure) == set(by_sector) | set(BUILTIN_SP500_SECTOR_WEIGHTS)
    assert "Unclassified" in exposure  # SPY, AGG, GLD are not in sectors.csv
    for sector, values in exposure.items():
        assert values["portfolio"] == pytest.approx(by_sector.get(sector, 0.0), abs=1e-12)
        assert values["benchmark"] == pytest.approx(BUILTIN_SP500_SECTOR_WEIGHTS.get(sector, 0.0))
        assert values["diff"] == pytest.approx(values["portfolio"] - values["benchmark"], abs=1e-12)


def test_stress_tests_by_hand(risk_env: RiskEnv) -> None:
    name = "Alpha Momentum 10"
    stress = risk_env.wh().read_table("portfolio_stress_tests", "portfolio_id = ?", [portfolio_id_for(name)])
    days = pd.DatetimeIndex(stress["snapshot_date"].unique())
    in_range = SESSIONS[SESSIONS >= pd.Timestamp("2018-07-02")]
    month_ends = pd.Series(in_range, index=in_range).groupby(in_range.to_period("M")).max()
    assert set(days) == set(month_ends)  # the last month end is also the latest day (2019-06-28)
    nav = stored_nav(risk_env, name)
    prices = lake_wide(risk_env)
    for day in ("2018-11-30", "2018-12-31", "2019-06-28"):
        rows = stress[stress["snapshot_date"] == pd.Timestamp(day)].set_index("scenario")
        beta = snapshot(risk_env, name, day).market_beta_weighted
        for shock in (-0.1, -0.2, -0.3, 0.1):
            row = rows.loc[f"Market {shock * 100:+.0f}%"]
            assert row.market_shock == pytest.approx(shock)
            assert row.expected_return == pytest.approx(beta * shock, rel=1e-12)
            assert row.expected_pnl == pytest.approx(nav[pd.Timestamp(day)] * beta * shock, rel=1e-12)
        if day == "2018-11-30":  # the Q4 2018 sell-off (to 2018-12-24) is not over yet: no look-ahead
            assert "2018 Q4 sell-off" not in rows.index
            continue
        w, _ = weights_by_hand(risk_env, name, day)
        move = prices.loc["2018-12-24"] / prices.loc["2018-09-20"] - 1
        replay = rows.loc["2018 Q4 sell-off"]
        assert replay.expected_return == pytest.approx(sum(w[t] * move[t] for t in w.index), rel=1e-9)
        assert replay.market_shock == pytest.approx(move["SPY"], rel=1e-12)
        assert replay.expected_pnl == pytest.approx(nav[pd.Timestamp(day)] * replay.expected_return, rel=1e-12)
        assert "COVID crash" not in rows.index  # not in the data


@pytest.mark.parametrize("day, days, a, b", [("2019-05-31", 60, "AAPL", "MSFT"), ("2019-06-28", 252, "GLD", "XOM"),
                                              ("2018-12-31", 20, "AGG", "SPY")])
def test_correlation_equals_scipy(risk_env: RiskEnv, day: str, days: int, a: str, b: str) -> None:
    returns = window(lake_returns(risk_env), day, days)
    ref = stats.pearsonr(returns[a], returns[b])
    row = risk_env.wh().read_table("asset_correlations", "calc_date = ? AND window_days = ? AND ticker_a = ? AND "
                                   "ticker_b = ?", [pd.Timestamp(day).date(), days, a, b])
    assert len(row) == 1
    assert row.iloc[0].correlation == pytest.approx(ref.statistic, rel=1e-9)
    assert row.iloc[0].p_value == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-300)
    assert row.iloc[0].observations == days


def test_correlations_cover_co_held_pairs_on_month_ends(risk_env: RiskEnv) -> None:
    """Every pair held together by some portfolio on the date, and no other pair (GLD and SPY are held, but never
    in the same book)."""
    wh = risk_env.wh()
    day = pd.Timestamp("2019-05-31")
    expected = set()
    for path in (risk_env.lake / "portfolios").glob("*.yaml"):
        spec = yaml.safe_load(path.read_text())
        if pd.Timestamp(spec["start_date"]) <= day:
            held = sorted(t for t, w in [w for d, w in schedule(risk_env, spec["name"]) if d <= day][-1].items()
                          if w > 0 and t != GAP_TICKER)
            expected |= {(a, b) for i, a in enumerate(held) for b in held[i + 1:]}
    pairs = wh.query("SELECT ticker_a, ticker_b FROM asset_correlations WHERE calc_date = ? AND window_days = 60",
                     [day.date()])
    assert set(zip(pairs["ticker_a"], pairs["ticker_b"])) == expected and len(pairs) == len(expected)
    assert ("GLD", "SPY") not in expected and {"GLD", "SPY"} <= set(pairs["ticker_a"]) | set(pairs["ticker_b"])
    dates = pd.DatetimeIndex(wh.query("SELECT DISTINCT calc_date FROM asset_correlations")["calc_date"])
    assert dates.max() == SESSIONS[-1] and dates.min() == pd.Timestamp("2018-07-31")
    assert GAP_TICKER not in set(pairs["ticker_a"]) | set(pairs["ticker_b"])


def test_indicators_in_ticker_batches_equal_the_whole_universe_at_once(risk_env: RiskEnv) -> None:
    """A batch of tickers at a time (bounded memory) gives exactly the rows of the whole universe at once, and the
    rows the daily job stored (to the last digits: windowed sums start where the run's range starts)."""
    start, end = pd.Timestamp("2019-03-01"), pd.Timestamp("2019-06-28")
    wh = risk_env.wh()
    stored = wh.read_table("asset_performance_metrics", "trade_date BETWEEN ? AND ?", [start.date(), end.date()])
    stored = stored.sort_values(["trade_date", "ticker"], ignore_index=True)
    whole = compute_asset_metrics(wh, start, end, "SPY", 0.0, batch=10_000).rows
    assert stored["ticker"].nunique() > 20 and whole["trade_date"].is_monotonic_increasing
    for batch in (1, 7):
        pd.testing.assert_frame_equal(compute_asset_metrics(wh, start, end, "SPY", 0.0, batch=batch).rows, whole,
                                      check_exact=True, obj=f"batch {batch}")
    whole = whole.sort_values(["trade_date", "ticker"], ignore_index=True)[stored.columns]
    pd.testing.assert_frame_equal(whole, stored, check_dtype=False, rtol=1e-10)


def test_snapshots_in_batches_of_books_equal_every_book_at_once(risk_env: RiskEnv) -> None:
    """Books a batch at a time (bounded memory) give exactly the rows of every book at once; a range ending before
    later rebalances (the engine follows only those up to the range's end) gives the rows the backfill stored."""
    start, end = pd.Timestamp("2019-02-01"), pd.Timestamp("2019-03-29")
    wh = risk_env.wh()
    sectors = pd.read_csv(risk_env.lake / "reference" / "sectors.csv").set_index("ticker")["gics_sector"].to_dict()
    whole = compute_snapshots(wh, start, end, "SPY", 0.0, sectors, lambda code: None, batch=10_000)
    assert not whole.errors and len(whole.portfolio_ids) >= 3
    later = [p.name for p in whole.active if any(d > end for d, _ in p.schedule)]
    assert later, "some book must rebalance after the range for the cut at its end to be exercised"
    for batch in (1, 2):
        run = compute_snapshots(wh, start, end, "SPY", 0.0, sectors, lambda code: None, batch=batch)
        assert run.portfolio_ids == whole.portfolio_ids
        pd.testing.assert_frame_equal(run.rows, whole.rows, check_exact=True, obj=f"batch {batch}")
    stored = wh.read_table("portfolio_snapshots", "snapshot_date BETWEEN ? AND ?", [start.date(), end.date()])
    stored = stored.sort_values(["portfolio_id", "snapshot_date"], ignore_index=True)
    rows = whole.rows.sort_values(["portfolio_id", "snapshot_date"], ignore_index=True)
    assert len(rows) == len(stored)
    for column in ("market_beta_weighted", "hhi", "top_3_concentration", "max_allocation_drift",
                   "realized_volatility_21d"):
        np.testing.assert_allclose(rows[column].astype(float), stored[column].astype(float), rtol=1e-10,
                                   err_msg=column)
    assert list(rows["max_drift_ticker"]) == list(stored["max_drift_ticker"])


@pytest.mark.parametrize("ticker", ["AAPL", "SPY", ADJ_ONLY])
def test_indicators_spot_checks(risk_env: RiskEnv, ticker: str) -> None:
    day = pd.Timestamp("2019-06-28")
    px = lake_wide(risk_env)[ticker]
    r = px.pct_change(fill_method=None)
    row = risk_env.wh().read_table("asset_performance_metrics", "ticker = ? AND trade_date = ?",
                                   [ticker, day.date()]).iloc[0]
    assert row.sma_20 == pytest.approx(px.iloc[-20:].mean(), rel=1e-12)
    assert row.sma_200 == pytest.approx(px.iloc[-200:].mean(), rel=1e-12)
    assert row.ema_12 == pytest.approx(ema(px, 12).iloc[-1], rel=1e-12)
    assert row.macd == pytest.approx(ema(px, 12).iloc[-1] - ema(px, 26).iloc[-1], rel=1e-9)
    assert row.rsi_14 == pytest.approx(rsi(px, 14).iloc[-1], rel=1e-12)
    sd = px.iloc[-20:].std(ddof=0)
    assert row.bollinger_upper == pytest.approx(px.iloc[-20:].mean() + 2 * sd, rel=1e-12)
    assert row.return_1m == pytest.approx(px.iloc[-1] / px.iloc[-22] - 1, rel=1e-12)
    assert row.return_1y == pytest.approx(px.iloc[-1] / px.iloc[-253] - 1, rel=1e-12)
    assert pd.isna(row.return_3y) and pd.isna(row.return_5y)  # 756 / 1260 sessions not in the lake
    last = r.iloc[-252:].to_numpy()
    assert row.volatility_1y == pytest.approx(np.std(last, ddof=1) * math.sqrt(252), rel=1e-10)
    assert row.sharpe_1y == pytest.approx(np.mean(last) / np.std(last, ddof=1) * math.sqrt(252), rel=1e-9)
    fit = ols(last, lake_returns(risk_env)["SPY"].iloc[-252:].to_numpy())
    assert row.beta_1y == pytest.approx(fit.params[1], rel=1e-8)
    if ticker == ADJ_ONLY:
        assert pd.isna(row.atr_14) and pd.isna(row.stoch_k) and pd.isna(row.stoch_d) and pd.isna(row.obv)
        return
    factor = px / lake_wide(risk_env, "close")[ticker]
    high, low = lake_wide(risk_env, "high")[ticker] * factor, lake_wide(risk_env, "low")[ticker] * factor
    assert row.atr_14 == pytest.approx(atr(high, low, px, 14).iloc[-1], rel=1e-10)
    k, d = stochastic(high, low, px)
    assert row.stoch_k == pytest.approx(100 * (px.iloc[-1] - low.iloc[-14:].min())
                                        / (high.iloc[-14:].max() - low.iloc[-14:].min()), rel=1e-10)
    assert row.stoch_d == pytest.approx(d.iloc[-1], rel=1e-10)
    volume = lake_wide(risk_env, "volume")[ticker]
    assert row.obv == pytest.approx(float((np.sign(px.diff()).fillna(0) * volume).sum()), rel=1e-12)


def test_rerunning_one_partition_reproduces_the_backfill(risk_env: RiskEnv) -> None:
    day = "2019-03-15"
    tables = {"position_market_betas": "calc_date", "portfolio_snapshots": "snapshot_date",
              "asset_performance_metrics": "trade_date"}
    wh = risk_env.wh()
    before = {t: wh.read_table(t, f"{c} = ?", [pd.Timestamp(day).date()]) for t, c in tables.items()}
    result = run_job(risk_env.defs, "daily_assets_job", risk_env.instance, day, day)
    assert result.success
    for table, column in tables.items():
        after = wh.read_table(table, f"{column} = ?", [pd.Timestamp(day).date()])
        assert len(before[table]) > 0
        # JSON text (sector exposure, top names, ...): compare the parsed numbers, not their last digit
        json_columns = [c for c, kind in TABLES[table].columns if kind == "json"]
        parsed = {c: ([json.loads(v) if isinstance(v, str) else None for v in after.pop(c)],
                      [json.loads(v) if isinstance(v, str) else None for v in before[table].pop(c)])
                  for c in json_columns}
        assert_same_tables({table: pd.DataFrame({c: got for c, (got, _) in parsed.items()})},
                           {table: pd.DataFrame({c: want for c, (_, want) in parsed.items()})}, tol=1e-12)
        pd.testing.assert_frame_equal(after, before[table], rtol=1e-10)
