"""``conservative``: a defensive multi-factor overlay.

``target = clip(step(base + trend + vix + rsi + momentum + volatility), floor, cap)``, every factor
a band lookup on one market feature of the same day (vectorised, stateless):

=============  ==========================================  ===========================
factor         rule (defaults)                             impact (defaults)
=============  ==========================================  ===========================
trend          close >= sma_200 / close < sma_200          +0.10 / -0.20
vix            < 15 / [15, 20) / [20, 30) / >= 30          +0.10 / 0 / -0.10 / -0.25
rsi            rsi_14 > 70 / < 30 / otherwise              -0.05 / +0.05 / 0
momentum       m63 >= 0.05 / [0, 0.05) / (-0.10, 0) /      +0.05 / 0 / -0.05 / -0.15
               <= -0.10
volatility     rv21 < 0.12 / [0.12, 0.20) / [0.20, 0.30)   +0.05 / 0 / -0.10 / -0.20
               / >= 0.30
=============  ==========================================  ===========================

base 0.80, step 0.05, floor 0.20, cap 1.00.  VIX is optional: when ``vix_close`` is absent or NaN
the VIX factor contributes 0 (``signals.vix_band = None``) unless ``require_vix`` is true, in
which case a NaN VIX makes the day a missing-feature day (allocation held).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from .base import ModelEvaluation, OverlayModel, feature_array, finish_target, labels, missing_per_row

__all__ = ["ConservativeModel"]

BANDS = ["low", "normal", "elevated", "high"]


class ConservativeModel(OverlayModel):
    name = "conservative"
    title = "Conservative multi-factor model"
    required_features = ("close", "sma_200", "rsi_14", "momentum_63", "realized_vol_21")
    default_config: dict[str, Any] = {
        # shared
        "rebalance_threshold": 0.10,
        "cost_bps": 0.0,
        "initial_allocation": 1.0,
        "floor": 0.20,
        "cap": 1.0,
        "allocation_step": 0.05,
        # model
        "base_allocation": 0.80,
        "trend_above_impact": 0.10,
        "trend_below_impact": -0.20,
        "vix_low": 15.0,
        "vix_elevated": 20.0,
        "vix_high": 30.0,
        "vix_low_impact": 0.10,
        "vix_elevated_impact": -0.10,
        "vix_high_impact": -0.25,
        "require_vix": False,
        "rsi_overbought": 70.0,
        "rsi_oversold": 30.0,
        "rsi_overbought_impact": -0.05,
        "rsi_oversold_impact": 0.05,
        "momentum_positive": 0.05,
        "momentum_strong_negative": -0.10,
        "momentum_positive_impact": 0.05,
        "momentum_negative_impact": -0.05,
        "momentum_strong_negative_impact": -0.15,
        "vol_low": 0.12,
        "vol_elevated": 0.20,
        "vol_high": 0.30,
        "vol_low_impact": 0.05,
        "vol_elevated_impact": -0.10,
        "vol_high_impact": -0.20,
    }

    def validate_config(self, config: Mapping[str, Any]) -> None:
        super().validate_config(config)

        def fail(key: str, what: str) -> None:
            raise ValueError(f"config key '{key}' of overlay '{self.name}' {what}, got {config[key]!r}")

        if not 0.0 <= config["base_allocation"] <= 1.0:
            fail("base_allocation", "must be in [0, 1]")
        for prefix in ("vix", "vol"):
            if not config[f"{prefix}_low"] <= config[f"{prefix}_elevated"] <= config[f"{prefix}_high"]:
                fail(f"{prefix}_elevated", f"must satisfy {prefix}_low <= {prefix}_elevated <= {prefix}_high")
        if config["rsi_oversold"] > config["rsi_overbought"]:
            fail("rsi_oversold", "must be <= rsi_overbought")
        if config["momentum_strong_negative"] > 0:
            fail("momentum_strong_negative", "must be <= 0")
        if config["momentum_positive"] < 0:
            fail("momentum_positive", "must be >= 0")

    def required_columns(self, config: Mapping[str, Any]) -> tuple[str, ...]:
        return self.required_features + (("vix_close",) if config["require_vix"] else ())

    def evaluate(self, features: pd.DataFrame, config: Mapping[str, Any]) -> ModelEvaluation:
        c = config
        n = len(features)
        close = feature_array(features, "close")
        sma_200 = feature_array(features, "sma_200")
        rsi = feature_array(features, "rsi_14")
        mom = feature_array(features, "momentum_63")
        vol = feature_array(features, "realized_vol_21")
        vix = feature_array(features, "vix_close")

        required = {"close": close, "sma_200": sma_200, "rsi_14": rsi, "momentum_63": mom,
                    "realized_vol_21": vol}
        if c["require_vix"]:
            required["vix_close"] = vix
        any_missing, missing = missing_per_row(required, n)

        with np.errstate(invalid="ignore"):
            # trend: close vs its 200-day average
            trend_ok = ~(np.isnan(close) | np.isnan(sma_200))
            up = close >= sma_200
            trend = np.where(up, c["trend_above_impact"], c["trend_below_impact"])
            trend[~trend_ok] = np.nan

            # VIX level bands (optional factor: 0 when unavailable)
            vix_ok = ~np.isnan(vix)
            vix_code = np.digitize(vix, [c["vix_low"], c["vix_elevated"], c["vix_high"]])
            vix_table = np.array([c["vix_low_impact"], 0.0, c["vix_elevated_impact"], c["vix_high_impact"]])
            vix_imp = np.where(vix_ok, vix_table[np.clip(vix_code, 0, 3)], 0.0)

            # RSI extremes
            rsi_ok = ~np.isnan(rsi)
            rsi_code = np.select([rsi > c["rsi_overbought"], rsi < c["rsi_oversold"]], [1, 2], 0)
            rsi_table = np.array([0.0, c["rsi_overbought_impact"], c["rsi_oversold_impact"]])
            rsi_imp = np.where(rsi_ok, rsi_table[rsi_code], np.nan)

            # 63-day momentum sign and size
            mom_ok = ~np.isnan(mom)
            mom_code = np.select(
                [mom <= c["momentum_strong_negative"], mom < 0.0, mom >= c["momentum_positive"]], [0, 1, 3], 2
            )
            mom_table = np.array([c["momentum_strong_negative_impact"], c["momentum_negative_impact"], 0.0,
                                  c["momentum_positive_impact"]])
            mom_imp = np.where(mom_ok, mom_table[mom_code], np.nan)

            # 21-day realized volatility bands
            vol_ok = ~np.isnan(vol)
            vol_code = np.digitize(vol, [c["vol_low"], c["vol_elevated"], c["vol_high"]])
            vol_table = np.array([c["vol_low_impact"], 0.0, c["vol_elevated_impact"], c["vol_high_impact"]])
            vol_imp = np.where(vol_ok, vol_table[np.clip(vol_code, 0, 3)], np.nan)

        base = float(c["base_allocation"])
        unclipped = base + trend + vix_imp + rsi_imp + mom_imp + vol_imp
        unclipped[any_missing] = np.nan
        target, step_imp, cap_floor_imp = finish_target(unclipped, c)

        impacts = {
            "trend": trend,
            "vix": vix_imp,
            "rsi": rsi_imp,
            "momentum": mom_imp,
            "volatility": vol_imp,
            "step": step_imp,
            "cap_floor": cap_floor_imp,
        }
        signals = {
            "close": close,
            "sma_200": sma_200,
            "rsi_14": rsi,
            "momentum_63": mom,
            "realized_vol_21": vol,
            "vix_close": vix,
            "regime": labels(np.where(up, 0, 1), ["uptrend", "downtrend"], trend_ok),
            "vix_band": labels(vix_code, BANDS, vix_ok),
            "rsi_state": labels(rsi_code, ["neutral", "overbought", "oversold"], rsi_ok),
            "momentum_state": labels(mom_code, ["strong_negative", "negative", "flat", "positive"], mom_ok),
            "volatility_band": labels(vol_code, BANDS, vol_ok),
            "base_allocation": base,
            "target_unclipped": unclipped,
        }
        return ModelEvaluation(target=target, base=base, impacts=impacts, signals=signals, missing=missing)
