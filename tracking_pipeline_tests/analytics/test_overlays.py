"""Tests of the pure overlay layer: models, registry, decision loop and variant NAV math."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tracking_pipeline.analytics.overlays import (
    REGISTRY,
    OverlayModel,
    available_models,
    compute_overlay_signals,
    equity_allocation_for_days,
    get_model,
    register,
    variant_nav,
    variant_returns,
)
from tracking_pipeline.analytics.overlays.base import ModelEvaluation, _rows, feature_array, finish_target
from tracking_pipeline.analytics.overlays.trend_regime_v2 import confirm_regimes

# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------

NEUTRAL_ROW = {  # conservative: every factor 0 except trend (+0.10) -> 0.90
    "close": 110.0, "sma_50": 105.0, "sma_200": 100.0, "rsi_14": 50.0, "momentum_63": 0.02,
    "momentum_126": 0.04, "realized_vol_21": 0.15, "drawdown": -0.01, "vix_close": 17.0,
}


def row(**changes) -> dict:
    out = dict(NEUTRAL_ROW)
    out.update(changes)
    return out


def frame(rows: list[dict], start: str = "2024-01-02") -> pd.DataFrame:
    return pd.DataFrame(rows, index=pd.bdate_range(start, periods=len(rows)))


def bull(vol: float = 0.10) -> dict:
    return row(close=110.0, sma_50=105.0, sma_200=100.0, realized_vol_21=vol)


def bear(vol: float = 0.10) -> dict:
    return row(close=90.0, sma_50=95.0, sma_200=100.0, realized_vol_21=vol)


def neutral(vol: float = 0.10) -> dict:
    return row(close=95.0, sma_50=105.0, sma_200=100.0, realized_vol_21=vol)


def market_features(n: int = 600, seed: int = 7) -> pd.DataFrame:
    """A realistic-looking feature frame computed causally from a random-walk close."""
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2015-01-02", periods=n)
    close = pd.Series(100 * np.exp(np.cumsum(rng.normal(0.0002, 0.013, n))), index=idx)
    ret = close.pct_change()
    delta = close.diff()
    gain = delta.clip(lower=0).ewm(alpha=1 / 14, adjust=False, min_periods=14).mean()
    loss = (-delta).clip(lower=0).ewm(alpha=1 / 14, adjust=False, min_periods=14).mean()
    return pd.DataFrame({
        "close": close,
        "sma_50": close.rolling(50).mean(),
        "sma_200": close.rolling(200).mean(),
        "rsi_14": 100 - 100 / (1 + gain / loss),
        "momentum_63": close / close.shift(63) - 1,
        "momentum_126": close / close.shift(126) - 1,
        "realized_vol_21": ret.rolling(21).std(ddof=1) * np.sqrt(252),
        "drawdown": close / close.cummax() - 1,
        "vix_close": np.abs(18 + 3 * np.cumsum(rng.normal(0, 0.3, n)) % 25),
    })


def assert_identity(out: pd.DataFrame) -> None:
    for date, (tgt, sig, imp) in out[["target_allocation", "signals", "impacts"]].iterrows():
        assert sig["base_allocation"] + sum(imp.values()) == pytest.approx(tgt, abs=1e-9), date


# ------------------------------------------------------------------------------------------------
# registry
# ------------------------------------------------------------------------------------------------


def test_registry_lists_models_in_order():
    assert available_models() == ["conservative", "trend_regime_v2"]
    assert get_model("conservative").name == "conservative"
    assert set(REGISTRY) == {"conservative", "trend_regime_v2"}


def test_unknown_model_error_message():
    with pytest.raises(ValueError) as exc:
        get_model("x")
    assert str(exc.value) == "Unknown overlay 'x'. Available: conservative, trend_regime_v2"
    with pytest.raises(ValueError, match="Unknown overlay 'momentum_v3'"):
        compute_overlay_signals("momentum_v3", frame([bull()]))


def test_adding_a_model_is_one_class_and_one_register(monkeypatch):
    class Constant(OverlayModel):
        name = "constant_half"
        required_features = ("close",)
        default_config = {"rebalance_threshold": 0.0, "cost_bps": 0.0, "initial_allocation": 1.0,
                          "floor": 0.0, "cap": 1.0, "allocation_step": 0.0, "level": 0.5}

        def evaluate(self, features, config):
            close = feature_array(features, "close")
            unclipped = np.where(np.isnan(close), np.nan, config["level"])
            target, step, cf = finish_target(unclipped, config)
            return ModelEvaluation(target, 0.0, {"level": unclipped, "step": step, "cap_floor": cf},
                                   {"close": close, "base_allocation": 0.0}, [[]] * len(features))

    monkeypatch.setattr("tracking_pipeline.analytics.overlays.registry.REGISTRY", dict(REGISTRY))
    register(Constant())
    assert available_models() == ["conservative", "trend_regime_v2", "constant_half"]
    out = compute_overlay_signals("constant_half", frame([bull(), bull()]), {"level": 0.25})
    assert out["actual_allocation"].tolist() == [0.25, 0.25]
    assert out["trade_required"].tolist() == [True, False]
    with pytest.raises(ValueError, match="already registered"):
        register(Constant())


def test_register_rejects_reserved_name(monkeypatch):
    monkeypatch.setattr("tracking_pipeline.analytics.overlays.registry.REGISTRY", dict(REGISTRY))

    class Raw(OverlayModel):
        name = "raw"
        default_config = dict(get_model("conservative").default_config)

    with pytest.raises(ValueError, match="Invalid overlay name 'raw'"):
        register(Raw())


# ------------------------------------------------------------------------------------------------
# configuration
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["conservative", "trend_regime_v2"])
def test_default_config_has_shared_keys(model):
    cfg = get_model(model).default_config
    for key in ("rebalance_threshold", "cost_bps", "initial_allocation", "floor", "cap", "allocation_step"):
        assert key in cfg
    assert cfg["cost_bps"] == 0.0
    assert cfg["initial_allocation"] == 1.0
    assert cfg["rebalance_threshold"] == 0.10


def test_unknown_config_key_is_named():
    with pytest.raises(ValueError, match="'rebalance_treshold'"):
        compute_overlay_signals("conservative", frame([bull()]), {"rebalance_treshold": 0.1})
    with pytest.raises(ValueError, match="'confirmation_days'"):  # belongs to the other model
        compute_overlay_signals("conservative", frame([bull()]), {"confirmation_days": 2})


@pytest.mark.parametrize(
    "model, overrides, key",
    [
        ("conservative", {"floor": 0.9, "cap": 0.5}, "floor"),
        ("conservative", {"rebalance_threshold": -0.1}, "rebalance_threshold"),
        ("conservative", {"base_allocation": "high"}, "base_allocation"),
        ("conservative", {"vix_low": 40.0}, "vix_elevated"),
        ("conservative", {"require_vix": 1}, "require_vix"),
        ("trend_regime_v2", {"confirmation_days": 0}, "confirmation_days"),
        ("trend_regime_v2", {"confirmation_days": 2.5}, "confirmation_days"),
        ("trend_regime_v2", {"target_vol": 0.0}, "target_vol"),
        ("trend_regime_v2", {"cost_bps": -1.0}, "cost_bps"),
        ("trend_regime_v2", {"initial_allocation": 1.5}, "initial_allocation"),
    ],
)
def test_bad_config_values_are_named(model, overrides, key):
    with pytest.raises(ValueError, match=f"'{key}'"):
        get_model(model).resolve_config(overrides)


# ------------------------------------------------------------------------------------------------
# conservative model
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "features, expected_target, expected_impacts",
    [
        # calm bull: 0.8 +0.1 trend +0.1 vix<15 +0.05 mom>=5% +0.05 vol<12% = 1.10 -> capped 1.0
        (row(vix_close=12.0, momentum_63=0.08, realized_vol_21=0.10), 1.0,
         {"trend": 0.1, "vix": 0.1, "rsi": 0.0, "momentum": 0.05, "volatility": 0.05, "step": 0.0,
          "cap_floor": -0.1}),
        # neutral uptrend: only the trend factor -> 0.90
        (row(), 0.9,
         {"trend": 0.1, "vix": 0.0, "rsi": 0.0, "momentum": 0.0, "volatility": 0.0, "step": 0.0,
          "cap_floor": 0.0}),
        # elevated VIX, overbought, negative momentum, elevated vol, still uptrend:
        # 0.8 +0.1 -0.1 -0.05 -0.05 -0.1 = 0.60
        (row(vix_close=25.0, rsi_14=75.0, momentum_63=-0.03, realized_vol_21=0.22), 0.6,
         {"trend": 0.1, "vix": -0.1, "rsi": -0.05, "momentum": -0.05, "volatility": -0.1, "step": 0.0,
          "cap_floor": 0.0}),
        # crash: 0.8 -0.2 -0.25 +0.05 -0.15 -0.2 = 0.05 -> floor 0.20
        (row(close=80.0, vix_close=35.0, rsi_14=25.0, momentum_63=-0.12, realized_vol_21=0.35), 0.2,
         {"trend": -0.2, "vix": -0.25, "rsi": 0.05, "momentum": -0.15, "volatility": -0.2, "step": 0.0,
          "cap_floor": 0.15}),
        # oversold in a downtrend with normal VIX/vol: 0.8 -0.2 +0.05 = 0.65
        (row(close=95.0, rsi_14=25.0, momentum_63=0.0), 0.65,
         {"trend": -0.2, "vix": 0.0, "rsi": 0.05, "momentum": 0.0, "volatility": 0.0, "step": 0.0,
          "cap_floor": 0.0}),
        # band edges: vix exactly 20 is 'elevated', vol exactly 0.30 is 'high', momentum -0.10 strong
        (row(vix_close=20.0, realized_vol_21=0.30, momentum_63=-0.10), 0.45,
         {"trend": 0.1, "vix": -0.1, "rsi": 0.0, "momentum": -0.15, "volatility": -0.2, "step": 0.0,
          "cap_floor": 0.0}),
    ],
)
def test_conservative_targets_on_hand_made_rows(features, expected_target, expected_impacts):
    target, impacts, signals = get_model("conservative").target(pd.Series(features))
    assert target == pytest.approx(expected_target, abs=1e-12)
    assert impacts.keys() == expected_impacts.keys()
    for key, value in expected_impacts.items():
        assert impacts[key] == pytest.approx(value, abs=1e-12), key
    assert signals["base_allocation"] + sum(impacts.values()) == pytest.approx(target, abs=1e-9)
    assert signals["missing_features"] == []


def test_conservative_signals_labels():
    _, _, s = get_model("conservative").target(
        pd.Series(row(close=80.0, vix_close=35.0, rsi_14=25.0, momentum_63=-0.12, realized_vol_21=0.35)))
    assert s["regime"] == "downtrend"
    assert s["vix_band"] == "high"
    assert s["rsi_state"] == "oversold"
    assert s["momentum_state"] == "strong_negative"
    assert s["volatility_band"] == "high"
    assert s["vix_close"] == 35.0 and s["close"] == 80.0
    assert s["target_unclipped"] == pytest.approx(0.05)


def test_conservative_step_rounding_has_its_own_impact():
    # base 0.83 + 0.10 trend = 0.93 -> nearest 0.05 step = 0.95 (step impact +0.02)
    target, impacts, _ = get_model("conservative").target(pd.Series(row()), {"base_allocation": 0.83})
    assert target == pytest.approx(0.95, abs=1e-12)
    assert impacts["step"] == pytest.approx(0.02, abs=1e-12)
    # step 0.1: 0.8 + 0.1 - 0.05 (rsi) = 0.85 -> halves round up -> 0.9
    target, impacts, _ = get_model("conservative").target(pd.Series(row(rsi_14=80.0)), {"allocation_step": 0.1})
    assert target == pytest.approx(0.9, abs=1e-12)
    assert impacts["step"] == pytest.approx(0.05, abs=1e-12)


def test_conservative_vix_is_optional_unless_required():
    no_vix = pd.DataFrame([{k: v for k, v in row(vix_close=12.0).items() if k != "vix_close"}],
                          index=pd.bdate_range("2024-01-02", periods=1))
    out = compute_overlay_signals("conservative", no_vix, {"initial_allocation": 0.5})
    assert out["target_allocation"].iloc[0] == pytest.approx(0.9)  # VIX factor contributes 0
    assert out["impacts"].iloc[0]["vix"] == 0.0
    assert out["signals"].iloc[0]["vix_band"] is None
    assert out["signals"].iloc[0]["source"] == "model"
    nan_vix = frame([row(vix_close=float("nan"))])
    held = compute_overlay_signals("conservative", nan_vix, {"require_vix": True, "initial_allocation": 0.5})
    assert held["target_allocation"].iloc[0] == 0.5
    assert held["signals"].iloc[0]["missing_features"] == ["vix_close"]
    with pytest.raises(ValueError, match="'vix_close'"):
        compute_overlay_signals("conservative", no_vix, {"require_vix": True})


# ------------------------------------------------------------------------------------------------
# trend_regime_v2 model
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "features, regime, target, impacts",
    [
        (bull(0.10), "bull", 1.0, {"regime": 0.0, "volatility_targeting": 0.0, "step": 0.0, "cap_floor": 0.0}),
        # bull at 30% vol: 1.0 * 0.15/0.30 = 0.5
        (bull(0.30), "bull", 0.5, {"regime": 0.0, "volatility_targeting": -0.5, "step": 0.0, "cap_floor": 0.0}),
        # close below sma_200 but sma_50 above: neutral 0.6 at 15% vol
        (neutral(0.15), "neutral", 0.6, {"regime": -0.4, "volatility_targeting": 0.0, "step": 0.0,
                                         "cap_floor": 0.0}),
        # bear at 20% vol: 0.3 * 0.75 = 0.225 -> step 0.05 rounds half up -> 0.25
        (bear(0.20), "bear", 0.25, {"regime": -0.7, "volatility_targeting": -0.075, "step": 0.025,
                                    "cap_floor": 0.0}),
        # bear at 90% vol: 0.3 / 6 = 0.05 -> floor 0.10
        (bear(0.90), "bear", 0.1, {"regime": -0.7, "volatility_targeting": -0.25, "step": 0.0,
                                   "cap_floor": 0.05}),
        # zero vol -> vol scale capped at 1
        (bull(0.0), "bull", 1.0, {"regime": 0.0, "volatility_targeting": 0.0, "step": 0.0, "cap_floor": 0.0}),
    ],
)
def test_trend_regime_targets_on_hand_made_rows(features, regime, target, impacts):
    got, got_impacts, signals = get_model("trend_regime_v2").target(pd.Series(features))
    assert got == pytest.approx(target, abs=1e-12)
    assert signals["regime"] == regime
    assert got_impacts.keys() == impacts.keys()
    for key, value in impacts.items():
        assert got_impacts[key] == pytest.approx(value, abs=1e-12), key
    assert signals["base_allocation"] + sum(got_impacts.values()) == pytest.approx(got, abs=1e-9)


def test_confirmation_period_two_day_whipsaw_does_not_switch_three_days_do():
    rows = [bull()] * 5 + [bear()] * 2 + [bull()] * 3 + [bear()] * 3 + [bull()]
    out = compute_overlay_signals("trend_regime_v2", frame(rows), {"rebalance_threshold": 0.0})
    regimes = [s["regime"] for s in out["signals"]]
    assert regimes == ["bull"] * 5 + ["bull"] * 2 + ["bull"] * 3 + ["bull", "bull", "bear"] + ["bear"]
    assert out["target_allocation"].tolist() == [1.0] * 12 + [0.3, 0.3]
    pending = [(s["pending_regime"], s["pending_days"]) for s in out["signals"]]
    assert pending[5:7] == [("bear", 1), ("bear", 2)]
    assert pending[10:13] == [("bear", 1), ("bear", 2), (None, 0)]
    assert pending[13] == ("bull", 1)
    assert out["trade_required"].tolist() == [False] * 12 + [True, False]


def test_confirmation_days_is_configurable():
    rows = [bull()] * 3 + [bear()] + [bull()] * 2
    out = compute_overlay_signals("trend_regime_v2", frame(rows), {"confirmation_days": 1})
    assert [s["regime"] for s in out["signals"]] == ["bull"] * 3 + ["bear"] + ["bull"] * 2
    out = compute_overlay_signals("trend_regime_v2", frame([bull()] * 3 + [bear()] * 4),
                                  {"confirmation_days": 4})
    assert [s["regime"] for s in out["signals"]] == ["bull"] * 6 + ["bear"]


def test_confirm_regimes_alternating_candidates_never_confirm():
    # bull, then neutral/bear alternate: each candidate streak restarts at 1
    raw = np.array([2, 1, 0, 1, 0, 1, -1, 1, 1])
    regime, pending, days = confirm_regimes(raw, 3)
    assert regime.tolist() == [2, 2, 2, 2, 2, 2, 2, 2, 1]  # the missing day (-1) neither counts nor breaks
    assert days.tolist() == [0, 1, 1, 1, 1, 1, 1, 2, 0]
    assert pending.tolist() == [-1, 1, 0, 1, 0, 1, 1, 1, -1]


# ------------------------------------------------------------------------------------------------
# the decision loop: threshold, trade flags, missing features, allocation_history
# ------------------------------------------------------------------------------------------------


def test_threshold_small_change_held_big_change_traded():
    # bull regime throughout; vol moves the target:
    # 0.15 -> 1.0 | 0.16 -> 0.9375 -> 0.95 (held, |diff| 0.05 < 0.1) | 0.25 -> 0.6 (traded)
    # 0.22 -> 0.6818 -> 0.7 (diff exactly 0.1 -> traded) | 0.2 -> 0.75 (held) | 0.3 -> 0.5 (traded)
    vols = [0.15, 0.16, 0.25, 0.22, 0.20, 0.30]
    out = compute_overlay_signals("trend_regime_v2", frame([bull(v) for v in vols]))
    assert out["target_allocation"].tolist() == pytest.approx([1.0, 0.95, 0.6, 0.7, 0.75, 0.5])
    assert out["actual_allocation"].tolist() == pytest.approx([1.0, 1.0, 0.6, 0.7, 0.7, 0.5])
    assert out["trade_required"].tolist() == [False, False, True, True, False, True]
    assert out["trade_required"].dtype == bool
    # threshold 0: always follow the target, flags whenever it moves
    out0 = compute_overlay_signals("trend_regime_v2", frame([bull(v) for v in vols]), {"rebalance_threshold": 0.0})
    assert out0["actual_allocation"].tolist() == pytest.approx([1.0, 0.95, 0.6, 0.7, 0.75, 0.5])
    assert out0["trade_required"].tolist() == [False, True, True, True, True, True]


def test_first_day_compares_with_initial_allocation():
    out = compute_overlay_signals("conservative", frame([row()]), {"initial_allocation": 0.85})
    assert out["target_allocation"].iloc[0] == pytest.approx(0.9)
    assert out["actual_allocation"].iloc[0] == pytest.approx(0.85)  # |0.9 - 0.85| < 0.1
    assert not out["trade_required"].iloc[0]
    out = compute_overlay_signals("conservative", frame([row()]), {"initial_allocation": 0.5})
    assert out["actual_allocation"].iloc[0] == pytest.approx(0.9)
    assert out["trade_required"].iloc[0]


def test_missing_features_hold_previous_actual_allocation():
    rows = [
        bull(0.10) | {"sma_200": float("nan"), "sma_50": float("nan")},  # warm-up: held at initial
        bull(0.30),                                                       # 0.5 traded
        bull(0.10) | {"realized_vol_21": float("nan")},                   # held at 0.5
        bull(0.10),                                                       # 1.0 traded
    ]
    out = compute_overlay_signals("trend_regime_v2", frame(rows), {"initial_allocation": 0.8})
    assert out["target_allocation"].tolist() == pytest.approx([0.8, 0.5, 0.5, 1.0])
    assert out["actual_allocation"].tolist() == pytest.approx([0.8, 0.5, 0.5, 1.0])
    assert out["trade_required"].tolist() == [False, True, False, True]
    sig = out["signals"].tolist()
    assert sig[0]["held"] is True and sig[0]["source"] == "held"
    assert sig[0]["missing_features"] == ["sma_50", "sma_200"]
    assert sig[2]["held"] is True and sig[2]["missing_features"] == ["realized_vol_21"]
    assert sig[2]["realized_vol_21"] is None and sig[2]["regime"] == "bull"
    assert sig[1]["held"] is False and sig[1]["source"] == "model" and sig[1]["missing_features"] == []
    assert out["impacts"].iloc[2] == {"held": pytest.approx(-0.5)}
    assert_identity(out)


def test_conservative_missing_rsi_is_held():
    rows = [row(), row(rsi_14=float("nan"), vix_close=40.0), row(vix_close=40.0)]
    out = compute_overlay_signals("conservative", frame(rows))
    # 0.9 | held 0.9 | 0.9 - 0.25 = 0.65 traded
    assert out["target_allocation"].tolist() == pytest.approx([0.9, 0.9, 0.65])
    assert out["actual_allocation"].tolist() == pytest.approx([0.9, 0.9, 0.65])
    assert out["trade_required"].tolist() == [True, False, True]
    assert out["signals"].iloc[1]["missing_features"] == ["rsi_14"]


def test_allocation_history_overrides_target_and_threshold_still_applies():
    days = pd.bdate_range("2024-01-02", periods=5)
    f = frame([bull(0.10)] * 5)  # model target 1.0 every day
    history = pd.Series([0.95, 0.4, 0.35, 0.2], index=[days[1], days[2], days[3], pd.Timestamp("2030-01-01")])
    out = compute_overlay_signals("trend_regime_v2", f, allocation_history=history)
    assert out["target_allocation"].tolist() == pytest.approx([1.0, 0.95, 0.4, 0.35, 1.0])
    assert out["actual_allocation"].tolist() == pytest.approx([1.0, 1.0, 0.4, 0.4, 1.0])
    assert out["trade_required"].tolist() == [False, False, True, False, True]
    sig = out["signals"].tolist()
    assert [s["source"] for s in sig] == ["model", "allocation_history", "allocation_history",
                                          "allocation_history", "model"]
    assert sig[2]["model_target"] == 1.0
    assert out["impacts"].iloc[2] == {"allocation_history": pytest.approx(-0.6)}
    assert_identity(out)


def test_allocation_history_applies_on_missing_feature_days():
    f = frame([bull() | {"sma_200": float("nan")}] * 2)
    history = pd.Series([0.3], index=[f.index[1]])
    out = compute_overlay_signals("trend_regime_v2", f, allocation_history=history)
    assert out["actual_allocation"].tolist() == pytest.approx([1.0, 0.3])
    assert out["signals"].iloc[1]["source"] == "allocation_history"
    assert out["signals"].iloc[1]["model_target"] is None


@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan")])
def test_allocation_history_out_of_range_names_the_date(bad):
    f = frame([bull()] * 3)
    history = pd.Series([0.5, bad], index=[f.index[0], f.index[2]])
    with pytest.raises(ValueError, match="2024-01-04"):
        compute_overlay_signals("conservative", f, allocation_history=history)


def test_allocation_history_conflicting_duplicates_rejected():
    f = frame([bull()] * 2)
    history = pd.Series([0.5, 0.6], index=[f.index[1], f.index[1]])
    with pytest.raises(ValueError, match="2024-01-03"):
        compute_overlay_signals("conservative", f, allocation_history=history)


def test_features_index_must_be_sorted_and_unique():
    f = frame([bull(), bear()])
    with pytest.raises(ValueError, match="sorted"):
        compute_overlay_signals("conservative", f.iloc[::-1])
    with pytest.raises(ValueError, match="duplicate"):
        compute_overlay_signals("conservative", pd.concat([f, f.iloc[[1]]]))
    with pytest.raises(ValueError, match="'sma_50'"):
        compute_overlay_signals("trend_regime_v2", f.drop(columns=["sma_50"]))


def test_empty_features_give_empty_frame():
    out = compute_overlay_signals("conservative", frame([bull()]).iloc[:0])
    assert list(out.columns) == ["target_allocation", "actual_allocation", "trade_required", "signals", "impacts"]
    assert len(out) == 0


# ------------------------------------------------------------------------------------------------
# whole-series properties: identity, JSON, no look-ahead
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["conservative", "trend_regime_v2"])
def test_output_shape_identity_and_json(model):
    f = market_features()
    history = pd.Series([0.33, 0.77], index=[f.index[300], f.index[450]])
    out = compute_overlay_signals(model, f, allocation_history=history)
    assert list(out.columns) == ["target_allocation", "actual_allocation", "trade_required", "signals", "impacts"]
    assert out.index.equals(f.index) and out.index.name == "trade_date"
    assert out["target_allocation"].between(0, 1).all() and out["actual_allocation"].between(0, 1).all()
    sources = {s["source"] for s in out["signals"]}
    assert sources == {"held", "model", "allocation_history"}
    assert_identity(out)
    # the threshold rule, re-derived independently
    prev = get_model(model).default_config["initial_allocation"]
    thr = get_model(model).default_config["rebalance_threshold"]
    for tgt, act, trade in out[["target_allocation", "actual_allocation", "trade_required"]].itertuples(index=False):
        expected = tgt if abs(tgt - prev) >= thr - 1e-9 else prev
        assert act == expected
        assert trade == (act != prev)
        prev = act
    assert out["trade_required"].sum() > 3
    for sig, imp in zip(out["signals"], out["impacts"]):
        json.dumps(sig, allow_nan=False)
        json.dumps(imp, allow_nan=False)


@pytest.mark.parametrize("model", ["conservative", "trend_regime_v2"])
def test_no_look_ahead(model):
    f = market_features(n=500, seed=11)
    history = pd.Series([0.4, 0.6], index=[f.index[260], f.index[400]])
    cut = f.index[350]
    base = compute_overlay_signals(model, f, allocation_history=history)

    rng = np.random.default_rng(3)
    g = f.copy()
    after = g.index > cut
    g.loc[after] = g.loc[after] * rng.uniform(0.3, 3.0, size=(after.sum(), g.shape[1]))
    g.loc[g.index[after][::7], "sma_200"] = np.nan
    g = pd.concat([g, frame([bear(0.9)] * 5, start="2030-01-01")])  # extra future days
    history2 = pd.concat([history.iloc[:1], pd.Series([0.0, 1.0], index=[f.index[351], f.index[420]])])
    pert = compute_overlay_signals(model, g, allocation_history=history2)

    upto = base.index <= cut
    pd.testing.assert_frame_equal(base.loc[upto], pert.loc[base.index[upto]])
    # sanity: the perturbation did change later rows
    assert not base.loc[~upto, "signals"].equals(pert.loc[base.index[~upto], "signals"])


@pytest.mark.parametrize("model", ["conservative", "trend_regime_v2"])
@pytest.mark.parametrize("since_row", [0, 1, 449, 599])
def test_since_returns_the_tail_of_the_full_run(model, since_row):
    """`since` (what a nightly run asks for) gives exactly the full run's rows from that date, held and
    allocation-history rows included; a date between sessions starts at the next row."""
    f = market_features()
    history = pd.Series([0.33, 0.77], index=[f.index[300], f.index[450]])
    full = compute_overlay_signals(model, f, allocation_history=history)
    since = f.index[since_row]
    tail = compute_overlay_signals(model, f, allocation_history=history, since=since)
    pd.testing.assert_frame_equal(tail, full.loc[since:])
    between = compute_overlay_signals(model, f, allocation_history=history,
                                      since=since - pd.Timedelta(hours=12))
    pd.testing.assert_frame_equal(between, full.loc[since:])
    after = compute_overlay_signals(model, f, since=f.index[-1] + pd.Timedelta(days=1))
    assert after.empty and list(after.columns) == list(full.columns)


def test_row_dicts_from_a_start_row():
    columns = {"x": np.array([0.1, np.nan, 0.3, 0.4]), "label": "same", "n": np.array([1, 2, 3, 4])}
    assert _rows(columns, 4, 2) == [{"x": 0.3, "label": "same", "n": 3}, {"x": 0.4, "label": "same", "n": 4}]
    assert _rows(columns, 4) == _rows(columns, 4, 0) and _rows(columns, 4)[1]["x"] is None
    assert _rows({}, 4, 1) == [{}, {}, {}]


def test_frame_target_matches_signals_loop_model_rows():
    f = market_features(n=400, seed=5)
    tgt, impacts, signals = get_model("trend_regime_v2").target(f)
    out = compute_overlay_signals("trend_regime_v2", f)
    model_rows = np.array([s["source"] == "model" for s in out["signals"]])
    assert np.allclose(tgt.to_numpy()[model_rows], out["target_allocation"].to_numpy()[model_rows])
    assert tgt.isna().to_numpy().tolist() == (~model_rows).tolist()
    assert list(impacts.columns) == ["regime", "volatility_targeting", "step", "cap_floor"]
    assert signals.iloc[-1]["regime"] == out["signals"].iloc[-1]["regime"]


# ------------------------------------------------------------------------------------------------
# variant NAV math
# ------------------------------------------------------------------------------------------------


def test_variant_returns_formula_and_cost():
    r = np.array([0.0, 0.01, -0.02, 0.03])
    eq = np.array([1.0, 0.5, 0.5, 0.2])
    rf_d = 0.0001
    got = variant_returns(r, eq, rf_d)
    assert got.tolist() == pytest.approx([0.0, 0.5 * 0.01 + 0.5 * rf_d, -0.01 + 0.5 * rf_d, 0.2 * 0.03 + 0.8 * rf_d])
    got_cost = variant_returns(r, eq, rf_d, cost_bps=10)
    assert (got - got_cost).tolist() == pytest.approx([0.0, 0.0005, 0.0, 0.0003])


def test_variant_nav_recursion_matches_independent_loop():
    rng = np.random.default_rng(1)
    n = 300
    r = rng.normal(0.0004, 0.012, n)
    eq = np.round(rng.uniform(0.2, 1.0, n) * 20) / 20
    eq[50:80] = eq[50]
    rf_d = (1 + 0.03) ** (1 / 252) - 1
    nav, rets = variant_nav(r, eq, rf_d, initial_nav=250.0, cost_bps=5.0)
    loop_nav = [250.0]
    loop_ret = [0.0]
    for t in range(1, n):
        day = eq[t] * r[t] + (1 - eq[t]) * rf_d - 5.0 / 1e4 * abs(eq[t] - eq[t - 1])
        loop_ret.append(day)
        loop_nav.append(loop_nav[-1] * (1 + day))
    assert rets.tolist() == pytest.approx(loop_ret, rel=1e-12, abs=1e-15)
    assert nav.tolist() == pytest.approx(loop_nav, rel=1e-12)
    # all-in with no cost reproduces the raw compounding exactly
    nav_raw, _ = variant_nav(r, np.ones(n), rf_d)
    assert nav_raw[-1] == pytest.approx(100.0 * np.prod(1 + r[1:]), rel=1e-12)


def test_variant_returns_rejects_bad_allocations():
    with pytest.raises(ValueError, match=r"equity_allocation\[1\]"):
        variant_returns(np.zeros(2), np.array([0.5, 1.2]), 0.0)
    with pytest.raises(ValueError, match="equal length"):
        variant_returns(np.zeros(3), np.ones(2), 0.0)


def test_equity_allocation_for_days_lags_by_one_trading_day():
    days = pd.bdate_range("2024-01-01", periods=6)  # Mon..Mon
    actual = pd.Series([0.9, 0.8, 0.7, 0.6, 0.5, 0.4], index=days)
    eq = equity_allocation_for_days(actual, days, start_date="2024-01-03")
    assert eq.index.tolist() == list(days[2:])
    # start row: the allocation decided at start_date itself; later rows: previous day's actual
    assert eq.tolist() == [0.7, 0.7, 0.6, 0.5]
    assert eq.name == "equity_allocation"
    # start_date not a trading day: the first trading day after it is the start row
    eq2 = equity_allocation_for_days(actual, list(days), start_date="2024-01-06")
    assert eq2.tolist() == [0.4]
    with pytest.raises(ValueError, match="2024-01-04"):
        equity_allocation_for_days(actual.drop(days[3]), days, start_date="2024-01-03")


def test_end_to_end_variant_from_overlay_signals():
    f = frame([bull(0.10)] * 3 + [bull(0.30)] * 3)  # actual 1.0,1.0,1.0,0.5,0.5,0.5
    out = compute_overlay_signals("trend_regime_v2", f)
    eq = equity_allocation_for_days(out["actual_allocation"], f.index, f.index[0])
    assert eq.tolist() == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5]  # the cut takes effect the day after the decision
    raw = np.array([0.0, 0.01, 0.01, -0.05, -0.04, 0.02])
    nav, rets = variant_nav(raw, eq.to_numpy(), 0.0)
    expected = 100 * 1.01 * 1.01 * 0.95 * 0.98 * 1.01
    assert nav[-1] == pytest.approx(expected, rel=1e-12)
    assert np.isfinite(nav).all() and rets[0] == 0.0
