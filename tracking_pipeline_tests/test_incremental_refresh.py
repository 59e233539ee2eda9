"""`asset_correlations` and `portfolio_stress_tests` recompute only the dates whose inputs changed (input
fingerprints), and always end equal to a full recompute."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd

from tracking_pipeline.defs.monitoring.health import collect_health
from tracking_pipeline.services.fingerprints import (
    RefreshPlan, digest, digest_prefixes, plan_refresh, refresh_writes,
)
from tracking_pipeline.services.nav import PRICE_LOOKBACK_SESSIONS, Portfolio, load_active_portfolios
from tracking_pipeline.services.market_risk import (
    compute_correlations, correlation_fingerprints, correlation_inputs, refresh_correlations,
)
from tracking_pipeline.trading_calendar import sessions_before
from tracking_pipeline.warehouse import Write, open_warehouse
from tracking_pipeline_tests.helpers import QUIET, run_assets, run_job

START = "2018-01-02"


DATE_COLUMN = {"asset_correlations": "calc_date", "portfolio_stress_tests": "snapshot_date"}


def materialize(env, asset: str, count: str) -> int:  # noqa: ANN001
    """Materialize one downstream asset alone; the metadata value `count` (dates written). The table summary in
    the metadata and system_health's row count (read from the input fingerprints) match a scan of the table."""
    result = env.defs().resolve_job_def("downstream_job").execute_in_process(
        instance=env.instance, run_config=QUIET, asset_selection=[dg.AssetKey(asset)])
    [event] = result.get_asset_materialization_events()
    metadata = event.step_materialization_data.materialization.metadata
    column = DATE_COLUMN[asset]
    scan = env.warehouse_handle().query(f"SELECT COUNT(*) AS n, COUNT(DISTINCT {column}) AS dates, MIN({column}) "
                                        f"AS first, MAX({column}) AS last FROM {asset}").iloc[0]
    assert metadata["dagster/row_count"].value == scan["n"] > 0 and metadata["dates"].value == scan["dates"]
    assert (metadata["first_date"].value, metadata["last_date"].value) == (
        str(pd.Timestamp(scan["first"]).date()), str(pd.Timestamp(scan["last"]).date()))
    health = collect_health(env.instance, env.defs().resolve_asset_graph(), env.warehouse_handle(), None)
    assert health.set_index("component").loc[f"rows:{asset}", "value"] == scan["n"]  # system_health's count too
    checks = result.get_asset_check_evaluations()
    assert checks and all(check.passed for check in checks)
    if asset == "asset_correlations":  # the check reads the dates this run wrote
        assert checks[0].metadata["dates_checked"].value == metadata["calc_dates_written"].value
    return metadata[count].value


def refresh(env) -> tuple[int, pd.DataFrame]:  # noqa: ANN001
    """Materialize asset_correlations alone; (calc_dates_written, the stored table in key order)."""
    return materialize(env, "asset_correlations", "calc_dates_written"), stored(env)


def stored(env) -> pd.DataFrame:  # noqa: ANN001
    table = env.warehouse_handle().read_table("asset_correlations")
    return table.sort_values(["calc_date", "window_days", "ticker_a", "ticker_b"], ignore_index=True)


def full_recompute(env) -> pd.DataFrame:  # noqa: ANN001
    """What rewriting the whole table would store, in the table's column order."""
    wh = env.warehouse_handle()
    end = pd.Timestamp(wh.scalar("SELECT MAX(trade_date) FROM price_data"))
    rows = compute_correlations(wh, load_active_portfolios(wh, end))
    columns = list(stored(env).columns)
    return rows[columns].sort_values(["calc_date", "window_days", "ticker_a", "ticker_b"], ignore_index=True)


def restate(env, ticker: str, day: str) -> None:  # noqa: ANN001
    """Raise an ETF's adjusted close on one day by 1% in the lake and re-run that day's price_data."""
    etfs_path = env.lake / "prices" / "etfs.parquet"
    etfs = pd.read_parquet(etfs_path)
    hit = (etfs["ticker"] == ticker) & (etfs["date"].astype(str).str[:10] == day)
    assert hit.sum() == 1
    etfs.loc[hit, "adj_close"] *= 1.01
    etfs.to_parquet(etfs_path, index=False)
    run_assets(env.defs(), env.instance, ("price_data",), day, day)


def fingerprinted(env, asset: str) -> dict[tuple[int, pd.Timestamp], str]:  # noqa: ANN001
    """The stored input fingerprints of `asset`, by (portfolio id, date)."""
    rows = env.warehouse_handle().query("SELECT part, calc_date, fingerprint FROM input_fingerprints WHERE asset = ?",
                                        [asset])
    return {(int(part), pd.Timestamp(day)): value for part, day, value in
            zip(rows["part"], rows["calc_date"], rows["fingerprint"])}


def assert_equal_tables(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert len(got) > 0
    pd.testing.assert_frame_equal(got, want, check_dtype=False, rtol=1e-12)


def test_only_changed_dates_are_rewritten(tracking_env):
    run_job(tracking_env.defs(), "portfolio_registry_job", tracking_env.instance)
    run_assets(tracking_env.defs(), tracking_env.instance, ("price_data",), START, "2018-10-30")
    written, first = refresh(tracking_env)
    dates = sorted(pd.to_datetime(first["calc_date"]).dt.strftime("%Y-%m-%d").unique())
    assert dates == ["2018-07-31", "2018-08-31", "2018-09-28", "2018-10-30"] and written == 4
    assert_equal_tables(first, full_recompute(tracking_env))

    written, again = refresh(tracking_env)  # nothing new: nothing written
    assert written == 0
    pd.testing.assert_frame_equal(again, first)

    # one more day: the previous latest day (not a month end) goes, the new one comes
    run_assets(tracking_env.defs(), tracking_env.instance, ("price_data",), "2018-10-31", "2018-10-31")
    written, nightly = refresh(tracking_env)
    assert written == 2
    assert sorted(pd.to_datetime(nightly["calc_date"]).dt.strftime("%Y-%m-%d").unique())[-2:] == \
        ["2018-09-28", "2018-10-31"]
    assert_equal_tables(nightly, full_recompute(tracking_env))
    untouched = nightly["calc_date"] < pd.Timestamp("2018-10-01")
    pd.testing.assert_frame_equal(nightly[untouched], first[first["calc_date"] < pd.Timestamp("2018-10-01")])

    # a restated past price (AGG, held by Balanced 60/40, on 2018-08-15) rewrites every date whose windows see it
    restate(tracking_env, "AGG", "2018-08-15")
    written, restated = refresh(tracking_env)
    assert written == 3  # Aug 31, Sep 28 and Oct 31 (the 252-day windows); Jul 31 is before the change
    assert_equal_tables(restated, full_recompute(tracking_env))
    july = restated["calc_date"] == pd.Timestamp("2018-07-31")
    pd.testing.assert_frame_equal(restated[july], first[first["calc_date"] == pd.Timestamp("2018-07-31")])

    # rows lost behind the pipeline's back (the stored input fingerprint still matches): the row count gives it away
    with tracking_env.warehouse_handle().session() as wh:
        wh.replace(Write("asset_correlations", pd.DataFrame(), {"calc_date": [pd.Timestamp("2018-08-31").date()]}))
    written, repaired = refresh(tracking_env)
    assert written == 1
    pd.testing.assert_frame_equal(repaired, restated)

    # a first run stopped after its first batch (one date a batch here): the next run does only the rest
    with tracking_env.warehouse_handle().session() as wh:
        wh.replace(Write("input_fingerprints", pd.DataFrame(), {"asset": ["asset_correlations"]}))
        end = pd.Timestamp(wh.scalar("SELECT MAX(trade_date) FROM price_data"))
        batches = refresh_correlations(wh, load_active_portfolios(wh, end), batch_dates=1)
        first_batch = next(batches)
        wh.replace(*first_batch.writes)
    assert first_batch.dates == [pd.Timestamp("2018-07-31").date()]
    written, resumed = refresh(tracking_env)
    assert written == 3
    pd.testing.assert_frame_equal(resumed, restated)

    # a book that starts on the latest day holding a priced ticker nobody held before changes the inputs of that day
    # only (its prices over the years before do not enter the earlier dates)
    with tracking_env.warehouse_handle().session() as wh:
        end = pd.Timestamp(wh.scalar("SELECT MAX(trade_date) FROM price_data"))
        books = load_active_portfolios(wh, end)
        held = {t for p in books for _, weights in p.schedule for t in weights}
        priced = set(wh.query("SELECT DISTINCT ticker FROM price_data")["ticker"])
        unheld = sorted(priced - held)[0]
        before = correlation_fingerprints(correlation_inputs(wh, books))
        newcomer = Portfolio(999, "newcomer", end, 100.0, ("raw",), [(end, {"SPY": 0.5, unheld: 0.5})])
        after = correlation_fingerprints(correlation_inputs(wh, [*books, newcomer]))
    assert before.keys() == after.keys() and len(before) == 4
    assert {day for key, day in before if before[(key, day)] != after[(key, day)]} == {end}


STRESS_KEY = ["portfolio_id", "snapshot_date", "scenario"]


def stress_table(env) -> pd.DataFrame:  # noqa: ANN001
    return env.warehouse_handle().read_table("portfolio_stress_tests").sort_values(STRESS_KEY, ignore_index=True)


def refresh_stress(env) -> tuple[int, pd.DataFrame]:  # noqa: ANN001
    """Materialize portfolio_stress_tests alone; ((portfolio, date) pairs written, the stored table)."""
    return materialize(env, "portfolio_stress_tests", "dates_written"), stress_table(env)


def test_stress_tests_recompute_only_changed_dates(tracking_env):
    defs = tracking_env.defs()
    run_job(defs, "portfolio_registry_job", tracking_env.instance)
    run_job(defs, "daily_assets_job", tracking_env.instance, START, "2018-10-30")
    written, first = refresh_stress(tracking_env)
    pairs = first[["portfolio_id", "snapshot_date"]].drop_duplicates()
    assert written == len(pairs) > 5 and first["snapshot_date"].max() == pd.Timestamp("2018-10-30")

    written, again = refresh_stress(tracking_env)  # nothing new: nothing computed or written
    assert written == 0
    pd.testing.assert_frame_equal(again, first)

    # one more day: per portfolio the previous latest day (not a month end) goes and the new one comes
    run_job(defs, "daily_assets_job", tracking_env.instance, "2018-10-31", "2018-10-31")
    written, nightly = refresh_stress(tracking_env)
    before_restating = fingerprinted(tracking_env, "portfolio_stress_tests")
    portfolios = first["portfolio_id"].nunique()
    assert written == 2 * portfolios
    assert pd.Timestamp("2018-10-30") not in set(nightly["snapshot_date"])
    before_october = nightly["snapshot_date"] < pd.Timestamp("2018-10-01")
    pd.testing.assert_frame_equal(nightly[before_october].reset_index(drop=True),
                                  first[first["snapshot_date"] < pd.Timestamp("2018-10-01")].reset_index(drop=True))

    # a restated past price (AGG on 2018-08-15) rewrites exactly the dates whose weights see it: those of its
    # holders from that day to their next rebalance (a day's weights depend only on its last rebalance and the
    # prices since); their NAV and betas are not re-run here, so only the weights' inputs changed
    with tracking_env.warehouse_handle().session() as wh:
        books = load_active_portfolios(wh, pd.Timestamp("2018-10-31"))
    restated_day = pd.Timestamp("2018-08-15")
    expected = set()
    for p in books:
        for day in nightly.loc[nightly["portfolio_id"] == p.portfolio_id, "snapshot_date"].unique():
            anchor = max([p.start, *(d for d, _ in p.schedule if d <= day)])
            seen_from = sessions_before(anchor, PRICE_LOOKBACK_SESSIONS)  # a stale price may be carried from there
            if p.weights_on(anchor).get("AGG", 0.0) > 0 and seen_from <= restated_day <= day:
                expected.add((p.portfolio_id, pd.Timestamp(day)))
    assert 0 < len(expected) < len(nightly[["portfolio_id", "snapshot_date"]].drop_duplicates())
    restate(tracking_env, "AGG", "2018-08-15")
    written, restated = refresh_stress(tracking_env)
    assert written == len(expected)
    rewritten = fingerprinted(tracking_env, "portfolio_stress_tests")
    assert {key for key, value in rewritten.items() if value != before_restating.get(key)} == expected
    nightly = restated

    # rows lost behind the pipeline's back are noticed by their count and restored
    portfolio = int(nightly["portfolio_id"].iloc[0])
    with tracking_env.warehouse_handle().session() as wh:
        wh.replace(Write("portfolio_stress_tests", pd.DataFrame(),
                         {"portfolio_id": [portfolio], "snapshot_date": [pd.Timestamp("2018-08-31").date()]}))
    written, repaired = refresh_stress(tracking_env)
    assert written == 1
    pd.testing.assert_frame_equal(repaired, nightly)

    # a full recompute (no stored fingerprints) gives the same table
    with tracking_env.warehouse_handle().session() as wh:
        wh.replace(Write("input_fingerprints", pd.DataFrame(), {"asset": ["portfolio_stress_tests"]}))
    written, full = refresh_stress(tracking_env)
    assert written == len(nightly[["portfolio_id", "snapshot_date"]].drop_duplicates())
    pd.testing.assert_frame_equal(full, nightly)


def test_refresh_writes_share_statements_only_between_parts_with_the_same_dates(warehouse_url):
    """Parts whose dates to rewrite are the same share one write of the table and one of the fingerprints; a part
    with other dates gets its own, so no part loses rows on a date another part rewrites (the scope of a shared
    write is parts x dates)."""
    days = pd.DatetimeIndex(["2024-01-31", "2024-02-29", "2024-03-28"])

    def rows(parts: dict[int, list[pd.Timestamp]], value: float) -> pd.DataFrame:
        keys = [(part, day) for part, dates in parts.items() for day in dates]
        return pd.DataFrame({"portfolio_id": [p for p, _ in keys], "snapshot_date": [d for _, d in keys],
                             "scenario": "Market -10%", "market_shock": -0.1, "expected_return": value,
                             "expected_pnl": value})

    wh = open_warehouse(warehouse_url)
    wh.replace(Write("portfolio_stress_tests", rows({1: list(days), 2: list(days), 3: list(days)}, 0.0),
                     {"portfolio_id": [1, 2, 3]}))
    # book 1 rewrites the last two dates; book 2 the last one and drops the middle one (the same two dates to
    # rewrite: one shared write); book 3 rewrites only the last one, so its middle date must keep its row
    todo = {1: list(days[1:]), 2: [days[2]], 3: [days[2]]}
    plan = RefreshPlan("portfolio_stress_tests", sorted((str(p), d) for p, ds in todo.items() for d in ds),
                       [("2", days[1])])
    current = {key: f"fp-{key[0]}-{key[1].date()}" for key in plan.todo}
    new = rows(todo, 1.0)
    writes = refresh_writes(plan, "portfolio_stress_tests", "snapshot_date", new, current, part_column="portfolio_id")
    assert [(w.table, w.scope.get("portfolio_id") or w.scope["part"]) for w in writes] == [
        ("portfolio_stress_tests", [1, 2]), ("input_fingerprints", ["1", "2"]),
        ("portfolio_stress_tests", [3]), ("input_fingerprints", ["3"])]
    wh.replace(*writes)
    got = wh.read_table("portfolio_stress_tests").sort_values(["portfolio_id", "snapshot_date"], ignore_index=True)
    expected = pd.concat([rows({1: [days[0]], 2: [days[0]], 3: list(days[:2])}, 0.0), new]).sort_values(
        ["portfolio_id", "snapshot_date"], ignore_index=True)
    pd.testing.assert_frame_equal(got[expected.columns], expected, check_dtype=False)
    stored_fps = wh.query("SELECT part, calc_date, fingerprint, row_count FROM input_fingerprints ORDER BY 1, 2")
    assert [(r.part, pd.Timestamp(r.calc_date), r.fingerprint, r.row_count)
            for r in stored_fps.itertuples()] == [(p, d, current[(p, d)], 1) for p, d in plan.todo]


def test_plan_refresh_keeps_only_dates_with_the_same_fingerprint_and_row_count(warehouse_url):
    """A date is left alone only when its stored fingerprint is the current one and its stored row count is the
    table's; stored dates (with rows or a fingerprint) no longer computed are dropped, only in the parts given."""
    days = pd.DatetimeIndex(["2024-01-31", "2024-02-29", "2024-03-28"])
    wh = open_warehouse(warehouse_url)
    wh.replace(Write("portfolio_stress_tests", pd.DataFrame({
        "portfolio_id": [1, 1, 1, 2, 2], "snapshot_date": [days[0], days[1], days[1], days[0], days[2]],
        "scenario": ["a", "a", "b", "a", "a"], "market_shock": -0.1, "expected_return": 0.0, "expected_pnl": 0.0}),
        {"portfolio_id": [1, 2]}))
    stored = [("1", days[0], "x", 1), ("1", days[1], "y", 1), ("2", days[0], "z", 1), ("2", days[1], "w", 0),
              ("3", days[0], "v", 0)]
    wh.replace(Write("input_fingerprints", pd.DataFrame(stored, columns=["part", "calc_date", "fingerprint",
                                                                         "row_count"]).assign(
        asset="portfolio_stress_tests"), {"asset": ["portfolio_stress_tests"]}))
    current = {("1", days[0]): "x",  # unchanged
               ("1", days[1]): "y",  # the same inputs, but two rows where one was written
               ("2", days[0]): "z2",  # changed inputs
               ("2", days[1]): "w",  # no rows written and none stored: unchanged
               ("2", days[2]): "u",  # rows without a fingerprint
               ("1", days[2]): "t"}  # a new date
    plan = plan_refresh(wh, "portfolio_stress_tests", "portfolio_stress_tests", "snapshot_date", current,
                        part_column="portfolio_id")
    assert plan.todo == sorted([("1", days[1]), ("1", days[2]), ("2", days[0]), ("2", days[2])])
    assert plan.stale == [("3", days[0])]
    assert plan_refresh(wh, "portfolio_stress_tests", "portfolio_stress_tests", "snapshot_date", current,
                        part_column="portfolio_id", parts=["1", "2"]).stale == []


def test_digest_prefixes_equal_digests_of_the_rows_up_to_each_stop():
    """Each date's fingerprint over the rows up to its stop equals `digest` of those rows (the head hashed once,
    no row copied): rows after the stop do not count, rows before it do."""
    block = np.random.default_rng(7).normal(size=(9, 4))
    block[3, 2] = np.nan
    head = ["v1", "A|B|C", np.arange(6.0).reshape(3, 2), "2024-01-31"]
    stops, tails = [0, 2, 5, 9], [(0.0, np.float64(1.25), 100.0), (), ("x",), (np.nan,)]
    got = digest_prefixes(head, block, stops, tails)
    assert got == [digest(*head, block[:stop], *tail) for stop, tail in zip(stops, tails)]
    assert len(set(got)) == len(got)
    later = block.copy()
    later[6, 0] += 1e-12
    assert [a == b for a, b in zip(digest_prefixes(head, later, stops, tails), got)] == [True, True, True, False]
    strided = block[:, ::2]  # not contiguous: hashed as its values, as `digest` does
    assert digest_prefixes(head, strided, [4], [()]) == [digest(*head, strided[:4])]
