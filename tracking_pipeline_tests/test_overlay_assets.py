"""The overlay_signals asset end to end: models/<m>/allocation_history.csv and models/<m>/config.json in the
lake change the stored decisions (and the NAV that follows them) exactly as documented."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from tracking_pipeline.lake.portfolios import portfolio_id_for
from tracking_pipeline_tests.helpers import QUIET, RANGE_END_TAG, RANGE_START_TAG, run_chain

START, END = "2018-01-02", "2018-12-31"
THRESHOLD = 0.10  # both models' default rebalance_threshold
HISTORY = {"2018-08-01": 0.30, "2018-08-02": 0.35, "2018-11-01": 0.90, "2018-11-02": 0.25}
PORTFOLIO = "Balanced 60/40"  # demo portfolio starting 2018-07-02 with every variant


def signals(wh, model: str) -> pd.DataFrame:  # noqa: ANN001
    frame = wh.query("SELECT * FROM overlay_signals WHERE model = ? ORDER BY trade_date", [model])
    return frame.set_index("trade_date")


def nav(wh, variant: str) -> pd.DataFrame:  # noqa: ANN001
    frame = wh.query("SELECT * FROM portfolio_daily_nav WHERE portfolio_id = ? AND variant = ? ORDER BY trade_date",
                     [portfolio_id_for(PORTFOLIO), variant])
    return frame.set_index("trade_date")


def rerun_overlays_and_nav(env) -> None:  # noqa: ANN001
    from dagster import AssetKey

    defs = env.defs()
    result = defs.resolve_job_def("daily_assets_job").execute_in_process(
        instance=env.instance, run_config=QUIET, tags={RANGE_START_TAG: START, RANGE_END_TAG: END},
        asset_selection=[AssetKey("overlay_signals"), AssetKey("portfolio_daily_nav")])
    assert result.success


def threshold_path(targets: pd.Series, initial: float, threshold: float) -> pd.Series:
    """Independent recurrence of the contract's rule: move to the target when it is at least `threshold` away."""
    actual, prev = [], initial
    for target in targets:
        if abs(target - prev) >= threshold - 1e-9:
            prev = target
        actual.append(prev)
    return pd.Series(actual, index=targets.index)


def test_allocation_history_replaces_targets_on_its_dates(tracking_env):
    env = tracking_env
    run_chain(env.defs(), env.instance, START, END, downstream=False)
    wh = env.warehouse_handle()
    before, other_before = signals(wh, "conservative"), signals(wh, "trend_regime_v2")

    folder = env.lake / "models" / "conservative"
    folder.mkdir(parents=True)
    pd.DataFrame({"date": list(HISTORY), "target_allocation": list(HISTORY.values())}).to_csv(
        folder / "allocation_history.csv", index=False)
    rerun_overlays_and_nav(env)
    after = signals(wh, "conservative")

    days = pd.DatetimeIndex(list(HISTORY))
    np.testing.assert_array_equal(after.loc[days, "target_allocation"].to_numpy(), list(HISTORY.values()))
    for day in days:
        row = after.loc[day]
        assert json.loads(row["signals"])["source"] == "allocation_history"
        impacts = json.loads(row["impacts"])
        base = json.loads(row["signals"])["base_allocation"]
        assert list(impacts) == ["allocation_history"]
        assert abs(base + impacts["allocation_history"] - row["target_allocation"]) < 1e-9
    # the override changed something, nothing before its first date moved, the other model is untouched
    assert (after.loc[days, "target_allocation"] != before.loc[days, "target_allocation"]).any()
    first = days[0]
    pd.testing.assert_frame_equal(after[after.index < first], before[before.index < first])
    pd.testing.assert_frame_equal(signals(wh, "trend_regime_v2"), other_before)
    # the threshold rule holds on the stored rows (2018-08-02's 0.35 is within 0.10 of 0.30: no trade)
    expected = threshold_path(after["target_allocation"], 1.0, THRESHOLD)
    np.testing.assert_allclose(after["actual_allocation"].to_numpy(), expected.to_numpy(), atol=1e-12)
    assert after.loc["2018-08-02", "actual_allocation"] == 0.30
    assert bool(after.loc["2018-08-01", "trade_required"]) and not bool(after.loc["2018-08-02", "trade_required"])
    # end to end: the variant's equity allocation on day t is the actual allocation decided on t-1
    variant = nav(wh, "conservative")
    lagged = after["actual_allocation"].shift(1).reindex(variant.index)
    np.testing.assert_array_equal(variant["equity_allocation"].iloc[1:].to_numpy(), lagged.iloc[1:].to_numpy())
    assert variant.loc["2018-08-02", "equity_allocation"] == 0.30


def test_model_config_json_overrides_defaults(tracking_env):
    env = tracking_env
    zero_impacts = {key: 0.0 for key in (
        "trend_above_impact", "trend_below_impact", "vix_low_impact", "vix_elevated_impact", "vix_high_impact",
        "rsi_overbought_impact", "rsi_oversold_impact", "momentum_positive_impact", "momentum_negative_impact",
        "momentum_strong_negative_impact", "vol_low_impact", "vol_elevated_impact", "vol_high_impact")}
    configs = {
        "conservative": {"base_allocation": 0.45, "cost_bps": 30.0, **zero_impacts},
        "trend_regime_v2": {"initial_allocation": 0.5, "rebalance_threshold": 1.0},
    }
    for model, config in configs.items():
        folder = env.lake / "models" / model
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps(config))
    run_chain(env.defs(), env.instance, START, END, downstream=False)
    wh = env.warehouse_handle()

    # conservative: every factor 0 -> the target is the base on every day with complete features; days
    # without them (before the 200-day average exists) hold the initial 1.0
    cons = signals(wh, "conservative")
    source = cons["signals"].map(lambda s: json.loads(s)["source"])
    assert (source == "model").sum() > 40 and (source == "held").sum() > 100
    assert (cons.loc[source == "model", "target_allocation"] == 0.45).all()
    assert (cons.loc[source == "held", "target_allocation"] == 1.0).all()
    assert cons["trade_required"].sum() == 1  # 1.0 -> 0.45 once

    # trend_regime_v2: a threshold of 1 never trades, so the actual allocation stays at the initial 0.5
    trend = signals(wh, "trend_regime_v2")
    assert (trend["actual_allocation"] == 0.5).all() and not trend["trade_required"].any()
    assert trend["target_allocation"].nunique() > 1

    # cost_bps in config.json: the variant pays 30 bp of the allocation change (rf = 0)
    raw, variant = nav(wh, "raw"), nav(wh, "conservative")
    eq = variant["equity_allocation"]
    expected = eq * raw["daily_return"] - 30e-4 * eq.diff().abs()
    np.testing.assert_allclose(variant["daily_return"].iloc[1:], expected.iloc[1:], rtol=0, atol=1e-15)
    assert (eq.diff().abs() > 0).sum() == 1
    assert (variant.index[0] == raw.index[0]) and variant["daily_return"].iloc[0] == 0.0
