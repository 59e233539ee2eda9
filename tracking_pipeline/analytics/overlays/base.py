"""The overlay-model base class and the daily decision loop shared by every model.

An overlay model turns one row of market features into a *target* equity allocation in [0, 1]
plus an explanation: ``impacts`` (each factor's additive contribution) and ``signals`` (the
inputs used, the regime, band labels, ...).  The shared machinery in :meth:`OverlayModel.compute_signals`
then applies, day by day and in date order only (no look-ahead):

* the ``allocation_history`` override (external targets replace the model's target on their dates),
* the missing-feature rule (a day whose required features are NaN keeps the previous allocation),
* the rebalance threshold (the actual allocation only moves when the target is at least
  ``rebalance_threshold`` away from the previous actual allocation).

Impacts identity, on every output row::

    signals["base_allocation"] + sum(impacts.values()) == target_allocation

Clipping to ``floor``/``cap`` and rounding to ``allocation_step`` are their own impact entries
(``"cap_floor"`` and ``"step"``); a held day has the single entry ``"held"`` and an overridden day
the single entry ``"allocation_history"`` (each = target - base).  Impacts are rounded to 10
decimals, so the identity holds to ~1e-9.

This module is pure (numpy/pandas only, no Dagster, no I/O).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import numpy as np
import pandas as pd

__all__ = [
    "EPS",
    "DECIMALS",
    "COMMON_CONFIG_KEYS",
    "ModelEvaluation",
    "OverlayModel",
    "OUTPUT_COLUMNS",
]

#: Tolerance of the threshold comparison: ``|target - previous| >= threshold - EPS`` trades, so a
#: step of exactly the threshold (0.7 - 0.6 = 0.0999999...) is not lost to float noise.
EPS = 1e-9
#: Allocations and impacts are rounded to this many decimals.
DECIMALS = 10

#: Keys every model's ``default_config`` must contain.
COMMON_CONFIG_KEYS = (
    "rebalance_threshold",
    "cost_bps",
    "initial_allocation",
    "floor",
    "cap",
    "allocation_step",
)

#: Columns of :func:`compute_overlay_signals`' result (index: ``trade_date``).
OUTPUT_COLUMNS = ["target_allocation", "actual_allocation", "trade_required", "signals", "impacts"]

SOURCE_MODEL = "model"
SOURCE_HELD = "held"
SOURCE_HISTORY = "allocation_history"


@dataclass
class ModelEvaluation:
    """Column-wise result of :meth:`OverlayModel.evaluate` over a features frame of ``n`` rows.

    ``target``: final target per row (after step and floor/cap), NaN where required features are
    missing.  ``base``: the model's base allocation.  ``impacts``: name -> array of ``n`` additive
    contributions (NaN where missing).  ``signals``: name -> array/list of ``n`` values (floats,
    strings, ints or None).  ``missing``: per row, the names of the required features that are NaN.
    """

    target: np.ndarray
    base: float
    impacts: dict[str, np.ndarray]
    signals: dict[str, Any]
    missing: list[list[str]]


# --------------------------------------------------------------------------------------------
# small numeric helpers (shared by the models)
# --------------------------------------------------------------------------------------------


def clean_round(values: np.ndarray) -> np.ndarray:
    """Round to :data:`DECIMALS` decimals and turn ``-0.0`` into ``0.0``."""
    return np.round(np.asarray(values, dtype=float), DECIMALS) + 0.0


def step_round(values: np.ndarray, step: float) -> np.ndarray:
    """Round to the nearest multiple of ``step`` (halves up, float-noise tolerant); 0 = no stepping."""
    values = np.asarray(values, dtype=float)
    if step <= 0:
        return values.copy()
    return clean_round(np.floor(values / step + 0.5 + EPS) * step)


def finish_target(unclipped: np.ndarray, config: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``unclipped -> (target, step_impact, cap_floor_impact)``: step first, then floor/cap.

    ``target = unclipped + step_impact + cap_floor_impact`` (NaN propagates).
    """
    stepped = step_round(unclipped, float(config["allocation_step"]))
    target = clean_round(np.clip(stepped, float(config["floor"]), float(config["cap"])))
    return target, stepped - unclipped, target - stepped


def feature_array(features: pd.DataFrame, column: str) -> np.ndarray:
    """A feature column as a float array (``pd.NA`` -> NaN); all-NaN when the column is absent."""
    if column not in features.columns:
        return np.full(len(features), np.nan)
    return pd.to_numeric(features[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def missing_per_row(arrays: Mapping[str, np.ndarray], n: int) -> tuple[np.ndarray, list[list[str]]]:
    """``(any_missing mask, per-row list of the NaN feature names)`` for the required arrays."""
    names = list(arrays)
    if not names:
        return np.zeros(n, dtype=bool), [[] for _ in range(n)]
    nan = np.column_stack([np.isnan(arrays[name]) for name in names])
    any_missing = nan.any(axis=1)
    lists: list[list[str]] = [[] for _ in range(n)]
    for i in np.flatnonzero(any_missing):
        lists[i] = [names[j] for j in np.flatnonzero(nan[i])]
    return any_missing, lists


def labels(codes: np.ndarray, names: list[str], valid: np.ndarray) -> np.ndarray:
    """Map integer codes to label strings; None where not ``valid``."""
    out = np.asarray(names, dtype=object)[np.clip(codes, 0, len(names) - 1)]
    out[~valid] = None
    return out


def _to_python_list(values: Any, n: int) -> list:
    """A signal/impact column as a JSON-friendly Python list (NaN -> None, numpy scalars -> Python)."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        rounded = clean_round(values).tolist()
        return [None if x != x else x for x in rounded]
    if isinstance(values, np.ndarray) and values.dtype.kind in "iub":
        return values.tolist()
    if np.isscalar(values) or values is None:
        value = values.item() if isinstance(values, np.generic) else values
        if isinstance(value, float):
            value = None if math.isnan(value) else round(value, DECIMALS) + 0.0
        return [value] * n
    out = []
    for x in values:
        if isinstance(x, np.generic):
            x = x.item()
        if isinstance(x, float):
            x = None if math.isnan(x) else round(x, DECIMALS) + 0.0
        out.append(x)
    return out


def _rows(columns: Mapping[str, Any], n: int, first: int = 0) -> list[dict]:
    """Column dict -> list of per-row dicts (JSON-friendly values) for rows ``first..n-1``."""
    keys = list(columns)
    lists = [_to_python_list(_tail(columns[k], n, first), n - first) for k in keys]
    return [dict(zip(keys, vals)) for vals in zip(*lists)] if keys else [{} for _ in range(n - first)]


def _tail(values: Any, n: int, first: int) -> Any:
    """Rows ``first..`` of a length-``n`` column; scalars (one value for every row) unchanged."""
    if first == 0 or np.isscalar(values) or values is None:
        return values
    values = values if isinstance(values, np.ndarray) else np.asarray(list(values), dtype=object)
    return values[first:] if len(values) == n else values


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


# --------------------------------------------------------------------------------------------
# the model base class
# --------------------------------------------------------------------------------------------


class OverlayModel:
    """Base class of an overlay model.

    Subclasses set ``name`` (the registry key, also the variant name and the ``models/<name>/``
    folder), ``title``, ``default_config`` (flat JSON-compatible dict containing at least
    :data:`COMMON_CONFIG_KEYS`), ``required_features`` and implement :meth:`evaluate`; they may
    extend :meth:`validate_config` for model-specific checks (calling ``super()``).
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    default_config: ClassVar[dict[str, Any]] = {}
    required_features: ClassVar[tuple[str, ...]] = ()

    # ---------------------------------------------------------------- configuration

    def resolve_config(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Defaults updated with ``overrides``; unknown keys and bad values raise ``ValueError``."""
        config = dict(self.default_config)
        if overrides:
            if not isinstance(overrides, Mapping):
                raise ValueError(f"Config of overlay '{self.name}' must be a mapping of parameters, "
                                 f"got {type(overrides).__name__}")
            unknown = [key for key in overrides if key not in self.default_config]
            if unknown:
                raise ValueError(
                    f"Unknown config key(s) for overlay '{self.name}': {', '.join(map(repr, unknown))}. "
                    f"Valid keys: {', '.join(sorted(self.default_config))}"
                )
            for key, value in overrides.items():
                config[key] = self._coerce(key, value)
        self.validate_config(config)
        return config

    def _coerce(self, key: str, value: Any) -> Any:
        default = self.default_config[key]
        where = f"config key '{key}' of overlay '{self.name}'"
        if isinstance(default, bool):
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{where} must be true or false, got {value!r}")
            return bool(value)
        if isinstance(default, int):
            if not _is_number(value) or float(value) != int(value):
                raise ValueError(f"{where} must be an integer, got {value!r}")
            return int(value)
        if isinstance(default, float):
            if not _is_number(value) or not math.isfinite(float(value)):
                raise ValueError(f"{where} must be a finite number, got {value!r}")
            return float(value)
        return value

    def validate_config(self, config: Mapping[str, Any]) -> None:
        """Checks shared by all models; raise ``ValueError`` naming the key."""

        def check(key: str, ok: bool, what: str) -> None:
            if not ok:
                raise ValueError(f"config key '{key}' of overlay '{self.name}' {what}, got {config[key]!r}")

        for key in ("rebalance_threshold", "initial_allocation", "floor", "cap", "allocation_step"):
            check(key, 0.0 <= config[key] <= 1.0, "must be in [0, 1]")
        check("cost_bps", config["cost_bps"] >= 0.0, "must be >= 0")
        check("floor", config["floor"] <= config["cap"], f"must be <= cap ({config['cap']!r})")

    # ---------------------------------------------------------------- the model itself

    def evaluate(self, features: pd.DataFrame, config: Mapping[str, Any]) -> ModelEvaluation:
        """Column-wise evaluation over a features frame (date order; must be causal)."""
        raise NotImplementedError

    def target(self, features: pd.Series | pd.DataFrame, config: Mapping[str, Any] | None = None):
        """The model's own target (no threshold, override or holding).

        * a row (``pd.Series`` of features) -> ``(target: float, impacts: dict[str, float],
          signals: dict)``; target is NaN (impacts empty) when a required feature is missing.
          Stateful models see a single day (e.g. no regime confirmation history).
        * a frame -> ``(target: pd.Series, impacts: pd.DataFrame, signals: pd.Series of dicts)``
          on the frame's index, with state carried across the rows in date order.

        ``config`` are overrides of ``default_config`` (validated).
        """
        config = self.resolve_config(config)
        if isinstance(features, pd.Series):
            frame = features.to_frame().T
            ev = self.evaluate(frame, config)
            tgt = float(ev.target[0])
            signals = _rows(ev.signals, 1)[0]
            signals["missing_features"] = ev.missing[0]
            impacts = {} if math.isnan(tgt) else _rows(ev.impacts, 1)[0]
            return tgt, impacts, signals
        frame = _checked_frame(features)
        ev = self.evaluate(frame, config)
        signal_rows = _rows(ev.signals, len(frame))
        for row, miss in zip(signal_rows, ev.missing):
            row["missing_features"] = miss
        return (
            pd.Series(ev.target, index=frame.index, name="target_allocation"),
            pd.DataFrame({k: np.asarray(v, dtype=float) for k, v in ev.impacts.items()}, index=frame.index),
            pd.Series(signal_rows, index=frame.index, name="signals", dtype=object),
        )

    # ---------------------------------------------------------------- the daily decision loop

    def compute_signals(
        self,
        features: pd.DataFrame,
        config_overrides: Mapping[str, Any] | None = None,
        allocation_history: pd.Series | pd.DataFrame | None = None,
        since: pd.Timestamp | None = None,
    ) -> pd.DataFrame:
        """Daily overlay decisions; see :func:`tracking_pipeline.analytics.overlays.compute_overlay_signals`."""
        config = self.resolve_config(config_overrides)
        frame = _checked_frame(features)
        absent = [c for c in self.required_columns(config) if c not in frame.columns]
        if absent:
            raise ValueError(
                f"features lack column(s) {', '.join(map(repr, absent))} needed by overlay '{self.name}'"
            )
        n = len(frame)
        index = pd.DatetimeIndex(frame.index, name="trade_date", freq=None)  # no inferred freq: rows are days
        if n == 0:
            out = pd.DataFrame({c: pd.Series(dtype=object) for c in OUTPUT_COLUMNS}, index=index)
            return out.astype({"target_allocation": float, "actual_allocation": float, "trade_required": bool})

        ev = self.evaluate(frame, config)
        override = _align_history(allocation_history, index)
        has_override = ~np.isnan(override)
        model_target = np.asarray(ev.target, dtype=float)
        model_ok = ~np.isnan(model_target)

        threshold = float(config["rebalance_threshold"]) - EPS
        target = np.empty(n)
        actual = np.empty(n)
        trade = np.zeros(n, dtype=bool)
        source = np.empty(n, dtype=np.int8)  # 0 held, 1 model, 2 allocation_history
        prev = float(config["initial_allocation"])
        for i in range(n):
            if has_override[i]:
                t = override[i]
                source[i] = 2
            elif model_ok[i]:
                t = model_target[i]
                source[i] = 1
            else:
                t = prev
                source[i] = 0
            a = t if abs(t - prev) >= threshold else prev
            target[i] = t
            actual[i] = a
            trade[i] = abs(a - prev) > 1e-12
            prev = a

        # the recursion above needs every day; the JSON columns are built only for the rows returned
        first = 0 if since is None else int(index.searchsorted(pd.Timestamp(since)))
        base = float(ev.base)
        signal_rows = _rows(ev.signals, n, first)
        impact_rows = _rows(ev.impacts, n, first)
        target_list = clean_round(target[first:]).tolist()
        model_target_list = _to_python_list(model_target[first:], n - first)
        missing = ev.missing[first:]
        source = source[first:]
        for i in range(n - first):
            sig = signal_rows[i]
            sig["missing_features"] = missing[i]
            if source[i] == 1:
                sig["source"] = SOURCE_MODEL
                sig["held"] = False
            elif source[i] == 0:
                sig["source"] = SOURCE_HELD
                sig["held"] = True
                impact_rows[i] = {"held": round(target_list[i] - base, DECIMALS) + 0.0}
            else:
                sig["source"] = SOURCE_HISTORY
                sig["held"] = False
                sig["model_target"] = model_target_list[i]
                impact_rows[i] = {"allocation_history": round(target_list[i] - base, DECIMALS) + 0.0}

        index = index[first:]
        return pd.DataFrame(
            {
                "target_allocation": target[first:],
                "actual_allocation": actual[first:],
                "trade_required": trade[first:],
                "signals": pd.Series(signal_rows, index=index, dtype=object),
                "impacts": pd.Series(impact_rows, index=index, dtype=object),
            },
            index=index,
        )

    def required_columns(self, config: Mapping[str, Any]) -> tuple[str, ...]:
        """Feature columns that must exist in the frame (their NaN values mean 'hold')."""
        return tuple(self.required_features)

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return f"<{type(self).__name__} {self.name!r}>"


# --------------------------------------------------------------------------------------------
# input normalisation
# --------------------------------------------------------------------------------------------


def _checked_frame(features: pd.DataFrame) -> pd.DataFrame:
    """Features with a DatetimeIndex that is unique and increasing (else ``ValueError``)."""
    if not isinstance(features, pd.DataFrame):
        raise ValueError(f"features must be a pandas DataFrame, got {type(features).__name__}")
    try:
        index = pd.DatetimeIndex(pd.to_datetime(features.index))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"features must be indexed by trade date: {exc}") from exc
    if index.hasnans:
        raise ValueError("features index has missing dates")
    if not index.is_unique:
        dup = index[index.duplicated()][0]
        raise ValueError(f"features index has duplicate date {dup.date()}")
    if not index.is_monotonic_increasing:
        raise ValueError("features index must be sorted by date (increasing)")
    if index.equals(features.index):
        return features
    out = features.copy()
    out.index = index
    return out


def _align_history(history: pd.Series | pd.DataFrame | None, index: pd.DatetimeIndex) -> np.ndarray:
    """allocation_history -> array on ``index`` (NaN where no override).

    Accepts a Series (date index -> target) or a DataFrame with ``date`` and ``target_allocation``
    columns.  Values must be numbers in [0, 1] (``ValueError`` naming the date); a date repeated
    with different values is an error; dates that are not in ``index`` are ignored.
    """
    n = len(index)
    if history is None:
        return np.full(n, np.nan)
    if isinstance(history, pd.DataFrame):
        missing = [c for c in ("date", "target_allocation") if c not in history.columns]
        if missing:
            raise ValueError(f"allocation_history lacks column(s) {', '.join(missing)}")
        history = pd.Series(history["target_allocation"].to_numpy(), index=history["date"])
    if not isinstance(history, pd.Series):
        raise ValueError(f"allocation_history must be a pandas Series, got {type(history).__name__}")
    if history.empty:
        return np.full(n, np.nan)
    try:
        dates = pd.DatetimeIndex(pd.to_datetime(history.index))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"allocation_history must be indexed by date: {exc}") from exc
    values = pd.to_numeric(pd.Series(history.to_numpy(), dtype=object), errors="coerce").to_numpy(
        dtype=float, na_value=np.nan
    )
    bad = np.isnan(values) | (values < 0.0) | (values > 1.0)
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"allocation_history target on {dates[j].date()} must be a number in [0, 1], "
            f"got {history.iloc[j]!r}"
        )
    series = pd.Series(values, index=dates)
    if not series.index.is_unique:
        grouped = series.groupby(level=0)
        conflict = grouped.nunique()
        conflict = conflict[conflict > 1]
        if len(conflict):
            raise ValueError(
                f"allocation_history has different targets for the same date {conflict.index[0].date()}"
            )
        series = grouped.first()
    return series.reindex(index).to_numpy(dtype=float)
