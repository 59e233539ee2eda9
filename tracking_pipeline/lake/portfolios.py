"""Portfolio files (portfolios/*.yaml|json): parsed and validated one by one, so a bad file stops only itself."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from tracking_pipeline.lake.errors import LakeInputError
from tracking_pipeline.lake.storage import Lake

PORTFOLIO_PATTERNS = ("*.yaml", "*.yml", "*.json")
RAW = "raw"
WEIGHT_TOLERANCE = 1e-9

YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when PyYAML was built with it (same results, ~10x faster), else the pure-Python one."""


def portfolio_id_for(name: str) -> int:
    """A stable positive integer per portfolio name (first 8 bytes of SHA-256, 62 bits)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big") >> 2


@dataclass(frozen=True)
class Rebalance:
    effective_date: dt.date
    weights: dict[str, float]


@dataclass(frozen=True)
class PortfolioSpec:
    """A validated portfolio file."""

    name: str
    description: str
    source: str
    start_date: dt.date
    initial_nav: float
    benchmark: str
    variants: tuple[str, ...]
    holdings: tuple[Rebalance, ...]
    is_active: bool
    file: str
    config: dict[str, Any] = field(default_factory=dict)
    path: str = ""
    """The file's path relative to the lake root (stable when the lake is copied or moved)."""
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Allocation bounds `{ticker: (min, max)}` (seed 002); every target weight lies within them."""

    @property
    def portfolio_id(self) -> int:
        return portfolio_id_for(self.name)

    @property
    def tickers(self) -> list[str]:
        return sorted({t for r in self.holdings for t in r.weights})

    @property
    def overlay_variants(self) -> list[str]:
        return [v for v in self.variants if v != RAW]


def _date(value: Any, where: str, field_name: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise LakeInputError(where, f"not a date (YYYY-MM-DD): {value!r}", field=field_name) from exc


def _number(value: Any, where: str, field_name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LakeInputError(where, f"must be a number, got {value!r}", field=field_name)
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        raise LakeInputError(where, f"must be finite, got {value!r}", field=field_name)
    return number


def parse_bounds(raw: Any, where: str) -> dict[str, tuple[float, float]]:
    """`bounds: {TICKER: [min, max]}` of a portfolio file: weights with 0 <= min <= max <= 1."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise LakeInputError(where, f"must map ticker to [min, max], got {raw!r}", field="bounds")
    bounds = {}
    for ticker, pair in raw.items():
        label = f"bounds.{ticker}"
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise LakeInputError(where, f"must be [min, max] (two weights), got {pair!r}", field=label)
        lo, hi = _number(pair[0], where, label), _number(pair[1], where, label)
        if not 0.0 <= lo <= hi <= 1.0:
            raise LakeInputError(where, f"needs 0 <= min <= max <= 1, got [{lo}, {hi}]", field=label)
        bounds[str(ticker).strip()] = (lo, hi)
    return bounds


def _check_targets_in_bounds(holdings: list[Rebalance], bounds: dict[str, tuple[float, float]], where: str) -> None:
    """Every target weight (0 for a bounded ticker an entry does not hold) lies within its bounds."""
    for i, entry in enumerate(holdings):
        for ticker, (lo, hi) in bounds.items():
            w = entry.weights.get(ticker, 0.0)
            if not lo - WEIGHT_TOLERANCE <= w <= hi + WEIGHT_TOLERANCE:
                raise LakeInputError(where, f"target weight {w} of {ticker} on {entry.effective_date} is outside "
                                            f"its bounds [{lo}, {hi}]", field=f"holdings[{i}].weights.{ticker}")


def parse_portfolio(raw: Any, where: str, default_benchmark: str, available_overlays: Iterable[str]) -> PortfolioSpec:
    """Validate one parsed file against CONTRACT §2; raise LakeInputError naming the field."""
    if not isinstance(raw, dict):
        raise LakeInputError(where, "a portfolio file must hold a mapping (name, start_date, holdings, ...)")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise LakeInputError(where, "missing or empty", field="name")
    if "start_date" not in raw:
        raise LakeInputError(where, "missing", field="start_date")
    start = _date(raw["start_date"], where, "start_date")
    initial_nav = _number(raw.get("initial_nav", 100), where, "initial_nav")
    if initial_nav <= 0:
        raise LakeInputError(where, f"must be positive, got {initial_nav}", field="initial_nav")
    overlays = list(available_overlays)
    variants = raw.get("variants", [RAW, *overlays])
    if not isinstance(variants, list) or not all(isinstance(v, str) for v in variants):
        raise LakeInputError(where, "must be a list of variant names", field="variants")
    for variant in variants:
        if variant != RAW and variant not in overlays:
            raise LakeInputError(where, f"unknown overlay {variant!r}. Available: {', '.join([RAW, *overlays])}",
                                 field="variants")
    if RAW not in variants:
        variants = [RAW, *variants]
    holdings_raw = raw.get("holdings")
    if not isinstance(holdings_raw, list) or not holdings_raw:
        raise LakeInputError(where, "must be a non-empty list of {effective_date, weights}", field="holdings")
    holdings = []
    for i, entry in enumerate(holdings_raw):
        label = f"holdings[{i}]"
        if not isinstance(entry, dict) or "effective_date" not in entry or "weights" not in entry:
            raise LakeInputError(where, "needs effective_date and weights", field=label)
        eff = _date(entry["effective_date"], where, f"{label}.effective_date")
        weights_raw = entry["weights"]
        if not isinstance(weights_raw, dict):
            raise LakeInputError(where, "must map ticker to weight", field=f"{label}.weights")
        weights = {}
        for ticker, w in weights_raw.items():
            w = _number(w, where, f"{label}.weights.{ticker}")
            if not 0.0 <= w <= 1.0:
                raise LakeInputError(where, f"weight {w} outside [0, 1]", field=f"{label}.weights.{ticker}")
            weights[str(ticker).strip()] = w
        total = sum(weights.values())
        if total > 1.0 + WEIGHT_TOLERANCE:
            raise LakeInputError(where, f"weights sum to {total:.6f} > 1", field=f"{label}.weights")
        holdings.append(Rebalance(eff, weights))
    dates = [h.effective_date for h in holdings]
    if len(set(dates)) != len(dates):
        raise LakeInputError(where, "two entries share an effective_date", field="holdings")
    is_active = raw.get("is_active", True)
    if not isinstance(is_active, bool):
        raise LakeInputError(where, f"must be true or false, got {is_active!r}", field="is_active")
    bounds = parse_bounds(raw.get("bounds"), where)
    _check_targets_in_bounds(holdings, bounds, where)
    config = {k: v for k, v in raw.items() if k not in {"holdings", "bounds"}}
    if bounds:
        config["bounds"] = {t: [lo, hi] for t, (lo, hi) in sorted(bounds.items())}
    benchmark = raw.get("benchmark") or default_benchmark
    return PortfolioSpec(
        name=name.strip(), description=str(raw.get("description") or ""), source=str(raw.get("source") or ""),
        start_date=start, initial_nav=initial_nav, benchmark=str(benchmark), variants=tuple(variants),
        holdings=tuple(sorted(holdings, key=lambda h: h.effective_date)), is_active=is_active, file=where,
        config=config, bounds=bounds,
    )


def _parse_problem(exc: Exception) -> str:
    """A one-line description of a parser error, with its line and column when known."""
    mark = getattr(exc, "problem_mark", None)
    if isinstance(exc, yaml.MarkedYAMLError) and mark is not None:
        return f"{exc.problem} at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(str(exc).split())


def read_portfolio_file(lake: Lake, relative: str, default_benchmark: str,
                        available_overlays: Iterable[str]) -> PortfolioSpec:
    where = lake.describe(relative)
    text = lake.read_bytes(relative)
    if not text.strip():
        raise LakeInputError(where, "file is empty")
    try:
        raw = json.loads(text) if relative.endswith(".json") else yaml.load(text, Loader=YAML_LOADER)
    except (yaml.YAMLError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LakeInputError(where, f"malformed {'JSON' if relative.endswith('.json') else 'YAML'}: "
                                    f"{_parse_problem(exc)}") from exc
    return dataclasses.replace(parse_portfolio(raw, where, default_benchmark, available_overlays), path=relative)


def load_portfolios(lake: Lake, default_benchmark: str,
                    available_overlays: Iterable[str]) -> tuple[list[PortfolioSpec], dict[str, str]]:
    """Every portfolio file: the valid specs, and an error message per bad file (file -> message)."""
    overlays = list(available_overlays)
    specs: list[PortfolioSpec] = []
    errors: dict[str, str] = {}
    seen: dict[str, str] = {}
    for relative in lake.list("portfolios", PORTFOLIO_PATTERNS):
        try:
            spec = read_portfolio_file(lake, relative, default_benchmark, overlays)
        except LakeInputError as exc:
            errors[lake.describe(relative)] = str(exc)
            continue
        if spec.name in seen:
            errors[spec.file] = f"{spec.file}, field 'name': duplicate portfolio name {spec.name!r} (also in {seen[spec.name]})"
            continue
        seen[spec.name] = spec.file
        specs.append(spec)
    return specs, errors
