"""Trade analytics against hand-computed ledgers and an independent pandas re-implementation: per-trade P&L,
strategy metrics over trailing windows, confidence bands and calibration, outcomes and status, market timing,
the volume-spike scan and system-health states."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest

from tracking_pipeline.analytics.health import Freshness, freshness_status, health_rows
from tracking_pipeline.analytics.outcomes import Baseline, OutcomeConfig, calibration, outcomes
from tracking_pipeline.analytics.strategy_metrics import ALL, METRIC_COLUMNS, strategy_metrics, top_performers
from tracking_pipeline.analytics.trade_windows import PERIODS, confidence_band
from tracking_pipeline.analytics.trades import match_decisions, timing_cost, trade_figures
from tracking_pipeline.analytics.volume_scan import VIGL, ReferencePattern, ScanConfig, volume_spikes

D = pd.Timestamp


def ledger(rows: list[tuple]) -> pd.DataFrame:
    """(trade_id, strategy, classification, entry, exit, entry_price, exit_price, quantity, confidence)."""
    frame = pd.DataFrame(rows, columns=["trade_id", "strategy", "classification", "entry_date", "exit_date",
                                        "entry_price", "exit_price", "quantity", "routing_confidence"])
    frame["symbol"] = "AAA"
    for column in ("entry_date", "exit_date"):
        frame[column] = pd.to_datetime(frame[column])
    frame["exit_reason"] = np.where(frame["exit_date"].notna(), "rule", None)
    return frame


def closed(frame: pd.DataFrame) -> pd.DataFrame:
    """The ledger's P&L columns computed independently of trade_figures."""
    out = frame.copy()
    out["profit_loss"] = (out["exit_price"] - out["entry_price"]) * out["quantity"]
    out["profit_loss_pct"] = out["exit_price"] / out["entry_price"] - 1
    out["hold_days"] = (out["exit_date"] - out["entry_date"]).dt.days.astype(float)
    return out


# --- per trade -------------------------------------------------------------------------------------------------


def test_trade_figures_closed_open_marked_and_zero_pnl():
    trades = ledger([
        ("t1", "s", "etf", "2020-01-02", "2020-01-10", 100.0, 110.0, 10, 0.9),
        ("t2", "s", "etf", "2020-01-03", None, 50.0, None, 4, 0.4),         # open, marked at 45
        ("t3", "s", "etf", "2020-01-06", "2020-01-08", 20.0, 20.0, 7, 0.6),  # zero P&L
        ("t4", "s", "etf", "2020-01-06", "2020-02-03", 10.0, 12.0, 1, 0.6),  # exits after the as-of day: open
    ])
    marks = pd.DataFrame({"symbol": ["AAA"], "mark_date": [D("2020-01-31")], "mark_price": [45.0]})
    out = trade_figures(trades, as_of=D("2020-01-31"), marks=marks).set_index("trade_id")
    assert out.loc["t1", "profit_loss"] == 100.0 and out.loc["t1", "profit_loss_pct"] == pytest.approx(0.1, abs=1e-15)
    assert out.loc["t1", "hold_days"] == 8 and out.loc["t1", "was_profitable"] is True
    assert not out.loc["t1", "is_open"] and out.loc["t1", "status_date"] == D("2020-01-10")
    assert out.loc["t2", "is_open"] and out.loc["t2", "profit_loss"] == -20.0
    assert out.loc["t2", "profit_loss_pct"] == pytest.approx(-0.1, abs=1e-15)
    assert out.loc["t2", "hold_days"] == 28 and out.loc["t2", "was_profitable"] is None
    assert out.loc["t2", "status_date"] == D("2020-01-31") and out.loc["t2", "mark_price"] == 45.0
    assert out.loc["t3", "profit_loss"] == 0.0 and out.loc["t3", "was_profitable"] is False
    assert out.loc["t4", "is_open"] and pd.isna(out.loc["t4", "exit_date"]) and pd.isna(out.loc["t4", "exit_price"])
    assert pd.isna(out.loc["t4", "exit_reason"]) and out.loc["t4", "mark_price"] == 45.0


def test_open_trade_without_a_usable_mark_has_no_pnl():
    trades = ledger([("t1", "s", "etf", "2020-01-10", None, 100.0, None, 1, 0.5)])
    marks = pd.DataFrame({"symbol": ["AAA"], "mark_date": [D("2020-01-09")], "mark_price": [99.0]})  # before entry
    out = trade_figures(trades, as_of=D("2020-01-10"), marks=marks)
    assert out["is_open"].iloc[0] and np.isnan(out["profit_loss"].iloc[0]) and pd.isna(out["mark_date"].iloc[0])


def test_match_decisions_and_timing_cost():
    trades = ledger([
        ("t1", "rsi", "etf", "2020-01-06", None, 101.0, None, 10, 0.9),  # Monday; decision on Saturday
        ("t2", "rsi", "etf", "2020-03-02", None, 50.0, None, 2, 0.9),    # only an older decision: unmatched
        ("t3", "brk", "etf", "2020-01-07", None, 10.0, None, 1, 0.9),    # decision of another strategy only
        ("t4", "rsi", "etf", "2020-01-09", None, 99.0, None, 1, 0.9),    # two decisions: the latest (01-08)
    ])
    decisions = pd.DataFrame({
        "decision_id": ["d1", "d2", "d3", "d4"], "symbol": "AAA",
        "selected_strategy": ["rsi", "rsi", "rsi", "rsi"],
        "decision_date": pd.to_datetime(["2020-01-04", "2020-02-03", "2020-01-07", "2020-01-08"])})
    out = match_decisions(trades, decisions).set_index("trade_id")
    assert out.loc["t1", "decision_id"] == "d1" and out.loc["t1", "entry_delay_days"] == 1  # Sat -> Mon
    assert pd.isna(out.loc["t2", "decision_id"]) and pd.isna(out.loc["t2", "entry_delay_days"])  # 19 sessions
    assert pd.isna(out.loc["t3", "decision_id"])
    assert out.loc["t4", "decision_id"] == "d4" and out.loc["t4", "entry_delay_days"] == 1
    cost = timing_cost(pd.Series([101.0, 99.0]), pd.Series([10.0, 1.0]), pd.Series([100.0, np.nan]))
    assert cost["timing_cost"].iloc[0] == pytest.approx(0.01, abs=1e-15) and cost["timing_cost_amount"].iloc[0] == 10.0
    assert np.isnan(cost["timing_cost"].iloc[1])


# --- strategy metrics ----------------------------------------------------------------------------------------


HAND = closed(ledger([
    ("a1", "rsi", "etf", "2020-01-02", "2020-01-06", 100.0, 110.0, 10, 0.90),   # +10%  +100
    ("a2", "rsi", "etf", "2020-01-03", "2020-01-08", 100.0, 95.0, 20, 0.85),    # -5%   -100
    ("a3", "rsi", "etf", "2020-01-07", "2020-01-09", 40.0, 40.0, 5, 0.40),      # 0     0
    ("a4", "rsi", "etf", "2020-01-08", "2020-01-13", 50.0, 51.0, 10, 0.60),     # +2%   +10
    ("b1", "brk", "large_cap", "2020-01-02", "2020-01-07", 10.0, 9.0, 30, 0.45),  # -10%  -30 (single trade)
]))


def test_strategy_metrics_hand_computed():
    rows = strategy_metrics(HAND, pd.DatetimeIndex([D("2020-01-13")]))
    rsi = rows[(rows["strategy"] == "rsi") & (rows["stock_type"] == "etf") & (rows["period_type"] == "all")].iloc[0]
    pct = [0.10, -0.05, 0.0, 0.02]
    assert (rsi["total_trades"], rsi["winning_trades"], rsi["losing_trades"]) == (4, 2, 1)
    assert rsi["win_rate"] == 0.5
    assert rsi["avg_profit"] == pytest.approx(0.0175, abs=1e-15)
    assert rsi["avg_profit_winners"] == pytest.approx(0.06, abs=1e-15)
    assert rsi["avg_loss_losers"] == pytest.approx(-0.05, abs=1e-15)
    assert rsi["total_return"] == pytest.approx(0.07, abs=1e-15)
    assert rsi["total_profit_loss"] == pytest.approx(10.0, abs=1e-12)
    assert rsi["max_drawdown"] == pytest.approx(-0.05, abs=1e-15)  # cumulative 0.10, 0.05, 0.05, 0.07
    assert rsi["avg_hold_days"] == pytest.approx((4 + 5 + 2 + 5) / 4)
    assert rsi["sharpe_ratio"] == pytest.approx(statistics.mean(pct) / statistics.stdev(pct), rel=1e-12)
    assert rsi["profit_factor"] == pytest.approx(110 / 100, rel=1e-12)
    # predictions: a1 (0.90, won) correct, a2 (0.85, lost) wrong, a3 (0.40, zero P&L) correct; a4 is medium
    assert rsi["confidence_accuracy"] == pytest.approx(2 / 3, rel=1e-15)
    assert rsi["period_start"] == D("2020-01-02") and pd.isna(rsi["status"])  # under 5 trades: no status
    single = rows[(rows["strategy"] == "brk") & (rows["period_type"] == "all") & (rows["stock_type"] == "large_cap")]
    single = single.iloc[0]
    assert single["total_trades"] == 1 and single["win_rate"] == 0.0 and np.isnan(single["sharpe_ratio"])
    assert single["profit_factor"] == 0.0  # all losers
    assert single["max_drawdown"] == pytest.approx(-0.10, abs=1e-15) and single["confidence_accuracy"] == 1.0
    overall = rows[(rows["strategy"] == ALL) & (rows["stock_type"] == ALL) & (rows["period_type"] == "all")].iloc[0]
    assert overall["total_trades"] == 5 and overall["profit_factor"] == pytest.approx(110 / 130, rel=1e-12)
    # b1 (0.45, lost) is a correct low-confidence prediction: 3 of 4
    assert overall["win_rate"] == 0.4 and overall["confidence_accuracy"] == pytest.approx(3 / 4)
    assert overall["avg_profit"] == pytest.approx((0.10 - 0.05 + 0 + 0.02 - 0.10) / 5, abs=1e-15)
    assert overall["status"] == "GOOD"  # 40% is not below 40%, -0.6% not below -15%, 75% not below 60%


def test_strategy_status_thresholds_are_configurable():
    stricter = strategy_metrics(HAND, pd.DatetimeIndex([D("2020-01-13")]), OutcomeConfig(critical_win_rate=0.41))
    overall = stricter[(stricter["strategy"] == ALL) & (stricter["period_type"] == "all")].iloc[0]
    assert overall["status"] == "CRITICAL"
    picky = strategy_metrics(HAND, pd.DatetimeIndex([D("2020-01-13")]), OutcomeConfig(warning_accuracy=0.8))
    assert picky[(picky["strategy"] == ALL) & (picky["period_type"] == "all")]["status"].iloc[0] == "WARNING"


def test_profit_factor_all_winners_is_null_and_zero_trades_window():
    trades = closed(ledger([("w1", "s", "etf", "2020-01-02", "2020-01-03", 10.0, 11.0, 1, 0.9),
                            ("w2", "s", "etf", "2020-01-02", "2020-01-06", 10.0, 12.0, 1, 0.9)]))
    rows = strategy_metrics(trades, pd.DatetimeIndex([D("2020-03-02")]))
    detail = rows[(rows["strategy"] == "s") & (rows["stock_type"] == "etf")].set_index("period_type")
    assert np.isnan(detail.loc["all", "profit_factor"]) and detail.loc["all", "win_rate"] == 1.0
    empty = detail.loc["30d"]  # nothing closed in the 30 days to 2020-03-02
    assert empty["total_trades"] == 0 and np.isnan(empty["win_rate"]) and np.isnan(empty["avg_profit"])
    assert empty["total_return"] == 0.0 and empty["max_drawdown"] == 0.0 and np.isnan(empty["sharpe_ratio"])
    assert empty["period_start"] == D("2020-02-02")
    equal = strategy_metrics(closed(ledger([("e1", "s", "etf", "2020-01-02", "2020-01-03", 10.0, 11.0, 1, 0.9),
                                             ("e2", "s", "etf", "2020-01-02", "2020-01-06", 20.0, 22.0, 1, 0.9)])),
                             pd.DatetimeIndex([D("2020-01-06")]))
    assert np.isnan(equal["sharpe_ratio"]).all()  # identical returns: zero deviation, no Sharpe


def test_windows_include_trades_exiting_on_the_first_day_only():
    trades = closed(ledger([
        ("in", "s", "etf", "2019-12-01", "2020-01-01", 10.0, 11.0, 1, 0.5),   # entered long before, exits on day 1
        ("out", "s", "etf", "2019-12-01", "2019-12-31", 10.0, 9.0, 1, 0.5),   # exits the day before the window
        ("end", "s", "etf", "2020-01-25", "2020-01-30", 10.0, 10.5, 1, 0.5),  # exits on the last day
    ]))
    rows = strategy_metrics(trades, pd.DatetimeIndex([D("2020-01-30")]))
    window = rows[(rows["strategy"] == "s") & (rows["stock_type"] == "etf") & (rows["period_type"] == "30d")].iloc[0]
    assert window["period_start"] == D("2020-01-01") and window["total_trades"] == 2
    assert window["total_return"] == pytest.approx(0.15, abs=1e-15)
    everything = rows[(rows["strategy"] == "s") & (rows["stock_type"] == "etf") & (rows["period_type"] == "all")]
    assert everything["total_trades"].iloc[0] == 3 and everything["period_start"].iloc[0] == D("2019-12-01")


def random_ledger(n: int = 400, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    entry = D("2019-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D")
    hold = rng.integers(0, 40, n)
    entry_price = rng.uniform(5, 300, n).round(2)
    exit_price = (entry_price * (1 + rng.normal(0.004, 0.06, n))).round(2)
    exit_price[:5] = entry_price[:5]  # some zero-P&L trades
    frame = pd.DataFrame({
        "trade_id": [f"t{i:04d}" for i in range(n)], "symbol": "AAA",
        "strategy": rng.choice(["rsi", "breakout", "solo"], n, p=[0.5, 0.49, 0.01]),
        "classification": rng.choice(["etf", "large_cap", "high_volatility"], n),
        "entry_date": entry, "exit_date": entry + pd.to_timedelta(hold, unit="D"), "entry_price": entry_price,
        "exit_price": exit_price, "quantity": rng.integers(1, 300, n).astype(float),
        "routing_confidence": np.round(rng.uniform(0.2, 1.0, n), 2),
        "entry_delay_days": rng.integers(1, 3, n).astype(float), "timing_cost": rng.normal(0, 0.01, n)})
    frame.loc[frame.index[:3], "routing_confidence"] = [0.8, 0.5, np.nan]  # band edges, no confidence
    frame["timing_cost_amount"] = frame["timing_cost"] * frame["quantity"]
    return closed(frame)


def reference_window(trades: pd.DataFrame, day: pd.Timestamp, length: int | None) -> pd.DataFrame:
    inside = trades["exit_date"] <= day
    if length is not None:
        inside &= trades["exit_date"] >= day - pd.Timedelta(days=length - 1)
    return trades[inside].sort_values(["exit_date", "trade_id"])


def reference_metrics(t: pd.DataFrame) -> dict[str, float]:
    """Straightforward pandas, one window at a time."""
    pct, pnl = t["profit_loss_pct"], t["profit_loss"]
    n = len(t)
    cumulative = pct.cumsum()
    peak = np.maximum(cumulative.cummax(), 0.0)
    std = pct.std(ddof=1)
    c = t["routing_confidence"]
    predicted = (c > 0.8) | (c < 0.5)
    correct = ((c > 0.8) & (pnl > 0)) | ((c < 0.5) & (pnl <= 0))
    losses = -pnl[pnl < 0].sum()
    return {
        "total_trades": n, "winning_trades": int((pnl > 0).sum()), "losing_trades": int((pnl < 0).sum()),
        "win_rate": (pnl > 0).mean() if n else np.nan, "avg_profit": pct.mean() if n else np.nan,
        "avg_profit_winners": pct[pnl > 0].mean() if (pnl > 0).any() else np.nan,
        "avg_loss_losers": pct[pnl < 0].mean() if (pnl < 0).any() else np.nan,
        "total_return": pct.sum(), "total_profit_loss": pnl.sum(),
        "max_drawdown": (cumulative - peak).min() if n else 0.0, "avg_hold_days": t["hold_days"].mean() if n else np.nan,
        "sharpe_ratio": pct.mean() / std if n >= 2 and std > 0 else np.nan,
        "profit_factor": pnl[pnl > 0].sum() / losses if losses > 0 else np.nan,
        "confidence_accuracy": correct[predicted].mean() if predicted.any() else np.nan,
    }


def assert_close(got: float, want: float, what: str) -> None:
    if isinstance(want, float) and np.isnan(want):
        assert np.isnan(got), what
    else:
        assert got == pytest.approx(want, rel=1e-10, abs=1e-12), what


def test_strategy_metrics_equal_an_independent_pandas_computation():
    trades = random_ledger()
    days = pd.DatetimeIndex([D("2019-01-15"), D("2019-06-03"), D("2020-02-28"), D("2021-03-01")])
    rows = strategy_metrics(trades, days)
    levels = {"detail": trades.assign(stock_type=trades["classification"]),
              "strategy": trades.assign(stock_type=ALL), "overall": trades.assign(strategy=ALL, stock_type=ALL)}
    checked = 0
    for frame in levels.values():
        for (strategy, stock_type), group in frame.groupby(["strategy", "stock_type"]):
            for day in days:
                for period, length in PERIODS.items():
                    got = rows[(rows["strategy"] == strategy) & (rows["stock_type"] == stock_type)
                               & (rows["period_end"] == day) & (rows["period_type"] == period)]
                    if (group["exit_date"] > day).all():
                        assert got.empty  # nothing closed yet: no row
                        continue
                    want = reference_metrics(reference_window(group, day, length))
                    for column in METRIC_COLUMNS:
                        assert_close(float(got[column].iloc[0]), want[column], f"{strategy}/{stock_type} {day.date()} "
                                                                               f"{period} {column}")
                    checked += 1
    assert checked > 100


def test_top_performers():
    trades = random_ledger()
    rows = strategy_metrics(trades, pd.DatetimeIndex([D("2021-03-01")]))
    top = top_performers(rows, "win_rate", "all", limit=3, min_trades=20)
    detail = rows[(rows["period_type"] == "all") & (rows["strategy"] != ALL) & (rows["stock_type"] != ALL)
                  & (rows["total_trades"] >= 20)]
    assert top["win_rate"].tolist() == sorted(detail["win_rate"], reverse=True)[:3]
    assert top["rank"].tolist() == [1, 2, 3] and "solo" not in set(top["strategy"])  # under 20 trades
    fastest = top_performers(rows, "avg_hold_days", "all", limit=1, min_trades=20)
    assert fastest["avg_hold_days"].iloc[0] == detail["avg_hold_days"].min()  # lower is better
    with pytest.raises(ValueError, match="unknown metric"):
        top_performers(rows, "nonsense")


# --- confidence, calibration, outcomes ---------------------------------------------------------------------


def test_confidence_bands_edges():
    assert confidence_band(np.array([0.81, 0.8, 0.5, 0.49, np.nan])).tolist() == ["high", "medium", "medium", "low",
                                                                                  None]


def test_calibration_equals_pandas_per_band():
    trades = random_ledger()
    day = D("2020-06-30")
    rows = calibration(trades, pd.DatetimeIndex([day]))
    for period, length in PERIODS.items():
        window = reference_window(trades, day, length)
        window = window[window["routing_confidence"].notna()]
        won = (window["profit_loss"] > 0).astype(float)
        bands = {"high": window["routing_confidence"] > 0.8, "low": window["routing_confidence"] < 0.5,
                 "medium": window["routing_confidence"].between(0.5, 0.8), "all": window["routing_confidence"] > -1}
        for band, inside in bands.items():
            got = rows[(rows["period_type"] == period) & (rows["band"] == band)].iloc[0]
            c, w = window.loc[inside, "routing_confidence"], won[inside]
            assert got["trades"] == inside.sum()
            assert_close(got["win_rate"], w.mean() if len(w) else np.nan, f"{period} {band} win rate")
            assert_close(got["mean_confidence"], c.mean() if len(c) else np.nan, f"{period} {band} confidence")
            assert_close(got["brier_score"], ((c - w) ** 2).mean() if len(c) else np.nan, f"{period} {band} brier")
            correct = {"high": (w == 1).sum(), "low": (w == 0).sum()}.get(band)
            if band == "medium":
                assert np.isnan(got["accuracy"]) and np.isnan(got["correct"])
            elif band != "all" and len(w):
                assert got["correct"] == correct and got["accuracy"] == pytest.approx(correct / len(w))


def test_outcomes_hand_computed_with_a_configured_baseline():
    trades = closed(ledger([
        ("x1", "s", "etf", "2020-01-02", "2020-01-10", 10.0, 16.0, 1, 0.9),   # +60%: explosive
        ("x2", "s", "etf", "2020-01-02", "2020-01-10", 10.0, 9.0, 1, 0.3),    # -10%
        ("x3", "s", "etf", "2020-02-03", "2020-02-10", 10.0, 10.5, 1, 0.7),   # +5%
        ("x4", "s", "etf", "2020-02-03", "2020-02-11", 10.0, 8.0, 1, 0.95),   # -20%
    ]))
    trades["entry_delay_days"] = [1.0, 2.0, np.nan, 1.0]
    trades["timing_cost"] = [0.01, -0.02, np.nan, 0.03]
    trades["timing_cost_amount"] = [0.1, -0.2, np.nan, 0.3]
    config = OutcomeConfig(min_trades=2, baseline=Baseline(0.5, 0.2, 0.25))
    rows = outcomes(trades, pd.DatetimeIndex([D("2020-02-11")]), config).set_index("period_type")
    everything, month = rows.loc["all"], rows.loc["30d"]
    assert everything["closed_trades"] == 4 and everything["win_rate"] == 0.5
    assert everything["avg_return"] == pytest.approx((0.6 - 0.1 + 0.05 - 0.2) / 4, abs=1e-15)
    assert everything["explosive_rate"] == 0.25
    assert everything["brier_score"] == pytest.approx(((0.9 - 1) ** 2 + 0.3 ** 2 + (0.7 - 1) ** 2 + 0.95 ** 2) / 4)
    assert everything["confidence_accuracy"] == pytest.approx(2 / 3)  # x1 right, x2 right, x4 wrong
    assert everything["avg_entry_delay_days"] == pytest.approx(4 / 3) and everything["timed_trades"] == 3
    assert everything["avg_timing_cost"] == pytest.approx(0.02 / 3) and everything["timing_score"] == pytest.approx(2 / 3)
    assert everything["timing_cost_amount"] == pytest.approx(0.2)
    assert everything["progress_win_rate"] == 1.0
    assert everything["progress_avg_return"] == pytest.approx(0.0875 / 0.2)
    assert everything["progress_explosive_rate"] == 1.0
    assert everything["recovery_progress"] == pytest.approx((1 + 0.4375 + 1) / 3)
    assert everything["performance_gap"] == pytest.approx(0.0875 - 0.2)
    assert everything["status"] == "GOOD"
    # the 30 days to 02-11: x3 and x4 only: win rate 50%, average -7.5%, accuracy 0 of 1 -> WARNING
    assert month["closed_trades"] == 2 and month["status"] == "WARNING"
    assert "confidence accuracy below 60%" in month["status_reasons"]
    harsh = outcomes(trades, pd.DatetimeIndex([D("2020-02-11")]), OutcomeConfig(
        min_trades=2, critical_avg_return=-0.05)).set_index("period_type")
    assert harsh.loc["30d", "status"] == "CRITICAL" and "average return below -5%" in harsh.loc["30d", "status_reasons"]
    few = outcomes(trades, pd.DatetimeIndex([D("2020-02-11")]), OutcomeConfig()).set_index("period_type")
    assert few.loc["30d", "status"] is None  # under the default 5 trades
    period = OutcomeConfig(min_trades=2, baseline=Baseline(None, None, None, D("2020-01-01").date(),
                                                            D("2020-01-31").date()))
    based = outcomes(trades, pd.DatetimeIndex([D("2020-02-11")]), period).set_index("period_type")
    assert based.loc["all", "baseline_win_rate"] == 0.5 and based.loc["all", "baseline_explosive_rate"] == 0.5
    assert based.loc["all", "baseline_avg_return"] == pytest.approx(0.25)
    early = outcomes(trades, pd.DatetimeIndex([D("2020-01-10"), D("2020-01-31")]), period)
    early = early[early["period_type"] == "all"].set_index("as_of_date")
    assert early.loc[D("2020-01-31"), "baseline_win_rate"] == 0.5  # the baseline period seen up to each day:
    assert early.loc[D("2020-01-10"), "baseline_win_rate"] == 0.5  # x1 and x2 closed on 01-10 already
    none_yet = outcomes(trades, pd.DatetimeIndex([D("2020-01-10")]), OutcomeConfig(baseline=Baseline(
        None, None, None, D("2020-01-11").date(), D("2020-12-31").date())))
    assert none_yet["baseline_win_rate"].isna().all() and none_yet["recovery_progress"].isna().all()


# --- volume-spike scan --------------------------------------------------------------------------------------------


def test_volume_spikes_on_a_crafted_series():
    days = pd.bdate_range("2021-01-04", periods=24)
    volume = pd.DataFrame({"SPIKE": 100.0, "DEAR": 100.0, "GAP": 100.0, "CALM": 100.0}, index=days)
    price = pd.DataFrame({"SPIKE": 3.0, "DEAR": 9.0, "GAP": 4.0, "CALM": 4.0}, index=days)
    volume.loc[days[22], ["SPIKE", "DEAR", "GAP"]] = 1500.0      # 15x the previous 20 sessions' average
    volume.loc[days[23], "SPIKE"] = 2090.0
    volume.loc[days[23], "CALM"] = 1400.0                         # 14x: below
    volume.loc[days[10], "GAP"] = np.nan                          # a hole in the average window
    config = ScanConfig(patterns=(VIGL, ReferencePattern("OTHER", 10.0, 6.0)))
    out = volume_spikes(price, volume, config)
    assert list(zip(out["trade_date"], out["ticker"])) == [(days[22], "SPIKE")]
    first = out.iloc[0]
    assert first["avg_volume"] == 100.0 and first["volume_multiple"] == 15.0
    vigl = (15.0 / 20.9 + 2.94 / 3.0) / 2
    other = (10.0 / 15.0 + 3.0 / 6.0) / 2
    assert first["similarities"] == pytest.approx({"VIGL": vigl, "OTHER": other}, rel=1e-15)
    assert first["best_pattern"] == "VIGL" and first["similarity"] == pytest.approx(vigl, rel=1e-15)
    later = volume_spikes(price, volume, ScanConfig(min_volume_multiple=10.0), start=days[23])
    assert later["ticker"].tolist() == ["CALM", "SPIKE"]  # from the start day only, highest multiple first
    spike = later.iloc[1]
    assert spike["volume_multiple"] == pytest.approx(2090.0 / ((19 * 100.0 + 1500.0) / 20), rel=1e-15)
    exact = volume_spikes(pd.DataFrame({"X": 2.94}, index=days), pd.DataFrame({"X": 100.0}, index=days).where(
        pd.Series(days != days[21], index=days), 2090.0), ScanConfig(min_volume_multiple=20.0))
    assert exact["similarity"].iloc[0] == pytest.approx(1.0, rel=1e-15)  # VIGL itself: 100%


# --- system health -------------------------------------------------------------------------------------------


def test_health_states():
    assert [freshness_status(lag) for lag in (0, 1, 2, None)] == ["GOOD", "WARNING", "CRITICAL", "CRITICAL"]
    none = pd.DataFrame(columns=["check", "severity", "run_id"])
    runs = pd.DataFrame(columns=["run_id", "job_name"])
    good = health_rows("2020-01-10", [Freshness("a", "2020-01-10", 0)], none, runs, {"t": 5})
    assert good.iloc[0]["status"] == "GOOD" and good.set_index("component").loc["rows:t", "value"] == 5
    warn = health_rows("2020-01-10", [Freshness("a", "2020-01-09", 1)], pd.DataFrame(
        [("a:c", "WARN", "r1")], columns=none.columns), runs, {})
    assert warn.iloc[0]["status"] == "WARNING" and "freshness:a" in warn.iloc[0]["detail"]
    bad = health_rows("2020-01-10", [Freshness("a", None, None)], none, pd.DataFrame(
        [("r1", "daily"), ("r2", "daily"), ("r3", "downstream")], columns=runs.columns), {})
    table = bad.set_index("component")
    assert table.loc["overall", "status"] == "CRITICAL" and table.loc["freshness:a", "detail"] == "never materialized"
    assert table.loc["failed_runs_7d", "status"] == "CRITICAL" and table.loc["failed_runs_7d", "value"] == 3
    assert table.loc["failed_runs_7d", "detail"] == "daily x2, downstream x1"
    assert math.isnan(table.loc["freshness:a", "value"])
