"""Recursive indicators continued from stored state equal, bit for bit, one run over the whole history.

`ewm_from` / `obv_from` against pandas' own `ewm` / the cumulative `obv` at random cut points of series with gaps,
late listings and delistings; then `compute_asset_metrics` on a real warehouse (DuckDB and PostgreSQL): a range
run in pieces, each continuing from the `asset_indicator_state` the piece before wrote, equals the whole range in
one run from the first price, with the prices older than the 5-year look-back scrambled before the later pieces
(so their part can only have come from the state), and a state that no longer matches the prices (a price added)
is not used.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tracking_pipeline.analytics.indicators import EwmState, ewm_from, obv, obv_from
from tracking_pipeline.services.market_risk import (
    PRICE_LOOKBACK, compute_asset_metrics, read_indicator_state,
)
from tracking_pipeline.trading_calendar import previous_session, sessions_before, sessions_between
from tracking_pipeline.warehouse import Write, open_warehouse

RECURSIVE = ["ema_12", "ema_26", "rsi_14", "macd", "macd_signal", "atr_14", "obv", "return_1m", "return_3m",
             "return_6m", "return_1y", "return_3y", "return_5y"]


def gappy_frame(rng: np.random.Generator, rows: int, width: int) -> pd.DataFrame:
    x = pd.DataFrame(np.cumsum(rng.normal(size=(rows, width)), axis=0) + 100.0,
                     index=pd.bdate_range("2000-01-03", periods=rows))
    x = x.mask(rng.random((rows, width)) < 0.08)
    for c in range(0, width, 5):
        x.iloc[: rng.integers(0, rows), c] = np.nan
    for c in range(2, width, 7):
        x.iloc[rng.integers(0, rows):, c] = np.nan
    x.iloc[rows // 3: 2 * rows // 3, 3] = np.nan
    return x


@pytest.mark.parametrize(("params", "min_periods"), [({"span": 12}, 0), ({"span": 9}, 0), ({"alpha": 1 / 14}, 14)])
def test_ewm_continued_from_its_state_equals_the_whole_run(params: dict, min_periods: int) -> None:
    rng = np.random.default_rng(7)
    x = gappy_frame(rng, 1500, 30)
    full = x.ewm(adjust=False, min_periods=min_periods, **params).mean()
    once, final = ewm_from(x, None, min_periods, **params)
    pd.testing.assert_frame_equal(once, full, check_exact=True)
    assert (final.count == x.notna().sum().to_numpy()).all()
    for cut in rng.integers(1, len(x) - 1, 40):
        _, state = ewm_from(x.iloc[:cut], None, min_periods, **params)
        seen = pd.DatetimeIndex(state.seen[~np.isnat(state.seen)])
        first = min(seen.min(), x.index[cut - 1]) if len(seen) else x.index[cut - 1]
        rest, after = ewm_from(x.loc[first:], state, min_periods, **params)
        pd.testing.assert_frame_equal(rest.loc[x.index[cut]:], full.iloc[cut:], check_exact=True)
        for field in ("value", "seen", "count"):
            np.testing.assert_array_equal(getattr(after, field), getattr(final, field))


def test_ewm_refuses_a_state_that_ends_before_an_observed_frame() -> None:
    x = pd.DataFrame({"a": [1.0, 2.0, 3.0]}, index=pd.bdate_range("2020-01-06", periods=3))
    state = EwmState(np.array([5.0]), np.array(["2019-12-31"], dtype="datetime64[ns]"), np.array([4]))
    with pytest.raises(ValueError, match="state ends before"):
        ewm_from(x, state, span=12)
    unobserved, carried = ewm_from(x * np.nan, state, span=12)
    assert (unobserved["a"] == 5.0).all() and carried.count[0] == 4 and carried.seen[0] == state.seen[0]


def test_obv_continued_from_its_total_equals_the_cumulative_sum() -> None:
    rng = np.random.default_rng(3)
    close = gappy_frame(rng, 800, 12)
    volume = pd.DataFrame(rng.integers(1, 10_000, close.shape).astype(float), index=close.index)
    volume = volume.mask(rng.random(close.shape) < 0.05)
    full = obv(close, volume)
    pd.testing.assert_frame_equal(obv_from(close, volume), full, check_exact=True)
    for cut in rng.integers(2, len(close) - 1, 30):
        rest = obv_from(close.iloc[cut - 2:], volume.iloc[cut - 2:], full.iloc[cut - 1].to_numpy(), after=1)
        pd.testing.assert_frame_equal(rest.iloc[2:], full.iloc[cut:], check_exact=True)


def price_rows(sessions: pd.DatetimeIndex) -> pd.DataFrame:
    """Prices of 12 tickers with the awkward cases: gaps, a late listing, a delisting, a ticker relisted after
    more than the look-back, one without bars (adjusted close only), missing volume, and a split (close !=
    adj_close)."""
    rng = np.random.default_rng(11)
    tickers = ["SPY"] + [f"T{i:02d}" for i in range(11)]
    adj = gappy_frame(rng, len(sessions), len(tickers)).set_axis(sessions).set_axis(tickers, axis=1).abs() + 5.0
    adj.iloc[:, 0] = 100.0 * np.cumprod(1 + rng.normal(0.0003, 0.01, len(sessions)))
    adj.loc[sessions[200]:sessions[len(sessions) - 60], "T04"] = np.nan  # relisted after > PRICE_LOOKBACK
    spread = pd.DataFrame(rng.uniform(0.001, 0.03, adj.shape), index=sessions, columns=tickers)
    close = adj * np.where(np.arange(len(sessions))[:, None] < len(sessions) // 2, 2.0, 1.0)
    long = pd.DataFrame({
        "trade_date": np.repeat(sessions.date, len(tickers)), "ticker": np.tile(tickers, len(sessions)),
        "adj_close": adj.to_numpy().ravel(), "close": close.to_numpy().ravel(),
        "high": (close * (1 + spread)).to_numpy().ravel(), "low": (close * (1 - spread)).to_numpy().ravel(),
        "volume": rng.integers(1_000, 1_000_000, adj.size).astype(float)})
    long["open"] = long["close"]
    long = long[long["adj_close"].notna()].reset_index(drop=True)
    no_bars = long["ticker"] == "T07"
    long.loc[no_bars, ["open", "high", "low", "close", "volume"]] = np.nan
    long.loc[(long["ticker"] == "T08") & (np.arange(len(long)) % 9 == 0), "volume"] = np.nan
    return long


def test_a_range_in_pieces_continues_from_the_stored_state(warehouse_url: str) -> None:
    sessions = sessions_between("2011-01-03", "2017-12-29")
    prices = price_rows(sessions)
    wh = open_warehouse(warehouse_url)
    wh.replace(Write("price_data", prices, None))
    first, last = sessions[0], sessions[-1]
    whole = compute_asset_metrics(wh, first, last, "SPY", 0.0, batch=5).rows
    assert whole["ticker"].nunique() == 12 and read_indicator_state(wh, last).empty

    cuts = [sessions[1500], sessions[1501], sessions[1502], sessions[1620], last]
    pieces, lo = [], first
    for number, hi in enumerate(cuts):
        if number == 1:
            # from here on only the state can carry the recursions: the prices older than the 5-year look-back
            # (but the relisted ticker's, whose last observation is older) are scrambled, which a run from the
            # first price would see (OBV never forgets a day)
            old = (prices["trade_date"] < sessions_before(hi, PRICE_LOOKBACK).date()) & (prices["ticker"] != "T04")
            scrambled = prices.copy()
            scrambled.loc[old, "adj_close"] = np.random.default_rng(5).uniform(10.0, 20.0, int(old.sum()))
            assert old.sum() > 2_000
            wh.replace(Write("price_data", scrambled, None))
            rerun = compute_asset_metrics(open_warehouse(warehouse_url), first, last, "SPY", 0.0).rows
            assert not rerun["obv"].equals(whole["obv"])
        if number > 0:
            listed = prices.loc[prices["trade_date"] < lo.date(), "ticker"].nunique()
            assert len(read_indicator_state(wh, previous_session(lo))) == listed > 8
        piece = compute_asset_metrics(wh, lo, hi, "SPY", 0.0, batch=5)
        wh.replace(*piece.writes(lo, hi))
        pieces.append(piece.rows)
        lo = sessions[sessions.get_loc(hi) + 1] if hi != last else None
    chained = pd.concat(pieces, ignore_index=True)
    pd.testing.assert_frame_equal(chained[["trade_date", "ticker", *RECURSIVE]],
                                  whole[["trade_date", "ticker", *RECURSIVE]], check_exact=True)
    pd.testing.assert_frame_equal(chained, whole, rtol=1e-10)
    state = read_indicator_state(wh, last)
    assert state.loc["T04", "ema_12_count"] == prices["ticker"].eq("T04").sum()


def test_a_state_that_no_longer_matches_the_prices_is_not_used(warehouse_url: str) -> None:
    sessions = sessions_between("2015-01-02", "2016-12-30")
    prices = price_rows(sessions)
    wh = open_warehouse(warehouse_url)
    wh.replace(Write("price_data", prices, None))
    cut = sessions[400]
    wh.replace(*compute_asset_metrics(wh, sessions[0], cut, "SPY", 0.0).writes(sessions[0], cut))
    # a price arrives late for a day the state already covers: the state's last observation is now wrong
    missing = prices.set_index(["trade_date", "ticker"]).index
    day = next(d for d in sessions[350:400] if (d.date(), "T03") not in missing)
    late = prices[prices["ticker"] == "T03"].iloc[[0]].assign(trade_date=day.date())
    wh.replace(Write("price_data", late, {"trade_date": [day.date()], "ticker": ["T03"]}))
    rest = compute_asset_metrics(wh, sessions[401], sessions[-1], "SPY", 0.0).rows
    fresh = compute_asset_metrics(open_warehouse(warehouse_url), sessions[0], sessions[-1], "SPY", 0.0).rows
    fresh = fresh[fresh["trade_date"] >= sessions[401]].reset_index(drop=True)
    pd.testing.assert_frame_equal(rest[["trade_date", "ticker", *RECURSIVE]],
                                  fresh[["trade_date", "ticker", *RECURSIVE]], check_exact=True)
