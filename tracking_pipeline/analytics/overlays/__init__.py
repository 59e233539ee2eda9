"""Overlay models: pure (Dagster-free) daily equity-allocation decisions and variant NAV math.

Entry points:

* :func:`compute_overlay_signals` - one model's daily target/actual allocation, trade flags,
  signals and impacts over a market-features frame (no look-ahead).
* :func:`get_model`, :func:`available_models`, :data:`REGISTRY`, :func:`register`.
* :func:`variant_returns`, :func:`variant_nav`, :func:`equity_allocation_for_days` - turning a
  model's actual allocations into an overlay variant's daily returns and NAV.

See docs/overlays.md.
"""

from .base import OUTPUT_COLUMNS, ModelEvaluation, OverlayModel
from .conservative import ConservativeModel
from .registry import REGISTRY, available_models, compute_overlay_signals, get_model, register
from .trend_regime_v2 import TrendRegimeV2Model
from .variant_nav import equity_allocation_for_days, variant_nav, variant_returns

__all__ = [
    "OUTPUT_COLUMNS",
    "ModelEvaluation",
    "OverlayModel",
    "ConservativeModel",
    "TrendRegimeV2Model",
    "REGISTRY",
    "available_models",
    "compute_overlay_signals",
    "get_model",
    "register",
    "equity_allocation_for_days",
    "variant_nav",
    "variant_returns",
]
