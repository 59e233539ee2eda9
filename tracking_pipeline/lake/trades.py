"""Reading and validating the lake's trade ledger (trades/*), routing decisions (routing/*) and the trade
analytics configuration (reference/trade_analytics.yaml).

Each file is validated on its own: a bad file is reported (file, row, field) and left out whole, the others load.
A trade_id / decision_id appearing twice with different content is an error of the later file (in path order);
identical repeats collapse to one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd
import yaml

from tracking_pipeline.analytics.outcomes import Baseline, OutcomeConfig
from tracking_pipeline.analytics.volume_scan import ReferencePattern, ScanConfig
from tracking_pipeline.lake.errors import LakeInputError
from tracking_pipeline.lake.storage import Lake
from tracking_pipeline.lake.tables import TABLE_PATTERNS, _numeric, _parse_dates, _require, _shown, read_frame

TRADE_COLUMNS = ("trade_id", "symbol", "strategy", "classification", "entry_date", "entry_price", "quantity",
                 "exit_date", "exit_price", "exit_reason", "routing_confidence")
ROUTING_COLUMNS = ("decision_id", "symbol", "selected_strategy", "classification", "confidence", "reason",
                   "timestamp")
CONFIG_FILE = "reference/trade_analytics.yaml"
EXCHANGE_TIMEZONE = "America/New_York"
SOURCE_ROW = "source_row"


@dataclass
class Ledger:
    """The valid rows of the good files (with `source_file`, the lake-relative path, and `source_row`), the
    good files, and an error message per bad file."""

    rows: pd.DataFrame
    files: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def _text(frame: pd.DataFrame, where: str, column: str, rows: np.ndarray | None = None,
          required: bool = True) -> pd.Series:
    """A text column stripped; an empty cell is an error naming its row when `required` (else NULL)."""
    values = frame[column].astype("string").str.strip()
    values = values.mask(values == "")
    if required and values.isna().any():
        row = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise LakeInputError(where, "empty value", row=row + 1, field=column)
    return values.astype(object).where(values.notna(), None)


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _fail(where: str, mask: np.ndarray, field_name: str, message) -> None:  # noqa: ANN001 - message(row) -> str
    """Raise for the first row where `mask` holds."""
    if mask.any():
        row = _first(mask)
        raise LakeInputError(where, message(row), row=row + 1, field=field_name)


def _dates_checked(frame: pd.DataFrame, where: str, column: str, today: dt.date, required: bool) -> pd.Series:
    if required:
        values = frame[column]
        blank = values.isna() | (values.astype("string").str.strip() == "")
        _fail(where, blank.to_numpy(), column, lambda row: "empty value")
        dates = _parse_dates(values, where, column)
    else:
        raw = frame[column]
        blank = (raw.isna() | (raw.astype("string").str.strip() == "")).to_numpy()
        dates = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
        if (~blank).any():
            present = np.flatnonzero(~blank)
            parsed = pd.to_datetime(raw.iloc[present].astype(str), errors="coerce", format="mixed")
            bad = parsed.isna().to_numpy()
            if bad.any():
                row = int(present[_first(bad)])
                raise LakeInputError(where, f"not a date: {_shown(raw.iloc[row])}", row=row + 1, field=column)
            if parsed.dt.tz is not None:
                parsed = parsed.dt.tz_localize(None)
            dates.iloc[present] = parsed.dt.normalize().to_numpy()
    future = (dates > pd.Timestamp(today)).to_numpy()
    _fail(where, future, column, lambda row: f"date {dates.iloc[row].date()} is in the future")
    return dates


def _positive(values: pd.Series, where: str, column: str, present: np.ndarray | None = None) -> None:
    v = values.to_numpy(float)
    bad = ~np.isfinite(v) | (v <= 0)
    if present is not None:
        bad &= present
    _fail(where, bad, column, lambda row: f"must be a finite positive number, got {_shown(v[row])}")


def _known(symbols: pd.Series, where: str, known: set[str] | None) -> None:
    if known is None:
        return
    unknown = ~symbols.isin(known).to_numpy()
    _fail(where, unknown, "symbol",
          lambda row: f"unknown symbol {symbols.iloc[row]!r}: the lake's prices have no such ticker")


def validate_trades(frame: pd.DataFrame, where: str, known: set[str] | None = None,
                    today: dt.date | None = None) -> pd.DataFrame:
    """A ledger file's rows as typed columns, or a LakeInputError naming the first bad row and field: an empty
    id, symbol, strategy or classification; an unknown symbol; a bad or future date; a non-positive price or
    quantity; an exit date without a price (or the reverse) or before the entry; a confidence outside [0, 1];
    a trade_id twice with different content."""
    today = today or dt.date.today()
    _require(frame, where, TRADE_COLUMNS)
    out = pd.DataFrame({c: _text(frame, where, c) for c in ("trade_id", "symbol", "strategy", "classification")})
    _known(out["symbol"], where, known)
    out["entry_date"] = _dates_checked(frame, where, "entry_date", today, required=True)
    out["entry_price"] = _numeric(frame, where, "entry_price")
    _positive(out["entry_price"], where, "entry_price")
    out["quantity"] = _numeric(frame, where, "quantity")
    _positive(out["quantity"], where, "quantity")
    out["exit_date"] = _dates_checked(frame, where, "exit_date", today, required=False)
    out["exit_price"] = _numeric(frame, where, "exit_price")
    has_date, has_price = out["exit_date"].notna().to_numpy(), out["exit_price"].notna().to_numpy()
    _fail(where, has_date & ~has_price, "exit_price", lambda row: "exit_date is set but exit_price is empty")
    _fail(where, has_price & ~has_date, "exit_date", lambda row: "exit_price is set but exit_date is empty")
    _positive(out["exit_price"], where, "exit_price", present=has_price)
    early = has_date & (out["exit_date"] < out["entry_date"]).to_numpy()
    _fail(where, early, "exit_date", lambda row: f"exit {out['exit_date'].iloc[row].date()} is before the entry "
                                                 f"{out['entry_date'].iloc[row].date()}")
    out["exit_reason"] = _text(frame, where, "exit_reason", required=False).where(has_date, None)
    out["routing_confidence"] = _numeric(frame, where, "routing_confidence")
    _confidence(out["routing_confidence"], where, "routing_confidence")
    out[SOURCE_ROW] = np.arange(1, len(out) + 1)
    return _unique(out, where, "trade_id")


def validate_routing(frame: pd.DataFrame, where: str, known: set[str] | None = None,
                     today: dt.date | None = None) -> pd.DataFrame:
    """A routing file's rows typed, or a LakeInputError naming the first bad row and field: an empty id, symbol,
    strategy or classification; an unknown symbol; a confidence missing or outside [0, 1]; a timestamp that is
    not one or lies in the future; a decision_id twice with different content."""
    today = today or dt.date.today()
    _require(frame, where, ROUTING_COLUMNS)
    out = pd.DataFrame({c: _text(frame, where, c) for c in ("decision_id", "symbol", "selected_strategy",
                                                            "classification")})
    _known(out["symbol"], where, known)
    out["confidence"] = _numeric(frame, where, "confidence")
    _fail(where, out["confidence"].isna().to_numpy(), "confidence", lambda row: "empty value")
    _confidence(out["confidence"], where, "confidence")
    out["reason"] = _text(frame, where, "reason", required=False)
    raw = frame["timestamp"]
    _fail(where, (raw.isna() | (raw.astype("string").str.strip() == "")).to_numpy(), "timestamp",
          lambda row: "empty value")
    stamps = _timestamps(raw)
    _fail(where, stamps.isna().to_numpy(), "timestamp", lambda row: f"not a timestamp: {_shown(raw.iloc[row])}")
    _fail(where, (stamps.dt.normalize() > pd.Timestamp(today)).to_numpy(), "timestamp",
          lambda row: f"timestamp {stamps.iloc[row]} is in the future")
    out["timestamp"] = stamps.astype("datetime64[ns]")
    out["decision_date"] = out["timestamp"].dt.normalize()
    out[SOURCE_ROW] = np.arange(1, len(out) + 1)
    return _unique(out, where, "decision_id")


def _timestamps(raw: pd.Series) -> pd.Series:
    """Timestamps as New York exchange time: a value with a UTC offset is converted, one without is taken as
    New York time already. NaT where a value is not a timestamp."""
    text = raw.astype(str).str.strip()
    aware = text.str.contains(r"(?:[+-]\d{2}:?\d{2}|Z)$", regex=True).to_numpy()
    out = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
    if (~aware).any():
        out[~aware] = pd.to_datetime(text[~aware], errors="coerce", format="mixed").astype("datetime64[ns]")
    if aware.any():
        out[aware] = pd.to_datetime(text[aware], errors="coerce", format="mixed", utc=True).dt.tz_convert(
            EXCHANGE_TIMEZONE).dt.tz_localize(None).astype("datetime64[ns]")
    return out


def _confidence(values: pd.Series, where: str, column: str) -> None:
    v = values.to_numpy(float)
    bad = ~np.isnan(v) & ~((v >= 0) & (v <= 1))
    _fail(where, bad, column, lambda row: f"must be in [0, 1], got {_shown(v[row])}")


def _differing(a: pd.Series, b: pd.Series, columns: list[str]) -> list[str]:
    return [c for c in columns if not (a[c] == b[c] or (pd.isna(a[c]) and pd.isna(b[c])))]


def _unique(frame: pd.DataFrame, where: str, key: str, other: pd.DataFrame | None = None) -> pd.DataFrame:
    """Identical repeats of `key` collapse to the first; a repeat with different content is an error naming the
    row, the first differing field and the other row (in `other`, an earlier file, when given)."""
    values = [c for c in frame.columns if c not in (SOURCE_ROW, "source_file")]
    pool = frame if other is None else pd.concat([other, frame], ignore_index=True)
    offset = 0 if other is None else len(other)
    dup = pool.duplicated(key, keep="first").to_numpy().copy()
    dup[:offset] = False
    if not dup.any():
        return frame
    for i in np.flatnonzero(dup):
        row = pool.iloc[i]
        first = pool[pool[key] == row[key]].iloc[0]
        differing = _differing(first, row, values)
        if differing:
            before = f"row {int(first[SOURCE_ROW])}"
            if first.name < offset:
                before = f"{first['source_file']}, {before}"
            raise LakeInputError(where, f"{key} {row[key]!r} appears again with a different {differing[0]} "
                                        f"({_shown(first[differing[0]])} in {before}, {_shown(row[differing[0]])} "
                                        "here)", row=int(row[SOURCE_ROW]), field=differing[0])
    return frame[~dup[offset:]].reset_index(drop=True)


def _load(lake: Lake, folder: str, validate, key: str, known: set[str] | None,  # noqa: ANN001 - a validator
          today: dt.date | None) -> Ledger:
    frames: list[pd.DataFrame] = []
    files: list[str] = []
    errors: dict[str, str] = {}
    for relative in lake.list(folder, TABLE_PATTERNS):
        where = lake.describe(relative)
        try:
            rows = validate(read_frame(lake, relative), where, known, today)
            rows["source_file"] = relative
            earlier = pd.concat(frames, ignore_index=True) if frames else None
            if earlier is not None:
                rows = _unique(rows, where, key, earlier)
        except LakeInputError as exc:
            errors[relative] = str(exc)
            continue
        frames.append(rows)
        files.append(relative)
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return Ledger(rows, files, errors)


def load_trades(lake: Lake, known: set[str] | None = None, today: dt.date | None = None) -> Ledger:
    """Every trades/*.csv|parquet file (see `validate_trades`); none present gives an empty ledger."""
    return _load(lake, "trades", validate_trades, "trade_id", known, today)


def load_routing(lake: Lake, known: set[str] | None = None, today: dt.date | None = None) -> Ledger:
    """Every routing/*.csv|parquet file (see `validate_routing`); none present gives no decisions."""
    return _load(lake, "routing", validate_routing, "decision_id", known, today)


# --- configuration ---------------------------------------------------------------------------------------------


def _section(data: dict, name: str, where: str) -> dict:
    section = data.get(name) or {}
    if not isinstance(section, dict):
        raise LakeInputError(where, "must be a mapping of settings", field=name)
    return section


def _number(section: dict, key: str, default: float, where: str, prefix: str, positive: bool = False) -> float:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) \
            or (positive and value <= 0):
        raise LakeInputError(where, f"must be a {'positive ' if positive else ''}number, got {value!r}",
                             field=f"{prefix}.{key}")
    return float(value)


def _known_keys(section: dict, allowed: set[str], where: str, prefix: str) -> None:
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise LakeInputError(where, f"unknown setting (known: {', '.join(sorted(allowed))})",
                             field=f"{prefix}.{unknown[0]}")


def _scan_config(section: dict, where: str) -> ScanConfig:
    default = ScanConfig()
    _known_keys(section, {f.name for f in fields(ScanConfig)}, where, "volume_spike")
    patterns = default.patterns
    if "patterns" in section:
        raw = section["patterns"]
        if not isinstance(raw, dict) or not raw:
            raise LakeInputError(where, "must map pattern names to {volume_multiple, price}",
                                 field="volume_spike.patterns")
        patterns = tuple(
            ReferencePattern(str(name), _number(spec or {}, "volume_multiple", np.nan, where,
                                                f"volume_spike.patterns.{name}", positive=True),
                             _number(spec or {}, "price", np.nan, where, f"volume_spike.patterns.{name}",
                                     positive=True))
            for name, spec in raw.items())
    config = ScanConfig(
        min_volume_multiple=_number(section, "min_volume_multiple", default.min_volume_multiple, where,
                                    "volume_spike", positive=True),
        min_price=_number(section, "min_price", default.min_price, where, "volume_spike"),
        max_price=_number(section, "max_price", default.max_price, where, "volume_spike", positive=True),
        average_sessions=int(_number(section, "average_sessions", default.average_sessions, where, "volume_spike",
                                     positive=True)),
        patterns=patterns,
    )
    if config.min_price > config.max_price:
        raise LakeInputError(where, f"min_price {config.min_price} is above max_price {config.max_price}",
                             field="volume_spike.min_price")
    return config


def _baseline(section: dict, where: str) -> Baseline:
    if not section:
        return Baseline()
    _known_keys(section, {"start", "end", "label", "win_rate", "avg_return", "explosive_rate"}, where,
                "outcomes.baseline")
    if "start" in section or "end" in section:
        try:
            start, end = (pd.Timestamp(str(section[k])).date() for k in ("start", "end"))
        except (KeyError, ValueError) as exc:
            raise LakeInputError(where, "a baseline period needs dates start and end (YYYY-MM-DD)",
                                 field="outcomes.baseline.start") from exc
        if end < start:
            raise LakeInputError(where, f"end {end} is before start {start}", field="outcomes.baseline.end")
        return Baseline(None, None, None, start, end, str(section.get("label", f"{start} to {end}")))
    figures = {k: _number(section, k, np.nan, where, "outcomes.baseline")
               for k in ("win_rate", "avg_return", "explosive_rate")}
    return Baseline(**figures, label=str(section.get("label", "configured baseline")))


def _outcome_config(section: dict, where: str) -> OutcomeConfig:
    default = OutcomeConfig()
    _known_keys(section, {f.name for f in fields(OutcomeConfig)}, where, "outcomes")
    numbers = {k: _number(section, k, getattr(default, k), where, "outcomes")
               for k in ("explosive_return", "critical_win_rate", "critical_avg_return", "warning_accuracy",
                         "warning_progress")}
    period = str(section.get("status_period", default.status_period))
    if period not in ("30d", "90d", "365d", "all"):
        raise LakeInputError(where, f"must be one of 30d, 90d, 365d, all; got {period!r}",
                             field="outcomes.status_period")
    return OutcomeConfig(**numbers, min_trades=int(_number(section, "min_trades", default.min_trades, where,
                                                           "outcomes", positive=True)),
                         status_period=period, baseline=_baseline(_section(section, "baseline", where), where))


def load_trade_analytics_config(lake: Lake) -> tuple[ScanConfig, OutcomeConfig]:
    """reference/trade_analytics.yaml (sections `volume_spike` and `outcomes`); seed 004's defaults for what it
    does not set, or when it is absent. A malformed file or setting is a LakeInputError naming it."""
    if not lake.exists(CONFIG_FILE):
        return ScanConfig(), OutcomeConfig()
    where = lake.describe(CONFIG_FILE)
    try:
        data = yaml.safe_load(lake.read_bytes(CONFIG_FILE)) or {}
    except yaml.YAMLError as exc:
        raise LakeInputError(where, f"malformed YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise LakeInputError(where, "must hold a mapping with sections volume_spike and outcomes")
    _known_keys(data, {"volume_spike", "outcomes"}, where, "(top level)")
    return (_scan_config(_section(data, "volume_spike", where), where),
            _outcome_config(_section(data, "outcomes", where), where))
