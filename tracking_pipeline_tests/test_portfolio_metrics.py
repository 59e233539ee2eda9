"""`portfolio_metrics` on the demo data through Dagster: every metric equals empyrical-reloaded (quantstats for
win_rate and Treynor; tracking_pipeline_tests/metrics_reference.py) computed from the NAV read back from the warehouse, a nightly day rewrites only the periods containing it,
undefined values are NULL, and the fallback agrees with the table.

One module-scoped environment (small demo lake, DuckDB, temporary Dagster instance, TRACKING_RISK_FREE_RATE=3%):
the NAV chain over 2018-01-02..2019-06-27 and a metrics run, then the daily job for 2019-06-28 and another."""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from tracking_pipeline.analytics.metrics import METRIC_COLUMNS, OUTPUT_COLUMNS, daily_risk_free
from tracking_pipeline.services.performance import BENCHMARK, get_metrics
from tracking_pipeline_tests.conftest import TrackingEnv
from tracking_pipeline_tests.helpers import QUIET, make_lake, run_nav_chain, write_portfolio
from tracking_pipeline_tests.metrics_reference import library_figures, assert_figures_match

RF = 0.03
RF_D = daily_risk_free(RF)
LAST_DAY_BEFORE = "2019-06-27"
NEW_DAY = "2019-06-28"
TOL = 1e-9
LATE = "Late Starter"
METRICS = dg.AssetKey("portfolio_metrics")


@dataclass
class Demo:
    env: TrackingEnv
    defs: dg.Definitions
    before: pd.DataFrame
    after: pd.DataFrame
    first_run: dict
    second_run: dict


def _run_metrics(demo_defs: dg.Definitions, instance: dg.DagsterInstance) -> dict:
    """Materialize portfolio_metrics (downstream_job restricted to it); returns its metadata values."""
    result = demo_defs.resolve_job_def("downstream_job").execute_in_process(
        instance=instance, run_config=QUIET, asset_selection=[METRICS])
    assert result.success
    for check in result.get_asset_check_evaluations():
        assert check.passed, (check.check_name, {k: v.value for k, v in check.metadata.items()})
    [mat] = result.asset_materializations_for_node("portfolio_metrics")
    return {k: v.value for k, v in mat.metadata.items()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    root = tmp_path_factory.mktemp("metrics_demo")
    lake = make_lake(root / "lake")
    write_portfolio(lake, "late_starter.yaml", {
        "name": LATE, "description": "starts the day before the last day", "source": "test",
        "start_date": LAST_DAY_BEFORE, "benchmark": "QQQ", "variants": ["raw"],
        "holdings": [{"effective_date": LAST_DAY_BEFORE, "weights": {"AAPL": 0.5, "MSFT": 0.4}}]})
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {"TRACKING_LAKE": str(lake), "TRACKING_WAREHOUSE": str(root / "warehouse.duckdb"),
                            "TRACKING_REPORTS": str(root / "reports"), "TRACKING_LAKE_CACHE": str(root / "cache"),
                            "TRACKING_PARTITIONS_START": "2018-01-02", "TRACKING_RISK_FREE_RATE": str(RF)}.items():
            mp.setenv(name, value)
        mp.delenv("TRACKING_MARKET_TICKER", raising=False)
        (root / "dagster_home").mkdir()
        with dg.instance_for_test(temp_dir=str(root / "dagster_home")) as instance:
            env = TrackingEnv(root, lake, str(root / "warehouse.duckdb"), instance)
            demo_defs = env.defs()
            run_nav_chain(demo_defs, instance, "2018-01-02", LAST_DAY_BEFORE)
            first_run = _run_metrics(demo_defs, instance)
            wh = env.warehouse_handle()
            before = wh.read_table("portfolio_metrics")
            run_nav_chain(demo_defs, instance, NEW_DAY, NEW_DAY)
            second_run = _run_metrics(demo_defs, instance)
            after = wh.read_table("portfolio_metrics")
            yield Demo(env, demo_defs, before, after, first_run, second_run)


# --------------------------------------------------------------------------- independent reference


def _names(wh) -> dict[str, int]:  # noqa: ANN001
    frame = wh.read_table("portfolio_definitions")
    return dict(zip(frame["name"], frame["portfolio_id"].astype(int)))


def series(wh, pid: int, variant: str) -> tuple[pd.Series, pd.Series, pd.Series]:  # noqa: ANN001
    """(r, b, prev) on the days with a return: the variant's NAV pct_change (or the benchmark's adj_close
    pct_change) and the benchmark's, read back from portfolio_daily_nav and price_data, and the NAV day each
    return is measured from."""
    ticker, start_date = wh.query("SELECT benchmark, start_date FROM portfolio_definitions WHERE portfolio_id = ?",
                                  [pid]).iloc[0]
    nav = wh.query("SELECT trade_date, variant, nav FROM portfolio_daily_nav WHERE portfolio_id = ?", [pid]).pivot(
        index="trade_date", columns="variant", values="nav").sort_index()
    prices = wh.query("SELECT trade_date, adj_close FROM price_data WHERE ticker = ?", [ticker]).set_index(
        "trade_date")["adj_close"].sort_index()
    b = prices.reindex(nav.index).pct_change()
    r = b if variant == BENCHMARK else nav[variant].pct_change()
    prev = pd.Series(nav.index.to_series().shift(1).to_numpy(), index=nav.index)
    dated = r.index > pd.Timestamp(start_date)
    return r[dated], b[dated], prev[dated]


def reference(wh, pid: int, variant: str, period_type: str, period_start: pd.Timestamp) -> dict:  # noqa: ANN001
    """The library figures of one stored period; its calendar window is derived here, independently."""
    r, b, prev = series(wh, pid, variant)
    days, p = r.index, pd.Timestamp(period_start)
    iso, p_iso = days.isocalendar(), p.isocalendar()
    window = {
        "week": (iso.year.to_numpy() == p_iso.year) & (iso.week.to_numpy() == p_iso.week),
        "month": (days.year == p.year) & (days.month == p.month),
        "quarter": (days.year == p.year) & (days.quarter == p.quarter),
        "year": days.year == p.year,
        "ytd": days.year == days[-1].year,
        "all": np.ones(len(days), bool),
    }[period_type]
    return library_figures(r[window], b[window], RF, prev[window].iloc[0])


def compare(row: pd.Series, ref: dict) -> float:
    """Assert the stored row equals the reference (absolute below 1, relative above; dates and durations
    exactly); returns the largest difference. NULL exactly where the reference is."""
    assert row["period_start"].date() == ref["period_start"] and row["period_end"].date() == ref["period_end"]
    diffs = assert_figures_match(row.to_dict(), ref, f"{row['portfolio_id']} {row['variant']} {row['period_type']}",
                                 TOL, OUTPUT_COLUMNS)
    return max([d / max(1.0, abs(ref[m])) for m, d in diffs.items()], default=0.0)


def _row(table: pd.DataFrame, pid: int, variant: str, period_type: str, period_start: str | None = None) -> pd.Series:
    rows = table[(table["portfolio_id"] == pid) & (table["variant"] == variant)
                 & (table["period_type"] == period_type)]
    if period_start is not None:
        rows = rows[rows["period_start"] == pd.Timestamp(period_start)]
    assert len(rows) == 1, (pid, variant, period_type, period_start, len(rows))
    return rows.iloc[0]


# --------------------------------------------------------------------------- tests


def test_every_metric_matches_empyrical_and_quantstats(demo):
    wh = demo.env.warehouse_handle()
    ids = _names(wh)
    table = demo.after
    cases = [
        # Q4 2018: the quarterly rebalance at the close of 2018-10-01, Thanksgiving, the 2018-12-05 closure
        ("Alpha Momentum 10", "raw", "quarter", "2018-10-01"),
        # the week of the 2019-04-01 rebalance, and the Good Friday week after
        ("Alpha Momentum 10", "trend_regime_v2", "week", "2019-04-01"),
        ("Alpha Momentum 10", "conservative", "week", "2019-04-15"),
        ("Balanced 60/40", "conservative", "week", "2018-11-19"),
        ("Balanced 60/40", "raw", "year", "2018-07-03"),
        ("Diversified Large Cap", "trend_regime_v2", "month", "2018-12-03"),
        ("Tech Leaders", "trend_regime_v2", "ytd", None),
        ("Defensive Income", "raw", "all", None),
        ("Tech Leaders", BENCHMARK, "all", None),
        ("Balanced 60/40", BENCHMARK, "month", "2018-12-03"),
    ]
    worst = 0.0
    for name, variant, period_type, start in cases:
        row = _row(table, ids[name], variant, period_type, start)
        worst = max(worst, compare(row, reference(wh, ids[name], variant, period_type, row["period_start"])))
    # every series' `all` and `ytd` row
    for row in table[table["period_type"].isin(["all", "ytd"]) & (table["portfolio_id"] != ids[LATE])].itertuples():
        row = pd.Series(row._asdict())
        worst = max(worst, compare(row, reference(wh, row["portfolio_id"], row["variant"], row["period_type"],
                                                  row["period_start"])))
    print(f"largest difference vs empyrical/quantstats: {worst:.3e}")


def test_rows_cover_every_series_and_period(demo):
    wh = demo.env.warehouse_handle()
    ids = _names(wh)
    table = demo.after
    nav = wh.query("SELECT portfolio_id, variant, MIN(trade_date) AS first, MAX(trade_date) AS last "
                   "FROM portfolio_daily_nav GROUP BY portfolio_id, variant")
    expected = {(int(r.portfolio_id), r.variant) for r in nav.itertuples()} | {
        (int(p), BENCHMARK) for p in nav["portfolio_id"].unique()}
    assert set(zip(table["portfolio_id"], table["variant"])) == expected
    # one row per ISO week with a return, for a series checked against the NAV days
    alpha = ids["Alpha Momentum 10"]
    days = series(wh, alpha, "raw")[0].index
    assert len(days) > 200
    iso = days.isocalendar()
    weeks = table[(table["portfolio_id"] == alpha) & (table["variant"] == "raw") & (table["period_type"] == "week")]
    first_days = pd.Series(days, index=days).groupby([iso.year.to_numpy(), iso.week.to_numpy()]).min()
    assert list(weeks["period_start"]) == list(first_days)
    counts = table.groupby("period_type").size()
    assert counts["all"] == counts["ytd"] == len(expected)
    assert demo.second_run["rows_total"] == len(table)


def test_nightly_day_rewrites_only_the_periods_containing_it(demo):
    wh = demo.env.warehouse_handle()
    ids = _names(wh)
    first, second = demo.first_run, demo.second_run
    assert first["rows_recomputed"] == first["rows_total"] == len(demo.before)
    series_before = demo.before.groupby(["portfolio_id", "variant"]).ngroups
    late_series = 2  # raw + benchmark, first computed now (full)
    assert second["rows_recomputed"] == 6 * series_before + 6 * late_series
    assert second["rows_recomputed"] < 0.15 * second["rows_total"]
    assert second["portfolios_recomputed"][LATE] == "full"
    assert {v for k, v in second["portfolios_recomputed"].items() if k != LATE} == {f"from {NEW_DAY}"}

    key = ["portfolio_id", "variant", "period_type", "period_start"]
    merged = demo.before.merge(demo.after, on=key, how="outer", suffixes=("_b", "_a"), indicator=True)
    value_cols = ["period_end", *METRIC_COLUMNS]
    same = np.ones(len(merged), bool)
    for c in value_cols:
        a, b = merged[f"{c}_b"], merged[f"{c}_a"]
        same &= ((a == b) | (a.isna() & b.isna())).to_numpy()
    changed = merged[(merged["_merge"] != "both") | ~same]
    lower = {"week": "2019-06-24", "month": "2019-06-01", "quarter": "2019-04-01", "year": "2019-01-01",
             "ytd": "2019-01-01", "all": "1900-01-01"}
    in_new_period = merged["period_start"] >= merged["period_type"].map(lower).map(pd.Timestamp)
    contains_new_day = in_new_period & (merged["period_end_a"] == pd.Timestamp(NEW_DAY))
    # every row of a period containing the new day changed, nothing else did
    assert set(changed.index) == set(merged.index[contains_new_day])
    assert len(changed) == second["rows_recomputed"]
    assert (merged.loc[changed.index, "_merge"] != "left_only").all()
    assert set(merged.loc[merged["_merge"] == "right_only", "portfolio_id"]) == {ids[LATE]}


def test_undefined_values_are_null_in_the_table(demo):
    wh = demo.env.warehouse_handle()
    late = _names(wh)[LATE]
    for variant in ("raw", BENCHMARK):
        row = _row(demo.after, late, variant, "week")
        assert row["period_start"] == row["period_end"] == pd.Timestamp(NEW_DAY)  # one return
        for m in ("volatility", "sharpe_ratio", "sortino_ratio", "beta", "alpha", "tracking_error",
                  "information_ratio", "var_95", "cvar_99", "treynor_ratio", "cagr", "calmar_ratio"):
            assert pd.isna(row[m]), (variant, m)
        for m in ("total_return", "max_drawdown", "current_drawdown", "max_drawdown_trough",
                  "max_drawdown_duration"):
            assert not pd.isna(row[m]), (variant, m)
    stored = wh.query("SELECT COUNT(*) AS n FROM portfolio_metrics WHERE portfolio_id = ? AND volatility IS NULL",
                      [late]).iat[0, 0]
    assert stored == 12  # 2 series x 6 periods: NULL in the database, not NaN or 0


def test_kpi_metadata_lists_all_and_ytd_rows(demo):
    md = demo.second_run["kpi"]
    lines = [line for line in md.splitlines()[2:] if line.strip()]
    assert len(lines) == 2 * len(demo.after.groupby(["portfolio_id", "variant"]))
    assert all("| all " in line or "| ytd " in line for line in lines)
    assert "Tech Leaders" in md and "benchmark" in md


def test_fallback_reads_the_table_and_live_matches_it(demo):
    wh = demo.env.warehouse_handle()
    ids = _names(wh)
    table = demo.after
    for name, variant, period_type, start in (("Alpha Momentum 10", "raw", "quarter", "2018-10-01"),
                                              ("Tech Leaders", BENCHMARK, "all", None),
                                              ("Balanced 60/40", "conservative", "month", "2019-02-01")):
        row = _row(table, ids[name], variant, period_type, start)
        stored = get_metrics(wh, ids[name], variant, row["period_start"], row["period_end"], RF)
        live = get_metrics(wh, ids[name], variant, row["period_start"], row["period_end"], RF, use_table=False)
        assert stored["source"] == "table" and live["source"] == "live"
        for m in METRIC_COLUMNS:
            if stored[m] is None:
                assert live[m] is None, m
            else:
                assert live[m] == pytest.approx(stored[m], rel=1e-12, abs=1e-15), m
    # an arbitrary range spanning a rebalance (2019-01-02) and holidays: live, equal to the libraries
    pid = ids["Alpha Momentum 10"]
    got = get_metrics(wh, pid, "conservative", "2018-12-20", "2019-01-25", RF)
    assert got["source"] == "live"
    r, b, prev = series(wh, pid, "conservative")
    window = (r.index >= "2018-12-20") & (r.index <= "2019-01-25")
    ref = library_figures(r[window], b[window], RF, prev[window].iloc[0])
    assert (got["period_start"], got["period_end"]) == (ref["period_start"], ref["period_end"])
    assert_figures_match(got, ref, "live 2018-12-20..2019-01-25", TOL, OUTPUT_COLUMNS)
