"""Hand-computed cases for the pure raw-NAV engine (CONTRACT §4): every expected number is worked out in the
comments from small prices, so a wrong rebalance, drift, cash or carry-forward rule shows up as a wrong number."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tracking_pipeline.analytics.nav import NavError, carry_forward, nav_frame, raw_nav_path, rebalance_schedule
from tracking_pipeline.settings import load_settings
from tracking_pipeline.trading_calendar import nyse_sessions

# NYSE sessions around Independence Day 2023 (07-04 is a Tuesday holiday; 07-01/02 a weekend).
D = {d: pd.Timestamp(d) for d in ["2023-06-26", "2023-06-27", "2023-06-28", "2023-06-29", "2023-06-30",
                                  "2023-07-03", "2023-07-05", "2023-07-06", "2023-07-07", "2023-07-10"]}
DAYS = pd.DatetimeIndex(list(D.values()))


def frame(days: list[str], **columns: list[float]) -> pd.DataFrame:
    return pd.DataFrame(columns, index=pd.DatetimeIndex([pd.Timestamp(d) for d in days]), dtype=float)


def test_calendar_days_used_here_are_the_nyse_sessions():
    """The day list above is exactly NYSE's (so the holiday cases below really straddle a holiday)."""
    sessions = nyse_sessions()
    assert DAYS.equals(sessions[(sessions >= DAYS[0]) & (sessions <= DAYS[-1])])


def test_rebalance_resets_shares_at_the_close_and_weights_drift_between():
    days = DAYS[:5]
    prices = frame(list(days.strftime("%Y-%m-%d")), A=[10, 11, 12, 12, 15], B=[20, 20, 18, 24, 24])
    schedule = [(days[0], {"A": 0.5, "B": 0.5}), (days[2], {"A": 0.25, "B": 0.75})]
    path = raw_nav_path(prices, days, schedule, anchor_nav=100.0, rf_d=0.0)
    # d0: NAV 100 -> 5 A (50/10) and 2.5 B (50/20).
    # d1: 5*11 + 2.5*20 = 105.   d2: 5*12 + 2.5*18 = 105 (old shares), then rebalance at the close:
    #     A = 0.25*105/12 = 2.1875, B = 0.75*105/18 = 4.375.
    # d3: 2.1875*12 + 4.375*24 = 26.25 + 105 = 131.25.   d4: 2.1875*15 + 105 = 137.8125.
    assert path.nav.to_numpy() == pytest.approx([100, 105, 105, 131.25, 137.8125], abs=1e-12)
    # Close-of-day weights: d1 drifted to 55/105 and 50/105; d2 reset to the targets; d3 26.25/131.25 = 0.2.
    expected_a = [0.5, 55 / 105, 0.25, 0.2, 32.8125 / 137.8125]
    assert path.weights["A"].to_numpy() == pytest.approx(expected_a, abs=1e-12)
    assert (path.weights["A"] + path.weights["B"]).to_numpy() == pytest.approx([1.0] * 5, abs=1e-12)
    assert path.stale == {}
    out = nav_frame(path.nav, 100.0, None)
    # Returns: 0 on the first day, then 105/100-1, 0, 131.25/105-1 = 0.25, 137.8125/131.25-1 = 0.05.
    assert out["daily_return"].to_numpy() == pytest.approx([0, 0.05, 0, 0.25, 0.05], abs=1e-12)
    assert out["cumulative_return"].iloc[-1] == pytest.approx(0.378125, abs=1e-12)


def test_cash_remainder_earns_rf_d_once_per_trading_day(monkeypatch):
    monkeypatch.setenv("TRACKING_RISK_FREE_RATE", "0.05")
    rf_d = load_settings().rf_daily
    assert rf_d == pytest.approx(1.05 ** (1 / 252) - 1, rel=1e-14)
    # Fri 06-30, Mon 07-03, Wed 07-05 (after the holiday), Thu 07-06: one rf_d step per session.
    days = DAYS[4:8]
    prices = frame(list(days.strftime("%Y-%m-%d")), A=[10, 10, 12.5, 10])
    schedule = [(days[0], {"A": 0.6}), (days[2], {"A": 0.5})]
    path = raw_nav_path(prices, days, schedule, anchor_nav=100.0, rf_d=rf_d)
    g = 1 + rf_d
    # d0: 6 shares of A, 40 cash.  d1: 6*10 + 40g.  d2: 6*12.5 + 40g^2, then rebalance to half cash.
    nav2 = 75 + 40 * g ** 2
    # d3: (0.5*nav2/12.5)*10 + 0.5*nav2*g.
    nav3 = 0.5 * nav2 / 12.5 * 10 + 0.5 * nav2 * g
    assert path.nav.to_numpy() == pytest.approx([100, 60 + 40 * g, nav2, nav3], rel=1e-14)
    assert nav3 != pytest.approx(0.5 * nav2 / 12.5 * 10 + 0.5 * nav2, rel=1e-9)  # the cash did earn something


def test_effective_dates_on_holidays_and_weekends_map_to_the_next_session():
    sessions = nyse_sessions()
    effective = [
        (pd.Timestamp("2023-06-20"), {"A": 0.1}),  # before start: superseded by the next one
        (pd.Timestamp("2023-06-25"), {"A": 0.2}),  # Sunday before the start: the weights in force at the start
        (pd.Timestamp("2023-07-04"), {"A": 0.3}),  # holiday -> Wed 07-05
        (pd.Timestamp("2023-07-08"), {"A": 0.4}),  # Saturday -> Mon 07-10
    ]
    schedule = rebalance_schedule(effective, D["2023-06-26"], sessions)
    assert schedule == [(D["2023-06-26"], {"A": 0.2}), (D["2023-07-05"], {"A": 0.3}), (D["2023-07-10"], {"A": 0.4})]
    # A first effective date after the start leaves the portfolio in cash until then.
    assert rebalance_schedule(effective[2:], D["2023-06-26"], sessions)[0] == (D["2023-06-26"], {})

    days = DAYS[5:8]  # 07-03, 07-05, 07-06
    prices = frame(["2023-07-03", "2023-07-05", "2023-07-06"], A=[10, 20, 10])
    sched = rebalance_schedule([(D["2023-07-03"], {"A": 1.0}), (pd.Timestamp("2023-07-04"), {"A": 0.5})],
                               D["2023-07-03"], sessions)
    path = raw_nav_path(prices, days, sched, anchor_nav=100.0, rf_d=0.0)
    # 07-03: 10 shares. 07-05: NAV 200 with the old shares, then half to cash: 5 shares + 100 cash.
    # 07-06: 5*10 + 100 = 150 (a rebalance on 07-04 itself, or on 07-06, would give other numbers).
    assert path.nav.to_numpy() == pytest.approx([100, 200, 150], abs=1e-12)


def test_missing_price_is_carried_forward_for_five_days_and_flagged():
    days = DAYS[:9]  # 06-26 .. 07-07
    a = [10, 12, np.nan, np.nan, np.nan, np.nan, np.nan, 15, 15]  # 5 sessions without a price
    b = [50, 50, 50, 50, 50, 50, 50, 55, 55]
    prices = frame(list(days.strftime("%Y-%m-%d")), A=a, B=b)
    path = raw_nav_path(prices, days, [(days[0], {"A": 0.5, "B": 0.5})], 100.0, 0.0)
    # 5 A + 1 B: 100, 60+50 = 110, then A stays at 12 for five days (110), then 75+55 = 130.
    assert path.nav.to_numpy() == pytest.approx([100, 110, 110, 110, 110, 110, 110, 130, 130], abs=1e-12)
    assert path.stale == {"A": ["2023-06-28", "2023-06-29", "2023-06-30", "2023-07-03", "2023-07-05"]}


def test_carry_forward_reaches_prices_before_the_window():
    """A restarted range may begin inside a gap: the last price before the window is carried in."""
    prices = frame(["2023-06-29", "2023-06-30", "2023-07-03", "2023-07-05"], A=[8, np.nan, np.nan, 16])
    days = DAYS[4:7]  # 06-30, 07-03, 07-05
    path = raw_nav_path(prices, days, [(days[0], {"A": 1.0})], 80.0, 0.0)
    # 06-30 priced at 8 (carried): 10 shares; 07-03 still 8 -> 80; 07-05 at 16 -> 160.
    assert path.nav.to_numpy() == pytest.approx([80, 80, 160], abs=1e-12)
    assert path.stale == {"A": ["2023-06-30", "2023-07-03"]}


def test_missing_price_beyond_five_days_names_ticker_and_date():
    days = DAYS[:9]
    a = [10, 12, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, 15]  # 6 sessions: the 6th is 07-06
    prices = frame(list(days.strftime("%Y-%m-%d")), A=a, B=[50] * 9)
    with pytest.raises(NavError) as err:
        raw_nav_path(prices, days, [(days[0], {"A": 0.5, "B": 0.5})], 100.0, 0.0, label="Book X")
    message = str(err.value)
    assert "Book X" in message and "A " in message and "2023-07-06" in message


def test_missing_price_of_a_ticker_not_held_is_ignored():
    days = DAYS[:9]
    c = [np.nan] * 7 + [4, 5]  # C is unpriced until it is bought on 07-06
    prices = frame(list(days.strftime("%Y-%m-%d")), B=[50] * 7 + [60, 60], C=c)
    schedule = [(days[0], {"B": 1.0}), (days[7], {"C": 1.0})]
    path = raw_nav_path(prices, days, schedule, 100.0, 0.0)
    # 2 B at 50 until 07-05 (100), 120 on 07-06, rebalanced into 30 C at 4 -> 150 on 07-07.
    assert path.nav.to_numpy() == pytest.approx([100] * 7 + [120, 150], abs=1e-12)
    assert path.stale == {}


def test_nav_frame_continues_from_the_previous_nav():
    nav = pd.Series([110.0, 99.0], index=DAYS[1:3])
    out = nav_frame(nav, initial_nav=100.0, previous_nav=100.0)
    # 110/100-1 = 0.1, 99/110-1 = -0.1; cumulative against initial_nav: 0.1, -0.01.
    assert out["daily_return"].to_numpy() == pytest.approx([0.1, -0.1], abs=1e-12)
    assert out["cumulative_return"].to_numpy() == pytest.approx([0.1, -0.01], abs=1e-12)


def test_an_all_cash_book_compounds_at_rf_d():
    """No tickers at all (empty weights): the engine gets an empty price frame and NAV is cash only."""
    days = DAYS[4:8]
    path = raw_nav_path(pd.DataFrame(), days, [(days[0], {})], 100.0, 0.001)
    # 100, 100*1.001, 100*1.001^2, 100*1.001^3
    assert path.nav.to_numpy() == pytest.approx([100, 100.1, 100.2001, 100.3003001], rel=1e-14)
    assert path.stale == {} and path.weights.shape == (4, 0)


@pytest.mark.parametrize("seed", range(6))
def test_carry_forward_equals_pandas_ffill_with_a_limit(seed):
    """The numpy carry-forward against pandas' own `ffill(limit=5)` on random gaps, windows and look-backs."""
    rng = np.random.default_rng(seed)
    sessions = nyse_sessions()
    index = sessions[(sessions >= "2020-01-02")][:400]
    width = int(rng.integers(0, 8))
    values = rng.random((len(index), width)) + 1.0
    values[rng.random(values.shape) < [0.0, 0.2, 0.6, 0.95, 0.3, 0.1][seed]] = np.nan
    prices = pd.DataFrame(values, index=index, columns=[f"T{i}" for i in range(width)])
    lo = int(rng.integers(0, 300))
    days = index[lo:lo + int(rng.integers(1, 100))]
    known = prices.iloc[int(rng.integers(0, lo + 1)):]  # prices may start before the window or inside it
    full = known.reindex(known.index.union(days))
    want = full.ffill(limit=5).reindex(days)
    filled, stale = carry_forward(known, days)
    pd.testing.assert_frame_equal(filled, want, check_freq=False)
    pd.testing.assert_frame_equal(stale, full.reindex(days).isna() & want.notna(), check_freq=False)


def test_carry_forward_of_no_prices_is_all_missing():
    filled, stale = carry_forward(pd.DataFrame(columns=["A"], dtype=float), DAYS[:3])
    assert filled["A"].isna().all() and not stale["A"].any()
