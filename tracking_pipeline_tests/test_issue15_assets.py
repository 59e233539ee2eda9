"""Issue 15 through Dagster on the demo data (DuckDB): `portfolio_rolling_metrics` equals quantstats/empyrical on the
stored NAV and is incremental, the new snapshot columns and `is_significant` equal independent computations, and
`rebalancing_events` trades reproduce the post weights exactly and agree with the snapshots' drift flag.

One module-scoped environment: the small demo lake (2018-01-02..2019-06-28) plus a bounded portfolio, risk-free
2%, the whole chain once."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass

import dagster as dg
import empyrical as ep
import numpy as np
import pandas as pd
import pytest
import quantstats as qs

from tracking_pipeline.analytics.rolling import ROLLING_WINDOWS
from tracking_pipeline.lake.portfolios import portfolio_id_for
from tracking_pipeline.services.performance import BENCHMARK
from tracking_pipeline.settings import DEMO_LAKE
from tracking_pipeline.trading_calendar import sessions_between
from tracking_pipeline_tests.conftest import TrackingEnv
from tracking_pipeline.warehouse import Write
from tracking_pipeline_tests.helpers import make_lake, run_assets, run_chain, table_snapshot, write_portfolio

RF = 0.02
START, END = "2018-01-02", "2019-06-28"
BOUNDED = "Bounded Tech"


@dataclass
class Chain:
    env: TrackingEnv
    defs: dg.Definitions


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    root = tmp_path_factory.mktemp("issue15")
    lake = make_lake(root / "lake")
    write_portfolio(lake, "bounded.yaml", {
        "name": BOUNDED, "description": "AAPL capped at 35%", "source": "test", "start_date": "2018-03-01",
        "benchmark": "QQQ", "variants": ["raw"], "bounds": {"AAPL": [0.2, 0.35], "MSFT": [0.0, 0.5]},
        "holdings": [{"effective_date": "2018-03-01", "weights": {"AAPL": 0.35, "MSFT": 0.35, "XOM": 0.25}},
                     {"effective_date": "2019-01-02", "weights": {"AAPL": 0.30, "MSFT": 0.40, "JNJ": 0.25}}]})
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {"TRACKING_LAKE": str(lake), "TRACKING_WAREHOUSE": str(root / "warehouse.duckdb"),
                            "TRACKING_REPORTS": str(root / "reports"), "TRACKING_LAKE_CACHE": str(root / "cache"),
                            "TRACKING_PARTITIONS_START": START, "TRACKING_RISK_FREE_RATE": str(RF),
                            "TRACKING_REBALANCE_COST_BPS": "15", "TRACKING_REBALANCE_THRESHOLD": "0.03"}.items():
            mp.setenv(name, value)
        mp.delenv("TRACKING_MARKET_TICKER", raising=False)
        (root / "dagster_home").mkdir()
        with dg.instance_for_test(temp_dir=str(root / "dagster_home")) as instance:
            env = TrackingEnv(root, lake, str(root / "warehouse.duckdb"), instance)
            defs = env.defs()
            run_chain(defs, instance, START, END, downstream=False)  # only daily assets are tested here
            yield Chain(env, defs)


def _nav_and_bench(wh, pid: int) -> tuple[pd.DataFrame, pd.Series]:  # noqa: ANN001
    """The stored NAV (days x variant) and the benchmark's adj_close on those days."""
    ticker = wh.scalar("SELECT benchmark FROM portfolio_definitions WHERE portfolio_id = ?", [pid])
    nav = wh.query("SELECT trade_date, variant, nav FROM portfolio_daily_nav WHERE portfolio_id = ?", [pid]).pivot(
        index="trade_date", columns="variant", values="nav").sort_index()
    px = wh.query("SELECT trade_date, adj_close FROM price_data WHERE ticker = ?", [ticker]).set_index(
        "trade_date")["adj_close"].sort_index().reindex(nav.index)
    return nav, px


def _close(got: pd.Series, want: pd.Series, what: str, tol: float = 1e-9) -> int:
    """Equal where defined, NULL where the reference is not a finite number; returns the values compared."""
    want = want.replace([np.inf, -np.inf], np.nan)
    assert (got.isna() == want.isna()).all(), what
    both = got.notna()
    if both.any():
        diff = ((got[both] - want[both]).abs() / np.maximum(1.0, want[both].abs())).max()
        assert diff <= tol, f"{what}: {diff:.3g}"
    return int(both.sum())


# --------------------------------------------------------------------------- rolling metrics


def test_rolling_metrics_equal_quantstats_on_the_stored_nav(chain: Chain) -> None:
    wh = chain.env.warehouse_handle()
    table = wh.read_table("portfolio_rolling_metrics")
    ids = wh.read_table("portfolio_definitions")["portfolio_id"].astype("int64").tolist()
    checked = compared = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for pid in ids:
            nav, px = _nav_and_bench(wh, pid)
            b = px.pct_change().iloc[1:]
            for variant in [*nav.columns, BENCHMARK]:
                r = b if variant == BENCHMARK else nav[variant].pct_change().iloc[1:]
                mine = table[(table["portfolio_id"] == pid) & (table["variant"] == variant)].set_index("trade_date")
                assert list(mine.index) == list(r.index), (pid, variant)  # a row per day with a return
                for w in ROLLING_WINDOWS:
                    what = f"{pid} {variant} {w}"
                    compared += _close(mine[f"sharpe_{w}"], qs.stats.rolling_sharpe(r, rf=RF, rolling_period=w),
                                       f"sharpe {what}")
                    compared += _close(mine[f"sortino_{w}"], qs.stats.rolling_sortino(r, rf=RF, rolling_period=w),
                                       f"sortino {what}")
                    compared += _close(mine[f"volatility_{w}"], qs.stats.rolling_volatility(r, rolling_period=w),
                                       f"volatility {what}")
                    full = r.rolling(w).count() == w  # empyrical answers one value for a series under a window
                    compared += _close(mine[f"max_drawdown_{w}"],
                                       ep.roll_max_drawdown(r, window=w).reindex(r.index).where(full),
                                       f"max drawdown {what}")
                    beta = r.rolling(w).cov(b) / b.rolling(w).var()
                    compared += _close(mine[f"beta_{w}"], beta.where(b.rolling(w).var() > 0), f"beta {what}", 1e-8)
                checked += 1
    assert checked >= 5 * 3 and compared > 15_000
    # NULL until a window is full: Bounded Tech starts 2018-03-01, so no 252-day figure before 2019-03
    bounded = table[(table["portfolio_id"] == portfolio_id_for(BOUNDED)) & (table["variant"] == "raw")]
    assert bounded["sharpe_252"].first_valid_index() is not None
    first = bounded.loc[bounded["sharpe_252"].first_valid_index(), "trade_date"]
    assert len(sessions_between("2018-03-02", first)) == 252


def test_rolling_metrics_of_a_range_equal_the_backfill(chain: Chain) -> None:
    """A range re-run reads only its look-back and rewrites exactly its rows, equal to the full backfill."""
    wh = chain.env.warehouse_handle()
    before = table_snapshot(wh)["portfolio_rolling_metrics"]
    wh.replace(Write("portfolio_rolling_metrics", before.iloc[:0], {"trade_date": ("2019-03-01", "2019-03-29")}))
    result = run_assets(chain.defs, chain.env.instance, ("portfolio_rolling_metrics",), "2019-03-01", "2019-03-29")
    assert all(c.passed for c in result.get_asset_check_evaluations())
    after = table_snapshot(wh)["portfolio_rolling_metrics"]
    pd.testing.assert_frame_equal(after, before, check_exact=False, rtol=1e-12, atol=1e-15)


# --------------------------------------------------------------------------- snapshots and betas


def test_snapshot_figures_of_issue_15(chain: Chain) -> None:
    wh = chain.env.warehouse_handle()
    snaps = wh.read_table("portfolio_snapshots")
    assert len(snaps) > 1000
    forecast = snaps["expected_volatility_21d"]
    assert (forecast.dropna() > 0).all()
    assert (snaps["expected_volatility_filtered"].notna() == forecast.notna()).all()
    rv63 = snaps["realized_volatility_63d"]
    bands = pd.cut(rv63, [-np.inf, 0.15, 0.25, 0.35, 0.50, np.inf], right=False,
                   labels=["Very Low", "Low", "Moderate", "High", "Very High"]).astype(object)
    known = rv63.notna()
    assert known.sum() > 900 and (snaps.loc[known, "risk_level"] == bands[known]).all()
    assert snaps.loc[~known, "risk_level"].isna().all()
    assert set(snaps.loc[known, "risk_level"]) >= {"Low", "Moderate"}
    sectors = pd.read_csv(DEMO_LAKE / "reference" / "sectors.csv")
    for row in snaps.sample(40, random_state=1).itertuples():
        top3, top10 = json.loads(row.top_3_positions), json.loads(row.top_10_positions)
        assert sum(p["weight"] for p in top3) == pytest.approx(row.top_3_concentration, abs=1e-12)
        assert sum(p["weight"] for p in top10) == pytest.approx(row.top_10_concentration, abs=1e-12)
        assert [p["weight"] for p in top10] == sorted((p["weight"] for p in top10), reverse=True)
        counts = json.loads(row.sector_positions)
        exposure = json.loads(row.sector_exposure)
        assert set(counts) <= set(exposure)
        held = [p["ticker"] for p in top10] if sum(counts.values()) <= 10 else None
        if held is not None:
            assert sum(counts.values()) == len(held)
            unknown = sorted(t for t in held if t not in set(sectors["ticker"]))
            assert json.loads(row.unclassified_tickers) == unknown
        diffs = {s: v["diff"] for s, v in exposure.items() if s != "Unclassified"}
        if max(diffs.values()) > 0:
            assert row.largest_overweight == pytest.approx(max(diffs.values()), abs=1e-12)
            assert diffs[row.largest_overweight_sector] == pytest.approx(max(diffs.values()), abs=1e-12)
        else:
            assert pd.isna(row.largest_overweight) and pd.isna(row.largest_overweight_sector)
        assert row.largest_underweight == pytest.approx(min(diffs.values()), abs=1e-12)
        assert diffs[row.largest_underweight_sector] == pytest.approx(min(diffs.values()), abs=1e-12)
    balanced = snaps[snaps["portfolio_id"] == portfolio_id_for("Balanced 60/40")]
    assert set(balanced["unclassified_tickers"].map(lambda v: tuple(json.loads(v)))) == {("AGG", "SPY")}


def test_snapshots_flag_positions_outside_their_bounds(chain: Chain) -> None:
    wh = chain.env.warehouse_handle()
    pid = portfolio_id_for(BOUNDED)
    snaps = wh.read_table("portfolio_snapshots", "portfolio_id = ?", [pid]).set_index("snapshot_date")
    others = wh.read_table("portfolio_snapshots", "portfolio_id <> ?", [pid])
    assert others["bounds_breaches"].isna().all()  # no bounds in their files
    prices = wh.query("SELECT trade_date, ticker, adj_close FROM price_data WHERE ticker IN ('AAPL', 'MSFT', 'XOM')"
                      ).pivot(index="trade_date", columns="ticker", values="adj_close")
    nav = wh.query("SELECT trade_date, nav FROM portfolio_daily_nav WHERE portfolio_id = ? AND variant = 'raw'",
                   [pid]).set_index("trade_date")["nav"]
    r = pd.Timestamp("2018-03-01")
    days = nav.loc["2018-03-01":"2018-12-31"].index
    aapl = 0.35 * prices.loc[days, "AAPL"] / prices.loc[r, "AAPL"] * nav[r] / nav[days]
    msft = 0.35 * prices.loc[days, "MSFT"] / prices.loc[r, "MSFT"] * nav[r] / nav[days]
    expected = {d: [t for t, w, lo, hi in (("AAPL", aapl[d], 0.2, 0.35), ("MSFT", msft[d], 0.0, 0.5))
                    if w < lo - 1e-9 or w > hi + 1e-9] for d in days}
    got = {d: [b["ticker"] for b in json.loads(snaps.at[d, "bounds_breaches"])] for d in days}
    assert got == expected
    assert any(got.values()) and not all(got.values())  # AAPL drifts above 35% on some days only


def test_is_significant_is_a_p_value_below_ten_percent(chain: Chain) -> None:
    wh = chain.env.warehouse_handle()
    betas = wh.read_table("position_market_betas")
    assert betas["is_significant"].notna().all()
    assert (betas["is_significant"].astype(bool) == (betas["p_value"] < 0.10)).all()
    assert 0 < betas["is_significant"].astype(bool).mean() < 1


# --------------------------------------------------------------------------- rebalancing events


def test_rebalancing_trades_reproduce_the_post_weights(chain: Chain) -> None:
    wh = chain.env.warehouse_handle()
    events = wh.read_table("rebalancing_events")
    holdings = wh.read_table("portfolio_holdings")
    defs = wh.read_table("portfolio_definitions")
    prices = wh.query("SELECT trade_date, ticker, adj_close FROM price_data").pivot(
        index="trade_date", columns="ticker", values="adj_close")
    sessions = sessions_between(START, END)
    for d in defs.itertuples():
        pid = int(d.portfolio_id)
        mine = events[events["portfolio_id"] == pid].set_index("event_date")
        nav = wh.query("SELECT trade_date, nav FROM portfolio_daily_nav WHERE portfolio_id = ? AND variant = 'raw'",
                       [pid]).set_index("trade_date")["nav"]
        dates = holdings[holdings["portfolio_id"] == pid]["effective_date"].unique()
        on_sessions = sorted({sessions[sessions.searchsorted(x)] for x in dates if x <= sessions[-1]})
        first = nav.index.min()
        planned = [x for x in on_sessions if x >= first]
        got = mine[mine["event_type"].isin(["initial", "scheduled"])]
        assert list(got.index) == planned, d.name
        assert got["event_type"].tolist() == ["initial"] + ["scheduled"] * (len(planned) - 1)
        for day, row in mine.iterrows():
            pre, post = json.loads(row.pre_weights), json.loads(row.post_weights)
            trades = {t["ticker"]: t for t in json.loads(row.trades)}
            assert row.nav == pytest.approx(nav[day], rel=1e-12)
            for ticker in set(pre) | set(post):
                change = trades[ticker]["weight_change"] if ticker in trades else 0.0
                assert pre.get(ticker, 0.0) + change == pytest.approx(post.get(ticker, 0.0), abs=1e-15)
            for ticker, trade in trades.items():
                price = prices.at[day, ticker]
                assert trade["price"] == pytest.approx(price, rel=1e-12)
                assert trade["value"] == pytest.approx(trade["weight_change"] * nav[day], rel=1e-12)
                # pre shares + traded shares = post shares, at that close
                pre_shares = pre.get(ticker, 0.0) * nav[day] / price
                post_shares = post.get(ticker, 0.0) * nav[day] / price
                assert pre_shares + trade["shares"] == pytest.approx(post_shares, rel=1e-12, abs=1e-9)
            changes = np.array([t["weight_change"] for t in trades.values()])
            assert row.turnover == pytest.approx(np.abs(changes).sum() / 2, rel=1e-12)
            assert row.estimated_cost == pytest.approx(row.traded_value * 15 / 10_000, rel=1e-12)
            assert row.cost_bps == 15
            if row.event_type != "initial":
                assert row.max_drift == pytest.approx(np.abs(changes).max(), rel=1e-12)
            if row.event_type != "threshold":
                target = holdings[(holdings["portfolio_id"] == pid) & (holdings["effective_date"] <= day)]
                target = target[target["effective_date"] == target["effective_date"].max()]
                assert post == pytest.approx(dict(zip(target["ticker"], target["weight"])), abs=1e-15)


def test_scheduled_pre_weights_are_the_drifted_weights(chain: Chain) -> None:
    """Balanced 60/40 on 2019-01-02: SPY and AGG drifted from 0.55 / 0.40 since 2018-07-02 (by hand)."""
    wh = chain.env.warehouse_handle()
    pid = portfolio_id_for("Balanced 60/40")
    row = wh.read_table("rebalancing_events", "portfolio_id = ? AND event_date = ?",
                        [pid, pd.Timestamp("2019-01-02").date()]).iloc[0]
    prices = wh.query("SELECT trade_date, ticker, adj_close FROM price_data WHERE ticker IN ('SPY', 'AGG')").pivot(
        index="trade_date", columns="ticker", values="adj_close")
    nav = wh.query("SELECT trade_date, nav FROM portfolio_daily_nav WHERE portfolio_id = ? AND variant = 'raw'",
                   [pid]).set_index("trade_date")["nav"]
    r, t = pd.Timestamp("2018-07-02"), pd.Timestamp("2019-01-02")
    expected = {k: w0 * prices.at[t, k] / prices.at[r, k] * nav[r] / nav[t] for k, w0 in (("SPY", 0.55), ("AGG", 0.40))}
    assert row.event_type == "scheduled"
    assert json.loads(row.pre_weights) == pytest.approx(expected, rel=1e-12)


def test_threshold_events_are_the_days_the_snapshot_drift_flag_switches_on(chain: Chain) -> None:
    wh = chain.env.warehouse_handle()
    snaps = wh.read_table("portfolio_snapshots")
    events = wh.read_table("rebalancing_events")
    total = 0
    for pid, mine in snaps.groupby("portfolio_id"):
        flag = mine.set_index("snapshot_date")["rebalance_recommended"].astype(bool)
        switched = flag & ~flag.shift(1, fill_value=False)
        scheduled = set(events[(events["portfolio_id"] == pid) & (events["event_type"] != "threshold")]["event_date"])
        expected = [d for d in flag.index[switched] if d not in scheduled]
        got = events[(events["portfolio_id"] == pid) & (events["event_type"] == "threshold")]
        assert list(got["event_date"]) == expected, pid
        for row in got.itertuples():
            snap = mine[mine["snapshot_date"] == row.event_date].iloc[0]
            assert row.max_drift == pytest.approx(snap.max_allocation_drift, rel=1e-12)
        total += len(got)
    assert total > 0
