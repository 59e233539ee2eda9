"""Every bad input of CONTRACT §2 gets a clear error naming the file and the row or field, never a partial write,
and one bad portfolio never stops the others.

Price files: the price_data run fails with the message and the warehouse keeps its previous rows. Portfolio files:
the registry still registers the good files, its `portfolio_files_valid` check fails with the message, and the NAV
of the good portfolios is still written."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from tracking_pipeline.settings import DEMO_LAKE
from tracking_pipeline_tests.helpers import run_assets, run_job, run_nav_chain, step_failure_messages, write_portfolio

D1, D2 = "2018-07-02", "2018-07-06"


@pytest.fixture(autouse=True)
def history_from_d1(tracking_env, monkeypatch):
    """The tests run ranges from D1: the partitions (and so the history a day needs) begin there."""
    monkeypatch.setenv("TRACKING_PARTITIONS_START", D1)
HEADER = "date,ticker,adj_close\n"
GOOD_ROW = "2018-07-02,ZZZ,10.5\n"
DEMO_SPECS = [yaml.safe_load(p.read_text()) for p in sorted((DEMO_LAKE / "portfolios").glob("*.yaml"))]
DEMO_BOOKS = {spec["name"] for spec in DEMO_SPECS}


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    import io

    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


NAN_PARQUET = parquet_bytes(pd.DataFrame({"date": ["2018-07-02", "2018-07-03"], "ticker": ["ZZZ", "ZZZ"],
                                          "adj_close": [10.0, np.nan]}))

# id, file under prices/, content, fragments the error must contain
PRICE_CASES = [
    ("missing_column", "extra.csv", "date,ticker,close\n2018-07-02,ZZZ,10\n", ["field 'adj_close'", "missing"]),
    ("zero_price", "extra.csv", HEADER + GOOD_ROW + "2018-07-03,ZZZ,0\n", ["row 2", "field 'adj_close'", "positive"]),
    ("negative_price", "extra.csv", HEADER + GOOD_ROW + "2018-07-03,ZZZ,-1.5\n", ["row 2", "field 'adj_close'"]),
    ("nan_price", "extra.parquet", NAN_PARQUET, ["row 2", "field 'adj_close'", "got empty"]),
    ("inf_price", "extra.csv", HEADER + GOOD_ROW + "2018-07-03,ZZZ,inf\n", ["row 2", "field 'adj_close'", "inf"]),
    ("text_price", "extra.csv", HEADER + GOOD_ROW + "2018-07-03,ZZZ,ten\n", ["row 2", "field 'adj_close'", "'ten'"]),
    ("conflicting_duplicate", "extra.csv", HEADER + GOOD_ROW + "2018-07-03,AAPL,1.0\n",
     ["row 2", "field 'adj_close'", "2018-07-03, AAPL", "stocks.parquet, row"]),
    ("duplicate_in_one_file", "extra.csv", HEADER + GOOD_ROW + "2018-07-02,ZZZ,11\n",
     ["row 1", "2018-07-02, ZZZ", "this file, row 2"]),
    ("empty_file", "extra.csv", "", ["empty"]),
    ("malformed_parquet", "extra.parquet", b"PAR1 this is not parquet", ["cannot be read as parquet"]),
    ("malformed_csv", "extra.csv", HEADER + '2018-07-02,"ZZZ,10\n', ["cannot be read as csv"]),
    ("future_date", "extra.csv", HEADER + GOOD_ROW + "2999-01-04,ZZZ,10\n", ["row 2", "field 'date'", "future"]),
    ("not_a_date", "extra.csv", HEADER + GOOD_ROW + "next monday,ZZZ,10\n", ["row 2", "field 'date'", "not a date"]),
    ("number_as_date", "extra.csv", HEADER + "20180702,ZZZ,10\n5,ZZZ,11\n", ["row 2", "field 'date'", "not a date: 5"]),
]


def book(**changes) -> dict:
    spec = {"name": "Bad Book", "start_date": D1, "variants": ["raw"],
            "holdings": [{"effective_date": D1, "weights": {"AAPL": 0.5, "MSFT": 0.4}},
                         {"effective_date": "2018-07-05", "weights": {"AAPL": 0.3}}]}
    spec.update(changes)
    return spec


def with_weights(weights: dict) -> dict:
    return book(holdings=[{"effective_date": D1, "weights": weights}])


# id, file under portfolios/, content (a mapping is written as YAML), fragments the message must contain
PORTFOLIO_CASES = [
    ("weight_above_one", "bad.yaml", with_weights({"AAPL": 1.5}), ["holdings[0].weights.AAPL", "outside [0, 1]"]),
    ("weight_negative", "bad.yaml", with_weights({"AAPL": -0.1}), ["holdings[0].weights.AAPL", "outside [0, 1]"]),
    ("weight_nan", "bad.yaml", with_weights({"AAPL": float("nan")}), ["holdings[0].weights.AAPL", "finite"]),
    ("weight_text", "bad.yaml", with_weights({"AAPL": "half"}), ["holdings[0].weights.AAPL", "number"]),
    ("weights_above_one", "bad.yaml", with_weights({"AAPL": 0.6, "MSFT": 0.5}), ["holdings[0].weights'", "> 1"]),
    ("unpriced_ticker", "bad.yaml", with_weights({"AAPL": 0.5, "NOPE": 0.2}), ["field 'holdings'", "NOPE"]),
    ("unknown_overlay", "bad.yaml", book(variants=["raw", "moonshot"]), ["field 'variants'", "moonshot"]),
    ("missing_holdings", "bad.yaml", {k: v for k, v in book().items() if k != "holdings"}, ["field 'holdings'"]),
    ("missing_name", "bad.yaml", {k: v for k, v in book().items() if k != "name"}, ["field 'name'"]),
    ("start_not_a_date", "bad.yaml", book(start_date="soon"), ["field 'start_date'", "not a date"]),
    ("impossible_date", "bad.yaml",
     book(holdings=[{"effective_date": "2018-02-30", "weights": {"AAPL": 0.5}}]),
     ["holdings[0].effective_date", "not a date"]),
    ("malformed_yaml", "bad.yaml", "name: Bad Book\nholdings: [unclosed\n", ["malformed YAML", "at line 3"]),
    ("malformed_json", "bad.json", '{"name": "Bad Book", "start_date": ', ["malformed JSON", "line 1 column 36"]),
    ("empty_file", "bad.yaml", "", ["empty"]),
    ("not_a_mapping", "bad.json", json.dumps([1, 2]), ["must hold a mapping"]),
]


def write_raw(path, content) -> None:  # noqa: ANN001
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        path.write_text(yaml.safe_dump(content, sort_keys=False))


def check_evaluation(result, name: str):  # noqa: ANN001, ANN201
    return {e.check_name: e for e in result.get_asset_check_evaluations()}[name]


@pytest.mark.parametrize("case", PRICE_CASES, ids=[c[0] for c in PRICE_CASES])
def test_bad_price_file_fails_price_data_and_keeps_previous_rows(tracking_env, case):
    _, filename, content, fragments = case
    defs, instance, wh = tracking_env.defs(), tracking_env.instance, tracking_env.warehouse_handle()
    run_assets(defs, instance, ("price_data",), D1, D2)
    before = wh.read_table("price_data")
    assert len(before) > 0

    write_raw(tracking_env.lake / "prices" / filename, content)
    result = run_assets(defs, instance, ("price_data",), D1, D2, raise_on_error=False)
    assert not result.success
    [message] = step_failure_messages(result)
    assert f"prices/{filename}" in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert wh.read_table("price_data").equals(before)


def test_identical_duplicate_bars_are_accepted(tracking_env):
    """The same bars again in a second (nested) file change nothing."""
    defs, instance, wh = tracking_env.defs(), tracking_env.instance, tracking_env.warehouse_handle()
    run_assets(defs, instance, ("price_data",), D1, D2)
    before = wh.read_table("price_data")
    stocks = pd.read_parquet(tracking_env.lake / "prices" / "stocks.parquet")
    copy = stocks[stocks["ticker"].isin(["AAPL", "MSFT"])]
    write_raw(tracking_env.lake / "prices" / "more" / "copy.parquet", parquet_bytes(copy))
    result = run_assets(defs, instance, ("price_data",), D1, D2)
    assert result.success
    assert wh.read_table("price_data").equals(before)


def materialization_metadata(result, asset: str) -> dict:  # noqa: ANN001
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == asset]
    return events[0].step_materialization_data.materialization.metadata  # a range run: the same on each partition


def test_rows_dated_on_non_trading_days_are_ignored_with_a_warning(tracking_env):
    """A Saturday bar and an Independence Day bar are not stored (so they never count as a fresh price)."""
    defs, instance, wh = tracking_env.defs(), tracking_env.instance, tracking_env.warehouse_handle()
    write_raw(tracking_env.lake / "prices" / "extra.csv",
              HEADER + GOOD_ROW + "2018-07-04,ZZZ,10.7\n2018-07-05,ZZZ,10.8\n2018-07-07,ZZZ,11\n")
    result = run_assets(defs, instance, ("price_data",), D1, "2018-07-09")
    assert result.success
    stored = wh.query("SELECT trade_date FROM price_data WHERE ticker = 'ZZZ' ORDER BY trade_date")
    assert [str(d)[:10] for d in stored["trade_date"]] == ["2018-07-02", "2018-07-05"]
    warnings = materialization_metadata(result, "price_data")["lake_warnings"].value
    assert "prices/extra.csv: 2 row(s) dated on a non-trading day ignored, first row 2 (ZZZ on 2018-07-04)" in warnings
    # rows keep their file numbering after the ignored ones: a conflict on row 3 is reported as row 3
    write_raw(tracking_env.lake / "prices" / "extra.csv",
              HEADER + "2018-07-07,ZZZ,11\n" + GOOD_ROW + "2018-07-02,ZZZ,12\n")
    failed = run_assets(defs, instance, ("price_data",), D1, "2018-07-09", raise_on_error=False)
    [message] = step_failure_messages(failed)
    assert "row 2" in message and "row 3" in message, message


def test_an_unreadable_price_file_does_not_block_registration(tracking_env):
    """The registry checks holdings against the tickers of the readable price files and warns about the others;
    price_data still fails on the bad file."""
    defs, instance, wh = tracking_env.defs(), tracking_env.instance, tracking_env.warehouse_handle()
    write_raw(tracking_env.lake / "prices" / "extra.parquet", b"PAR1 this is not parquet")
    result = run_job(defs, "portfolio_registry_job", instance)
    assert check_evaluation(result, "portfolio_files_valid").passed
    assert set(wh.read_table("portfolio_definitions")["name"]) == DEMO_BOOKS
    warnings = materialization_metadata(result, "portfolio_definitions")["lake_warnings"].value
    assert "prices/extra.parquet" in warnings and "cannot be read as parquet" in warnings
    failed = run_assets(defs, instance, ("price_data",), D1, D2, raise_on_error=False)
    assert not failed.success and "prices/extra.parquet" in step_failure_messages(failed)[0]


@pytest.mark.parametrize("case", PORTFOLIO_CASES, ids=[c[0] for c in PORTFOLIO_CASES])
def test_bad_portfolio_file_is_reported_and_the_others_register(tracking_env, case):
    _, filename, content, fragments = case
    write_raw(tracking_env.lake / "portfolios" / filename, content)
    result = run_job(tracking_env.defs(), "portfolio_registry_job", tracking_env.instance)
    assert result.success
    check = check_evaluation(result, "portfolio_files_valid")
    assert not check.passed
    errors = check.metadata["errors"].value
    assert f"portfolios/{filename}" in errors
    for fragment in fragments:
        assert fragment in errors, f"{fragment!r} not in {errors!r}"
    registered = tracking_env.warehouse_handle().read_table("portfolio_definitions")
    assert set(registered["name"]) == DEMO_BOOKS and registered["is_active"].all()


def test_bad_portfolios_do_not_stop_the_good_ones_nav(tracking_env):
    """All bad files at once, plus a valid book whose ticker then goes unpriced for 6 sessions: the good
    books' NAV is written, the failures are each reported with file/field or ticker/date."""
    lake = tracking_env.lake
    for i, (_, filename, content, _) in enumerate(PORTFOLIO_CASES):
        stem, ext = filename.rsplit(".", 1)
        write_raw(lake / "portfolios" / f"{stem}_{i}.{ext}", content)
    write_portfolio(lake, "holey.yaml", {"name": "Holey", "start_date": D1, "variants": ["raw"],
                                         "holdings": [{"effective_date": D1, "weights": {"EFA": 0.5}}]})
    etfs = pd.read_parquet(lake / "prices" / "etfs.parquet")
    hole = (etfs["ticker"] == "EFA") & etfs["date"].astype(str).between("2018-07-03", "2018-07-11")
    assert hole.sum() == 6
    etfs[~hole].to_parquet(lake / "prices" / "etfs.parquet", index=False)

    defs, instance, wh = tracking_env.defs(), tracking_env.instance, tracking_env.warehouse_handle()
    registry = run_job(defs, "portfolio_registry_job", instance)
    errors = check_evaluation(registry, "portfolio_files_valid").metadata["errors"].value
    assert errors.count("\n- ") + 1 == len(PORTFOLIO_CASES)
    result = run_nav_chain(defs, instance, D1, "2018-07-13")
    assert result.success
    computed = check_evaluation(result, "all_portfolios_computed")
    assert not computed.passed
    assert list(computed.metadata["errors"].value) == ["Holey"]
    assert "EFA" in computed.metadata["errors"].value["Holey"]
    assert "2018-07-11" in computed.metadata["errors"].value["Holey"]
    nav = wh.query("SELECT d.name, COUNT(*) AS n FROM portfolio_daily_nav n JOIN portfolio_definitions d "
                   "USING (portfolio_id) WHERE n.variant = 'raw' GROUP BY d.name")
    started = {spec["name"] for spec in DEMO_SPECS if str(spec["start_date"]) <= D1}
    assert started and dict(zip(nav["name"], nav["n"])) == {name: 9 for name in started}  # 9 sessions


def test_a_registered_book_whose_file_turns_bad_keeps_its_rows(tracking_env):
    defs, instance, wh = tracking_env.defs(), tracking_env.instance, tracking_env.warehouse_handle()
    run_job(defs, "portfolio_registry_job", instance)
    definitions, holdings = wh.read_table("portfolio_definitions"), wh.read_table("portfolio_holdings")
    (tracking_env.lake / "portfolios" / "balanced_60_40.yaml").write_text("name: Balanced 60/40\nholdings: [\n")
    result = run_job(defs, "portfolio_registry_job", instance)
    assert not check_evaluation(result, "portfolio_files_valid").passed
    assert wh.read_table("portfolio_definitions").equals(definitions)
    assert wh.read_table("portfolio_holdings").equals(holdings)


def test_an_unpriced_market_ticker_fails_market_features_clearly(tracking_env, monkeypatch):
    monkeypatch.setenv("TRACKING_MARKET_TICKER", "NOPE")
    result = run_assets(tracking_env.defs(), tracking_env.instance, ("price_data", "market_features"), D1, D2,
                        raise_on_error=False)
    [message] = step_failure_messages(result)
    assert "'NOPE'" in message and "TRACKING_MARKET_TICKER" in message and "first 2018-07-02" in message
    assert tracking_env.warehouse_handle().scalar("SELECT COUNT(*) FROM market_features") == 0


def test_an_unexpected_error_in_one_book_does_not_stop_the_others(tracking_env, monkeypatch):
    """A bug (not an input error) hit by one portfolio is reported with its type; the other books' NAV is written."""
    from tracking_pipeline.services import nav as nav_service

    real = nav_service._portfolio_rows

    def fails_for_one_book(p, *args, **kwargs):
        if p.name == "Balanced 60/40":
            raise TypeError("unsupported operand type(s)")
        return real(p, *args, **kwargs)

    monkeypatch.setattr(nav_service, "_portfolio_rows", fails_for_one_book)
    defs, instance, wh = tracking_env.defs(), tracking_env.instance, tracking_env.warehouse_handle()
    run_job(defs, "portfolio_registry_job", instance)
    result = run_nav_chain(defs, instance, D1, D2)
    assert result.success
    errors = check_evaluation(result, "all_portfolios_computed").metadata["errors"].value
    assert errors == {"Balanced 60/40": "unexpected TypeError: unsupported operand type(s)"}
    written = set(wh.query("SELECT DISTINCT d.name FROM portfolio_daily_nav n JOIN portfolio_definitions d "
                           "USING (portfolio_id)")["name"])
    started = {spec["name"] for spec in DEMO_SPECS if str(spec["start_date"]) <= D1}
    assert written == started - {"Balanced 60/40"} and "Alpha Momentum 10" in written
