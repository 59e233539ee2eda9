"""No look-ahead (CONTRACT §4) on demo data: changing every price and VIX value after a date X leaves every
`overlay_signals` and `portfolio_daily_nav` row dated X or earlier exactly unchanged.

The chain runs twice over the same range, in two warehouses and two Dagster instances: once on a lake cut from
the demo lake, once on a copy whose prices after X are multiplied by random factors and whose VIX after X is
shifted. Rows after X must differ (the perturbation reached the pipeline), rows up to X must be identical.
"""

from __future__ import annotations

import shutil

import dagster as dg
import numpy as np
import pandas as pd

from tracking_pipeline.warehouse import open_warehouse
from tracking_pipeline_tests.helpers import run_chain

START, END = "2018-01-02", "2019-01-31"
X = pd.Timestamp("2018-11-30")
PRICE_COLUMNS = ["open", "high", "low", "close", "adj_close"]
VIX_COLUMNS = ["vix_open", "vix_high", "vix_low", "vix_close"]


def perturb_after(lake, day: pd.Timestamp, seed: int = 7) -> None:  # noqa: ANN001
    """Multiply every price dated after `day` by a random factor in [0.6, 1.4] (one per row, so rows of a
    ticker stay consistent) and shift every VIX value after `day` up by 12 points."""
    rng = np.random.default_rng(seed)
    for path in (lake / "prices").glob("*.parquet"):
        frame = pd.read_parquet(path)
        after = pd.to_datetime(frame["date"]) > day
        factors = rng.uniform(0.6, 1.4, int(after.sum()))
        for column in PRICE_COLUMNS:
            frame.loc[after, column] = frame.loc[after, column].to_numpy() * factors
        frame.to_parquet(path, index=False)
    path = lake / "features" / "features_latest.parquet"
    features = pd.read_parquet(path)
    after = pd.to_datetime(features["date"]) > day
    features.loc[after, VIX_COLUMNS] += 12.0
    features.to_parquet(path, index=False)


def tables(wh) -> dict[str, pd.DataFrame]:  # noqa: ANN001
    signals = wh.query("SELECT * FROM overlay_signals ORDER BY trade_date, model")
    nav = wh.query("SELECT * FROM portfolio_daily_nav ORDER BY portfolio_id, trade_date, variant")
    return {"overlay_signals": signals, "portfolio_daily_nav": nav}


def test_rows_up_to_x_do_not_depend_on_later_inputs(tracking_env, monkeypatch):
    env = tracking_env
    changed_lake = env.root / "lake_changed"
    shutil.copytree(env.lake, changed_lake)
    perturb_after(changed_lake, X)

    run_chain(env.defs(), env.instance, START, END, downstream=False)
    original = tables(env.warehouse_handle())

    monkeypatch.setenv("TRACKING_LAKE", str(changed_lake))
    changed_warehouse = str(env.root / "warehouse_changed.duckdb")
    monkeypatch.setenv("TRACKING_WAREHOUSE", changed_warehouse)
    (env.root / "dagster_home_changed").mkdir()
    with dg.instance_for_test(temp_dir=str(env.root / "dagster_home_changed")) as instance:
        run_chain(env.defs(), instance, START, END, downstream=False)
    changed = tables(open_warehouse(changed_warehouse))

    for name, frame in original.items():
        other = changed[name]
        assert len(frame) == len(other) and len(frame) > 0
        upto = frame["trade_date"] <= X
        assert upto.sum() > 0 and (~upto).sum() > 0
        # exact equality, every column (JSON signals/impacts included), up to and including X
        pd.testing.assert_frame_equal(frame[upto].reset_index(drop=True),
                                      other[other["trade_date"] <= X].reset_index(drop=True), check_exact=True)
        # and the perturbation did reach the rows after X
        later = frame[~upto].reset_index(drop=True)
        later_changed = other[other["trade_date"] > X].reset_index(drop=True)
        value = "nav" if name == "portfolio_daily_nav" else "signals"
        assert (later[value] != later_changed[value]).mean() > 0.9
