"""``trend_regime_v2``: a confirmed bull/neutral/bear trend regime with volatility targeting.

Raw regime of a day (vectorised):

* ``bull``: ``close > sma_200`` and ``sma_50 > sma_200``
* ``bear``: ``close < sma_200`` and ``sma_50 < sma_200``
* ``neutral``: anything else

Confirmation (the only state, a forward loop over the days): the first day with a raw regime
adopts it at once; afterwards a different raw regime replaces the current one only when it has
been observed on ``confirmation_days`` consecutive days (default 3), so a 1- or 2-day whipsaw
does not switch.  A day without the regime inputs (close, sma_50, sma_200) leaves the state as it
was (it neither counts nor breaks a streak).

Allocation::

    regime_allocation = {bull: 1.0, neutral: 0.6, bear: 0.3}[regime]
    vol_scale         = min(vol_scale_cap, target_vol / realized_vol_21)      (cap when vol == 0)
    target            = clip(step(regime_allocation * vol_scale), floor, cap)

Impacts (base = ``bull_allocation``): ``regime = regime_allocation - base``,
``volatility_targeting = regime_allocation * (vol_scale - 1)``, ``step``, ``cap_floor``.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from .base import ModelEvaluation, OverlayModel, feature_array, finish_target, labels, missing_per_row

__all__ = ["TrendRegimeV2Model", "confirm_regimes", "BEAR", "NEUTRAL", "BULL", "REGIME_NAMES"]

BEAR, NEUTRAL, BULL = 0, 1, 2
NONE = -1
REGIME_NAMES = ["bear", "neutral", "bull"]


def confirm_regimes(raw: np.ndarray, confirmation_days: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply the confirmation period to a raw regime code series (``-1`` = unavailable).

    Returns ``(regime, pending, pending_days)`` per day: the confirmed regime (``-1`` until the
    first available day), the candidate regime waiting for confirmation (``-1`` if none) and how
    many consecutive days it has been observed.  Strictly causal: day ``i`` uses ``raw[:i+1]``.
    """
    raw = np.asarray(raw, dtype=np.int64)
    n = len(raw)
    regime_out = np.full(n, NONE, dtype=np.int64)
    pending_out = np.full(n, NONE, dtype=np.int64)
    count_out = np.zeros(n, dtype=np.int64)
    regime, pending, count = NONE, NONE, 0
    need = max(int(confirmation_days), 1)
    for i, r in enumerate(raw.tolist()):
        if r != NONE:
            if regime == NONE or r == regime:
                regime, pending, count = r, NONE, 0
            else:
                if r == pending:
                    count += 1
                else:
                    pending, count = r, 1
                if count >= need:
                    regime, pending, count = r, NONE, 0
        regime_out[i] = regime
        pending_out[i] = pending
        count_out[i] = count
    return regime_out, pending_out, count_out


class TrendRegimeV2Model(OverlayModel):
    name = "trend_regime_v2"
    title = "Trend Regime V2 (confirmed regime x volatility targeting)"
    required_features = ("close", "sma_50", "sma_200", "realized_vol_21")
    default_config: dict[str, Any] = {
        # shared
        "rebalance_threshold": 0.10,
        "cost_bps": 0.0,
        "initial_allocation": 1.0,
        "floor": 0.10,
        "cap": 1.0,
        "allocation_step": 0.05,
        # model
        "bull_allocation": 1.0,
        "neutral_allocation": 0.6,
        "bear_allocation": 0.3,
        "confirmation_days": 3,
        "target_vol": 0.15,
        "vol_scale_cap": 1.0,
    }

    def validate_config(self, config: Mapping[str, Any]) -> None:
        super().validate_config(config)

        def fail(key: str, what: str) -> None:
            raise ValueError(f"config key '{key}' of overlay '{self.name}' {what}, got {config[key]!r}")

        for key in ("bull_allocation", "neutral_allocation", "bear_allocation"):
            if not 0.0 <= config[key] <= 1.0:
                fail(key, "must be in [0, 1]")
        if config["confirmation_days"] < 1:
            fail("confirmation_days", "must be >= 1")
        if config["target_vol"] <= 0:
            fail("target_vol", "must be > 0")
        if config["vol_scale_cap"] <= 0:
            fail("vol_scale_cap", "must be > 0")

    def evaluate(self, features: pd.DataFrame, config: Mapping[str, Any]) -> ModelEvaluation:
        c = config
        n = len(features)
        close = feature_array(features, "close")
        sma_50 = feature_array(features, "sma_50")
        sma_200 = feature_array(features, "sma_200")
        vol = feature_array(features, "realized_vol_21")
        any_missing, missing = missing_per_row(
            {"close": close, "sma_50": sma_50, "sma_200": sma_200, "realized_vol_21": vol}, n
        )

        regime_ok = ~(np.isnan(close) | np.isnan(sma_50) | np.isnan(sma_200))
        with np.errstate(invalid="ignore"):
            bull = (close > sma_200) & (sma_50 > sma_200)
            bear = (close < sma_200) & (sma_50 < sma_200)
        raw = np.where(bull, BULL, np.where(bear, BEAR, NEUTRAL))
        raw = np.where(regime_ok, raw, NONE)
        regime, pending, pending_days = confirm_regimes(raw, int(c["confirmation_days"]))

        alloc_table = np.array([c["bear_allocation"], c["neutral_allocation"], c["bull_allocation"]])
        has_regime = regime != NONE
        regime_alloc = np.where(has_regime, alloc_table[np.clip(regime, 0, 2)], np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(vol > 0, c["target_vol"] / vol, np.inf)
        vol_scale = np.where(np.isnan(vol), np.nan, np.minimum(float(c["vol_scale_cap"]), ratio))

        base = float(c["bull_allocation"])
        scaled = regime_alloc * vol_scale
        unclipped = np.where(any_missing, np.nan, scaled)
        target, step_imp, cap_floor_imp = finish_target(unclipped, c)

        regime_imp = np.where(any_missing, np.nan, regime_alloc - base)
        vol_imp = np.where(any_missing, np.nan, scaled - regime_alloc)
        impacts = {
            "regime": regime_imp,
            "volatility_targeting": vol_imp,
            "step": step_imp,
            "cap_floor": cap_floor_imp,
        }
        signals = {
            "close": close,
            "sma_50": sma_50,
            "sma_200": sma_200,
            "realized_vol_21": vol,
            "raw_regime": labels(raw, REGIME_NAMES, raw != NONE),
            "regime": labels(regime, REGIME_NAMES, has_regime),
            "pending_regime": labels(pending, REGIME_NAMES, pending != NONE),
            "pending_days": pending_days,
            "confirmation_days": int(c["confirmation_days"]),
            "regime_allocation": regime_alloc,
            "vol_scale": vol_scale,
            "target_vol": float(c["target_vol"]),
            "base_allocation": base,
            "target_unclipped": unclipped,
        }
        return ModelEvaluation(target=target, base=base, impacts=impacts, signals=signals, missing=missing)
