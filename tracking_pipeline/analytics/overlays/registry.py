"""The overlay registry: model name -> model instance, and the main entry point.

Adding a model = one module with an :class:`~.base.OverlayModel` subclass + one
``register(MyModel())`` line below.  The registration order is the order of
:func:`available_models` (and of a portfolio's default variants).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import pandas as pd

from .base import OverlayModel
from .conservative import ConservativeModel
from .trend_regime_v2 import TrendRegimeV2Model

__all__ = ["REGISTRY", "register", "get_model", "available_models", "compute_overlay_signals"]

#: name -> model instance, in registration order.
REGISTRY: dict[str, OverlayModel] = {}

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,29}$")  # also a variant name (VARCHAR(30)) and a lake folder
_RESERVED = {"raw", "benchmark"}  # variant names with another meaning


def register(model: OverlayModel) -> OverlayModel:
    """Add ``model`` under ``model.name`` (lower-case identifier, <= 30 chars, not raw/benchmark)."""
    name = model.name
    if not isinstance(name, str) or not _NAME.match(name) or name in _RESERVED:
        raise ValueError(f"Invalid overlay name {name!r}: use a lower-case identifier of at most 30 "
                         f"characters other than {', '.join(sorted(_RESERVED))}")
    if name in REGISTRY:
        raise ValueError(f"Overlay '{name}' is already registered")
    missing = [key for key in ("rebalance_threshold", "cost_bps", "initial_allocation", "floor", "cap",
                               "allocation_step") if key not in model.default_config]
    if missing:
        raise ValueError(f"Overlay '{name}' default_config lacks {', '.join(missing)}")
    model.resolve_config(None)  # the defaults themselves must validate
    REGISTRY[name] = model
    return model


register(ConservativeModel())
register(TrendRegimeV2Model())


def available_models() -> list[str]:
    """Registered overlay names, in registration order."""
    return list(REGISTRY)


def get_model(name: str) -> OverlayModel:
    """The registered model ``name``; ``ValueError`` listing the available ones otherwise."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown overlay '{name}'. Available: {', '.join(available_models())}") from None


def compute_overlay_signals(
    model_name: str,
    features: pd.DataFrame,
    config_overrides: Mapping[str, Any] | None = None,
    allocation_history: pd.Series | None = None,
    since: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Daily decisions of overlay ``model_name`` over ``features`` (one row per trading day).

    ``features``: indexed by trade date (unique, increasing), float market-feature columns
    (NaN where not enough history).  ``config_overrides``: e.g. ``models/<model>/config.json``
    (unknown keys -> ``ValueError``).  ``allocation_history``: date -> target in [0, 1]
    (``models/<model>/allocation_history.csv``) replacing the model's target on those dates.

    Returns a DataFrame indexed by ``trade_date`` (DatetimeIndex) with columns
    ``target_allocation`` (float), ``actual_allocation`` (float), ``trade_required`` (bool),
    ``signals`` (dict per row) and ``impacts`` (dict per row), JSON-serialisable (no NaN).

    Rules, per day ``t`` in order (``prev`` = actual(t-1), ``initial_allocation`` on the first day):

    * target = allocation_history(t) if present, else the model's target if every required feature
      is present, else ``prev`` (held; ``signals.held = true``, ``signals.missing_features``);
    * actual = target if ``|target - prev| >= rebalance_threshold`` (1e-9 tolerance) else ``prev``;
    * trade_required = actual != prev.

    Row ``t`` depends only on feature rows <= t and allocation_history dates <= t. ``since``: return only
    the rows from that date on (the rules still run from the first row, so they equal a full run's rows).
    """
    return get_model(model_name).compute_signals(features, config_overrides, allocation_history, since)
