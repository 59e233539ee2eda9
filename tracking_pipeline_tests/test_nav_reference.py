"""Stored NAV equals an independent, day-by-day recomputation from the lake's own files to 1e-9 (issue 2,
"Done when"). The reference reads the parquet/yaml files directly, takes sessions from exchange_calendars and walks
each portfolio one day at a time with explicit share counts and a cash balance, sharing no code with the engine.
The chain runs as two ranges so the restart from stored NAV is covered too; the risk-free rate is non-zero,
one portfolio holds cash and rebalances on holidays, one holds nothing but cash, and a held ticker has a 3-day
hole in its prices."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import exchange_calendars as xc
import pandas as pd
import pytest
import yaml

from tracking_pipeline.analytics.overlays.registry import available_models
from tracking_pipeline.warehouse import open_warehouse
from tracking_pipeline_tests.helpers import make_lake, run_nav_chain, write_portfolio

LAKE_START, START, SPLIT, NEXT, END = "2018-01-02", "2018-06-01", "2018-10-15", "2018-10-16", "2018-12-31"
RATE = 0.03
HOLE = ["2018-10-24", "2018-10-25", "2018-10-26"]  # JNJ unpriced on these sessions
CASH_BOOK = {
    "name": 'Cash; "quoted" book',
    "start_date": "2018-06-02",  # a Saturday: first NAV day Mon 2018-06-04
    "initial_nav": 1000,
    "variants": ["raw", "conservative"],
    "holdings": [
        {"effective_date": "2018-06-02", "weights": {"JNJ": 0.3, "SPY": 0.4}},
        {"effective_date": "2018-07-04", "weights": {"AAPL": 0.5, "JNJ": 0.2}},  # holiday -> 07-05
        {"effective_date": "2018-09-03", "weights": {"JNJ": 0.5, "GLD": 0.25, "AGG": 0.25}},  # -> 09-04
        {"effective_date": "2018-11-22", "weights": {"JNJ": 0.1, "MSFT": 0.6}},  # Thanksgiving -> 11-23
        {"effective_date": "2019-03-01", "weights": {"JNJ": 1.0}},  # after the lake: never reached
    ],
}

ALL_CASH = {"name": "All cash", "start_date": "2018-08-01", "variants": ["raw"],
            "holdings": [{"effective_date": "2018-08-01", "weights": {}}]}


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """A lake with a price hole and an extra cash portfolio, the NAV chain run over two ranges."""
    root = tmp_path_factory.mktemp("nav_reference")
    lake = make_lake(root / "lake", LAKE_START, END)
    stocks = pd.read_parquet(lake / "prices" / "stocks.parquet")
    hole = (stocks["ticker"] == "JNJ") & stocks["date"].astype(str).isin(HOLE)
    assert hole.sum() == len(HOLE)
    stocks[~hole].to_parquet(lake / "prices" / "stocks.parquet", index=False)
    write_portfolio(lake, "cash_book.yaml", CASH_BOOK)
    write_portfolio(lake, "all_cash.yaml", ALL_CASH)
    warehouse = str(root / "warehouse.duckdb")
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {"TRACKING_LAKE": str(lake), "TRACKING_WAREHOUSE": warehouse,
                            "TRACKING_PARTITIONS_START": START, "TRACKING_RISK_FREE_RATE": str(RATE),
                            "TRACKING_LAKE_CACHE": str(root / "cache")}.items():
            mp.setenv(name, value)
        mp.delenv("TRACKING_MARKET_TICKER", raising=False)
        from tracking_pipeline.definitions import build_definitions

        (root / "home").mkdir()
        with dg.instance_for_test(temp_dir=str(root / "home")) as instance:
            defs = build_definitions()
            first = run_nav_chain(defs, instance, START, SPLIT)
            second = run_nav_chain(defs, instance, NEXT, END)
    yield {"lake": lake, "wh": open_warehouse(warehouse), "runs": [first, second]}


# --- the independent reference --------------------------------------------------------------------------------

def lake_prices(lake: Path) -> dict[str, dict[dt.date, float]]:
    """ticker -> {date: adj_close} straight from every parquet file under prices/."""
    frame = pd.concat([pd.read_parquet(p) for p in sorted((lake / "prices").rglob("*.parquet"))])
    out: dict[str, dict[dt.date, float]] = {}
    for ticker, date, price in zip(frame["ticker"], frame["date"], frame["adj_close"]):
        out.setdefault(str(ticker), {})[pd.Timestamp(date).date()] = float(price)
    return out


def nyse_days(start: str, end: str) -> list[dt.date]:
    cal = xc.get_calendar("XNYS", start="2017-01-03")
    return [d.date() for d in cal.sessions_in_range(start, end)]


def price_on(prices: dict[dt.date, float], days: list[dt.date], i: int) -> float:
    """The price on days[i], else the last one within the previous 5 sessions."""
    for back in range(6):
        if i - back >= 0 and days[i - back] in prices:
            return prices[days[i - back]]
    raise AssertionError(f"no price within 5 sessions of {days[i]}")


def reference_raw(spec: dict, prices: dict, rf_d: float, end: str) -> pd.DataFrame:
    """Day by day: rebalance at the close of each effective day (next session when closed), shares fixed in
    between, cash compounding at rf_d per session."""
    all_days = nyse_days("2018-01-02", end)
    start = pd.Timestamp(spec["start_date"]).date()
    days = [d for d in all_days if d >= start]
    targets = {}
    for entry in sorted(spec["holdings"], key=lambda e: str(e["effective_date"])):
        eff = pd.Timestamp(entry["effective_date"]).date()
        if eff > all_days[-1]:
            continue
        session = next(d for d in all_days if d >= eff)
        targets[max(session, days[0])] = entry["weights"]
    initial = float(spec.get("initial_nav", 100))
    shares: dict[str, float] = {}
    cash, rows = initial, []
    for i, day in enumerate(days):
        k = all_days.index(day)
        if i == 0:
            nav = initial
        else:
            cash *= 1 + rf_d
            nav = cash + sum(n * price_on(prices[t], all_days, k) for t, n in shares.items())
        if day in targets:
            weights = targets[day]
            shares = {t: w * nav / price_on(prices[t], all_days, k) for t, w in weights.items() if w > 0}
            cash = nav * (1 - sum(weights.values()))
        rows.append((pd.Timestamp(day), nav))
    out = pd.DataFrame(rows, columns=["trade_date", "nav"]).set_index("trade_date")
    out["daily_return"] = (out["nav"] / out["nav"].shift(1) - 1).fillna(0.0)
    out["cumulative_return"] = out["nav"] / initial - 1
    return out


def reference_variant(raw: pd.DataFrame, allocation: pd.Series, rf_d: float, initial: float) -> pd.DataFrame:
    """eq(start) = decision of the start day, eq(t) = decision of the previous session; returns blended with
    cash at rf_d; NAV compounded from initial_nav."""
    rows, nav, prev_day = [], initial, None
    for i, day in enumerate(raw.index):
        eq = float(allocation.loc[day if i == 0 else prev_day])
        r = 0.0 if i == 0 else eq * raw["daily_return"].iloc[i] + (1 - eq) * rf_d
        nav = nav * (1 + r)
        rows.append((day, nav, r, nav / initial - 1, eq, 1 - eq))
        prev_day = day
    return pd.DataFrame(rows, columns=["trade_date", "nav", "daily_return", "cumulative_return",
                                       "equity_allocation", "cash_allocation"]).set_index("trade_date")


def specs(lake: Path) -> list[dict]:
    """The lake's portfolio files that start inside the chain's range."""
    books = [yaml.safe_load(p.read_text()) for p in sorted((lake / "portfolios").glob("*.yaml"))]
    return [b for b in books if pd.Timestamp(b["start_date"]) <= pd.Timestamp(END)]


def stored(wh, name: str, variant: str) -> pd.DataFrame:
    pid = int(wh.scalar("SELECT portfolio_id FROM portfolio_definitions WHERE name = ?", [name]))
    frame = wh.read_table("portfolio_daily_nav", "portfolio_id = ? AND variant = ?", [pid, variant])
    return frame.set_index("trade_date")


def compare(got: pd.DataFrame, want: pd.DataFrame, columns: list[str], label: str) -> None:
    assert len(want) > 0, f"{label}: nothing to compare"
    assert list(got.index) == list(want.index), f"{label}: the stored days differ from the sessions"
    for column in columns:
        diff = (got[column] - want[column]).abs().max()
        assert diff <= 1e-9, f"{label}: {column} differs by {diff:.3g}"


# --- tests ------------------------------------------------------------------------------------------------------

RF_D = (1 + RATE) ** (1 / 252) - 1


def test_raw_nav_equals_independent_day_by_day_computation(chain):
    prices = lake_prices(chain["lake"])
    books = specs(chain["lake"])
    assert len(books) >= 6
    for spec in books:
        want = reference_raw(spec, prices, RF_D, END)
        got = stored(chain["wh"], spec["name"], "raw")
        compare(got, want, ["nav", "daily_return", "cumulative_return"], f"{spec['name']} / raw")
        assert (got["equity_allocation"] == 1).all() and (got["cash_allocation"] == 0).all()


def test_overlay_variants_equal_an_independent_recursion_from_overlay_signals(chain):
    wh = chain["wh"]
    signals = wh.read_table("overlay_signals")
    prices = lake_prices(chain["lake"])
    checked = 0
    for spec in specs(chain["lake"]):
        raw = reference_raw(spec, prices, RF_D, END)
        variants = spec.get("variants") or ["raw", *available_models()]
        pid = int(wh.scalar("SELECT portfolio_id FROM portfolio_definitions WHERE name = ?", [spec["name"]]))
        present = set(wh.query("SELECT DISTINCT variant FROM portfolio_daily_nav WHERE portfolio_id = ?",
                               [pid])["variant"])
        assert present == set(variants)
        for variant in variants:
            if variant == "raw":
                continue
            allocation = signals[signals["model"] == variant].set_index("trade_date")["actual_allocation"]
            want = reference_variant(raw, allocation, RF_D, float(spec.get("initial_nav", 100)))
            compare(stored(wh, spec["name"], variant), want, list(want.columns), f"{spec['name']} / {variant}")
            checked += 1
    assert checked >= 5


def test_carried_forward_prices_are_flagged_by_the_nav_check(chain):
    second = chain["runs"][1]
    evaluations = {e.check_name: e for e in second.get_asset_check_evaluations()}
    stale = evaluations["stale_prices"]
    assert not stale.passed
    flagged = stale.metadata["stale"].value
    assert flagged[CASH_BOOK["name"]]["JNJ"] == HOLE
    assert evaluations["all_portfolios_computed"].passed
    assert evaluations["nav_no_gaps"].passed


def test_reference_sees_the_cash_and_holiday_rebalances(chain):
    """Guards the fixture itself: the cash book starts on the Monday after its Saturday start_date."""
    got = stored(chain["wh"], CASH_BOOK["name"], "raw")
    assert got.index[0] == pd.Timestamp("2018-06-04")
    assert got["nav"].iloc[0] == 1000
    config = json.loads(chain["wh"].scalar("SELECT config FROM portfolio_definitions WHERE name = ?",
                                           [CASH_BOOK["name"]]))
    assert config["variants"] == ["raw", "conservative"]
