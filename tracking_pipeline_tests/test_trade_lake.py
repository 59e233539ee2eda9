"""The lake's trade ledger, routing decisions and trade analytics settings: every bad input is an error naming the
file, row and field while the other files load; and the demo ledger is what its deterministic, causal generator
writes from the demo's real prices."""

from __future__ import annotations

import importlib.util
import io
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tracking_pipeline.analytics.volume_scan import VIGL
from tracking_pipeline.lake import LakeInputError, open_lake
from tracking_pipeline.lake.trades import load_routing, load_trade_analytics_config, load_trades
from tracking_pipeline.settings import DEMO_LAKE
from tracking_pipeline_tests.trade_lake import cut_trade_files

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "build_demo_trades.py"
KNOWN = {"AAPL", "MSFT"}
TRADES = ("trade_id,symbol,strategy,classification,entry_date,entry_price,quantity,exit_date,exit_price,exit_reason,"
          "routing_confidence\n")
ROUTING = "decision_id,symbol,selected_strategy,classification,confidence,reason,timestamp\n"
GOOD_TRADE = "T1,AAPL,rsi,large_cap,2020-01-02,100,10,2020-01-10,110,target,0.9\n"
GOOD_DECISION = "D1,AAPL,rsi,large_cap,0.9,oversold,2020-01-01 16:00:00\n"


def lake_with(root: Path, files: dict[str, str]):  # noqa: ANN201 - a Lake
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return open_lake(str(root))


@pytest.mark.parametrize("row, field, message", [
    ("T3,AAPL,rsi,large_cap,2020-01-10,100,10,2020-01-02,110,x,0.9", "exit_date", "before the entry"),
    ("T3,AAPL,rsi,large_cap,2020-01-02,0,10,,,,0.9", "entry_price", "finite positive number, got 0.0"),
    ("T3,AAPL,rsi,large_cap,2020-01-02,-3.5,10,,,,0.9", "entry_price", "finite positive number, got -3.5"),
    ("T3,AAPL,rsi,large_cap,2020-01-02,100,0,,,,0.9", "quantity", "finite positive number, got 0.0"),
    ("T3,AAPL,rsi,large_cap,2020-01-02,100,10,2020-01-05,-1,x,0.9", "exit_price", "finite positive number"),
    ("T3,AAPL,rsi,large_cap,2020-01-02,100,10,2020-01-05,,x,0.9", "exit_price", "exit_date is set but"),
    ("T3,AAPL,rsi,large_cap,2020-01-02,100,10,,101,x,0.9", "exit_date", "exit_price is set but"),
    ("T3,ZZZZ,rsi,large_cap,2020-01-02,100,10,,,,0.9", "symbol", "unknown symbol 'ZZZZ'"),
    ("T3,,rsi,large_cap,2020-01-02,100,10,,,,0.9", "symbol", "empty value"),
    ("T3,AAPL,,large_cap,2020-01-02,100,10,,,,0.9", "strategy", "empty value"),
    ("T3,AAPL,rsi,large_cap,2020-01-02,100,10,,,,1.2", "routing_confidence", "must be in [0, 1], got 1.2"),
    ("T3,AAPL,rsi,large_cap,2020-01-02,100,10,,,,-0.1", "routing_confidence", "must be in [0, 1]"),
    ("T3,AAPL,rsi,large_cap,2020-01-02,100,10,,,,high", "routing_confidence", "not a number: 'high'"),
    ("T3,AAPL,rsi,large_cap,2020-13-02,100,10,,,,0.5", "entry_date", "not a date"),
    ("T3,AAPL,rsi,large_cap,2099-01-02,100,10,,,,0.5", "entry_date", "in the future"),
    ("T2,AAPL,rsi,large_cap,2020-01-02,100,12,,,,0.5", "quantity", "appears again with a different quantity "
                                                                    "(10.0 in row 1, 12.0 here)"),
    ("T1,AAPL,rsi,large_cap,2020-01-02,101,10,2020-01-10,110,target,0.9", "entry_price",
     "appears again with a different entry_price (100.0 in trades/a_good.csv, row 1, 101.0 here)"),
])
def test_a_bad_ledger_row_names_file_row_and_field_and_the_other_files_load(tmp_path, row, field, message):
    lake = lake_with(tmp_path, {
        "trades/a_good.csv": TRADES + GOOD_TRADE,
        "trades/b_bad.csv": TRADES + "T2,AAPL,rsi,large_cap,2020-01-02,100,10,,,,0.5\n" + row + "\n",
    })
    pd.read_csv(io.StringIO(TRADES + "T9,MSFT,brk,etf,2020-02-03,50,2,,,,\n")).to_parquet(
        tmp_path / "trades" / "c_good.parquet")
    ledger = load_trades(lake, KNOWN)
    assert ledger.files == ["trades/a_good.csv", "trades/c_good.parquet"]
    assert sorted(ledger.rows["trade_id"]) == ["T1", "T9"]  # nothing of the bad file
    error = ledger.errors["trades/b_bad.csv"]
    assert f"b_bad.csv, row 2, field '{field}': " in error and message in error, error


def test_identical_repeats_collapse_and_open_trades_keep_empty_exits(tmp_path):
    lake = lake_with(tmp_path, {"trades/a.csv": TRADES + GOOD_TRADE + GOOD_TRADE,
                                "trades/b.csv": TRADES + GOOD_TRADE + "T2,MSFT,brk,etf,2020-01-03,50,2,,,,\n"})
    ledger = load_trades(lake, KNOWN)
    assert not ledger.errors and ledger.rows["trade_id"].tolist() == ["T1", "T2"]
    open_trade = ledger.rows.iloc[1]
    assert pd.isna(open_trade["exit_date"]) and pd.isna(open_trade["exit_price"]) and pd.isna(
        open_trade["routing_confidence"]) and open_trade["source_file"] == "trades/b.csv"
    first = ledger.rows.iloc[0]
    assert first["entry_date"] == pd.Timestamp("2020-01-02") and first["exit_price"] == 110.0
    assert first["source_row"] == 1 and first["quantity"] == 10.0


def test_missing_column_and_no_files(tmp_path):
    assert load_trades(open_lake(str(tmp_path)), KNOWN).rows.empty
    lake = lake_with(tmp_path, {"trades/a.csv": "trade_id,symbol\nT1,AAPL\n"})
    error = load_trades(lake, KNOWN).errors["trades/a.csv"]
    assert "a.csv, field 'strategy': missing required column" in error


@pytest.mark.parametrize("row, field, message", [
    ("D2,AAPL,rsi,large_cap,1.5,x,2020-01-02", "confidence", "must be in [0, 1], got 1.5"),
    ("D2,AAPL,rsi,large_cap,,x,2020-01-02", "confidence", "empty value"),
    ("D2,QQQQ,rsi,large_cap,0.5,x,2020-01-02", "symbol", "unknown symbol 'QQQQ'"),
    ("D2,AAPL,rsi,,0.5,x,2020-01-02", "classification", "empty value"),
    ("D2,AAPL,rsi,large_cap,0.5,x,yesterday", "timestamp", "not a timestamp: 'yesterday'"),
    ("D2,AAPL,rsi,large_cap,0.5,x,2099-01-02 10:00:00", "timestamp", "in the future"),
    ("D1,AAPL,rsi,large_cap,0.8,oversold,2020-01-01 16:00:00", "confidence", "appears again with a different "
                                                                             "confidence"),
])
def test_a_bad_routing_row_names_file_row_and_field(tmp_path, row, field, message):
    lake = lake_with(tmp_path, {"routing/a.csv": ROUTING + GOOD_DECISION, "routing/b.csv": ROUTING + row + "\n"})
    ledger = load_routing(lake, KNOWN)
    assert ledger.files == ["routing/a.csv"] and ledger.rows["decision_id"].tolist() == ["D1"]
    error = ledger.errors["routing/b.csv"]
    assert f"b.csv, row 1, field '{field}': " in error and message in error, error


def test_routing_timestamps_become_decision_days(tmp_path):
    lake = lake_with(tmp_path, {"routing/a.csv": ROUTING + GOOD_DECISION
                                + "D2,MSFT,brk,etf,0.3,,2020-01-04T21:30:00-05:00\n"})
    rows = load_routing(lake, KNOWN).rows.set_index("decision_id")
    assert rows.loc["D1", "decision_date"] == pd.Timestamp("2020-01-01")
    assert rows.loc["D2", "timestamp"] == pd.Timestamp("2020-01-04 21:30:00")  # New York time
    assert rows.loc["D2", "decision_date"] == pd.Timestamp("2020-01-04") and rows.loc["D2", "reason"] is None


def test_analytics_settings_defaults_demo_and_errors(tmp_path):
    scan, outcome = load_trade_analytics_config(open_lake(str(tmp_path)))
    assert (scan.min_volume_multiple, scan.min_price, scan.max_price, scan.patterns) == (15.0, 1.0, 8.0, (VIGL,))
    assert (outcome.critical_win_rate, outcome.critical_avg_return, outcome.warning_accuracy) == (0.40, -0.15, 0.60)
    assert outcome.explosive_return == 0.5 and outcome.baseline.win_rate == 0.73
    scan, outcome = load_trade_analytics_config(open_lake(str(DEMO_LAKE)))
    assert scan.min_volume_multiple == 5.0 and [p.name for p in scan.patterns][0] == "VIGL" and len(scan.patterns) == 3
    assert outcome.baseline.start.isoformat() == "2019-01-01" and outcome.explosive_return == 0.10
    for text, field in [("volume_spike: {min_price: cheap}", "volume_spike.min_price"),
                        ("volume_spike: {min_price: 9, max_price: 8}", "volume_spike.min_price"),
                        ("volume_spike: {patterns: {X: {price: 3}}}", "volume_spike.patterns.X.volume_multiple"),
                        ("outcomes: {baseline: {start: 2020-02-01, end: 2020-01-01}}", "outcomes.baseline.end"),
                        ("outcomes: {status_period: 7d}", "outcomes.status_period"),
                        ("outcomes: {critical_winrate: 0.3}", "outcomes.critical_winrate"),
                        ("[1, 2]", None)]:
        lake = lake_with(tmp_path / field.replace(".", "_") if field else tmp_path / "list",
                         {"reference/trade_analytics.yaml": text})
        with pytest.raises(LakeInputError) as raised:
            load_trade_analytics_config(lake)
        assert "trade_analytics.yaml" in str(raised.value) and (field is None or f"field '{field}'" in str(raised.value))


# --- the demo ledger ---------------------------------------------------------------------------------------------


def _generator():  # noqa: ANN202 - the script as a module
    spec = importlib.util.spec_from_file_location("build_demo_trades", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_ledger_is_what_the_generator_writes(tmp_path):
    lake = tmp_path / "lake"
    shutil.copytree(DEMO_LAKE / "prices", lake / "prices")
    shutil.copy(DEMO_LAKE / "README.md", lake / "README.md")
    done = subprocess.run([sys.executable, str(SCRIPT), "--lake", str(lake)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    shipped = sorted(p.relative_to(DEMO_LAKE).as_posix() for folder in ("trades", "routing")
                     for p in (DEMO_LAKE / folder).glob("*"))
    built = sorted(p.relative_to(lake).as_posix() for folder in ("trades", "routing") for p in (lake / folder).glob("*"))
    assert built == shipped and len(built) >= 10
    for relative in [*shipped, "reference/trade_analytics.yaml", "README.md"]:
        assert (lake / relative).read_bytes() == (DEMO_LAKE / relative).read_bytes(), relative


def test_demo_ledger_shape():
    ledger = load_trades(open_lake(str(DEMO_LAKE)), {"AAPL"} | set(pd.read_parquet(
        DEMO_LAKE / "prices" / "stocks.parquet", columns=["ticker"])["ticker"]) | set(pd.read_parquet(
            DEMO_LAKE / "prices" / "etfs.parquet", columns=["ticker"])["ticker"]))
    routing = load_routing(open_lake(str(DEMO_LAKE)))
    assert not ledger.errors and not routing.errors
    trades = ledger.rows
    assert 500 <= len(trades) <= 2000 and len(routing.rows) > len(trades)
    assert 5 <= trades["exit_date"].isna().sum() <= 50  # some still open at the lake's end
    assert set(trades["strategy"]) == {"rsi_mean_reversion", "breakout_20d"}
    assert set(trades["classification"]) == {"etf", "large_cap", "high_volatility"}
    bands = pd.cut(trades["routing_confidence"], [0, 0.4999, 0.8, 1.0]).value_counts()
    assert (bands >= 50).all()  # every confidence band holds trades


def test_generator_is_causal_so_the_cut_test_lake_equals_a_ledger_built_from_cut_prices(tmp_path):
    module = _generator()
    end = "2019-06-28"
    prices = module.read_lake_prices(DEMO_LAKE)
    trades, routing = module.build(prices[prices["date"] <= pd.Timestamp(end)])
    cut_trade_files(tmp_path, "2018-01-02", end)
    cut_trades = pd.concat(pd.read_csv(p) for p in sorted((tmp_path / "trades").glob("*.csv")))
    cut_routing = pd.concat(pd.read_csv(p) for p in sorted((tmp_path / "routing").glob("*.csv")))
    built = pd.read_csv(io.StringIO(trades.to_csv(index=False)))
    assert len(built) > 200 and built["exit_date"].isna().sum() > 0
    pd.testing.assert_frame_equal(built.reset_index(drop=True), cut_trades.reset_index(drop=True))
    pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(routing.to_csv(index=False))),
                                  cut_routing.reset_index(drop=True))
