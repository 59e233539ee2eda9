"""Registering portfolio files in the warehouse: definitions (stable ids, active flag) and holdings."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd

from tracking_pipeline.analytics.overlays.registry import available_models
from tracking_pipeline.lake import Lake, LakeInputError
from tracking_pipeline.lake.portfolios import PortfolioSpec, load_portfolios
from tracking_pipeline.lake.tables import priced_tickers
from tracking_pipeline.trading_calendar import next_session_on_or_after
from tracking_pipeline.warehouse import Warehouse, Write


def definition_row(spec: PortfolioSpec, now: dt.datetime, created_at: dt.datetime | None) -> dict:
    config = dict(spec.config, variants=list(spec.variants), file=spec.path or spec.file)
    return {
        "portfolio_id": spec.portfolio_id, "name": spec.name, "description": spec.description,
        "source": spec.source, "start_date": spec.start_date, "initial_nav": spec.initial_nav,
        "benchmark": spec.benchmark, "config": json.dumps(config, sort_keys=True, default=str),
        "is_active": spec.is_active, "created_at": created_at or now, "updated_at": now,
    }


def holdings_rows(spec: PortfolioSpec) -> list[dict]:
    portfolio_id = spec.portfolio_id  # a hash of the name: once, not per row
    return [{"portfolio_id": portfolio_id, "effective_date": r.effective_date, "ticker": t, "weight": w}
            for r in spec.holdings for t, w in sorted(r.weights.items())]


def check_tickers_priced(specs: list[PortfolioSpec], priced: set[str],
                         errors: dict[str, str]) -> list[PortfolioSpec]:
    """Drop (into errors) specs holding a ticker that has no prices in the lake."""
    good = []
    for spec in specs:
        unpriced = [t for t in spec.tickers if t not in priced]
        if unpriced:
            errors[spec.file] = str(LakeInputError(spec.file, f"ticker(s) with no prices in the lake: "
                                                              f"{', '.join(unpriced)}", field="holdings"))
        else:
            good.append(spec)
    return good


def check_starts(specs: list[PortfolioSpec], first_partition: str | None,
                 errors: dict[str, str]) -> list[PortfolioSpec]:
    """Drop (into errors) active specs whose first NAV day is before the first daily partition: their NAV could
    never be computed (it starts at start_date, and no partition holds the days before the first one)."""
    if first_partition is None:
        return specs
    good = []
    for spec in specs:
        first_day = next_session_on_or_after(spec.start_date).date().isoformat()
        if spec.is_active and first_day < first_partition:
            errors[spec.file] = str(LakeInputError(spec.file, (
                f"start_date {spec.start_date} is before the first daily partition {first_partition}, so its NAV "
                f"cannot start there. Either set TRACKING_PARTITIONS_START to {first_day} or earlier (the lake must "
                f"have prices from then), or move the portfolio's start_date to {first_partition} or later"),
                field="start_date"))
        else:
            good.append(spec)
    return good


def register_portfolios(lake: Lake, wh: Warehouse, default_benchmark: str, now: dt.datetime | None = None,
                        first_partition: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """Upsert every valid portfolio file; portfolios whose file is gone become inactive (history kept); a bad
    file (or one starting before `first_partition`) leaves its previous rows untouched. Returns (definitions,
    holdings, errors by file)."""
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    specs, errors = load_portfolios(lake, default_benchmark, available_models())
    specs = check_starts(specs, first_partition, errors)
    priced = priced_tickers(lake) if specs else set()
    specs = check_tickers_priced(specs, priced, errors)
    existing = wh.read_table("portfolio_definitions")
    previous = {int(r.portfolio_id): r for r in existing.itertuples(index=False)}
    rows, changed_ids, edited = [], [], False
    for spec in specs:
        old = previous.get(spec.portfolio_id)
        row = definition_row(spec, now, old.created_at if old is not None else None)
        if old is not None and _same_definition(old, row):
            row["updated_at"] = old.updated_at
        else:
            edited = True
        rows.append(row)
        changed_ids.append(spec.portfolio_id)
    registered = {spec.portfolio_id for spec in specs}
    failed_names = {_name_in(errors_file, existing) for errors_file in errors}
    for pid, old in previous.items():
        if pid in registered or old.name in failed_names:
            continue
        if old.is_active:
            row = old._asdict()
            row.update(is_active=False, updated_at=now)
            rows.append(row)
            changed_ids.append(pid)
            edited = True
    definitions = pd.DataFrame(rows, columns=list(existing.columns))
    holdings = pd.DataFrame([h for spec in specs for h in holdings_rows(spec)],
                            columns=["portfolio_id", "effective_date", "ticker", "weight"])
    if not edited and _same_holdings(holdings, wh.read_table("portfolio_holdings"), registered):
        return existing, holdings, errors  # the nightly case: nothing to rewrite
    wh.replace(
        Write("portfolio_definitions", definitions, {"portfolio_id": changed_ids}),
        Write("portfolio_holdings", holdings, {"portfolio_id": sorted(registered)}),
    )
    return wh.read_table("portfolio_definitions"), holdings, errors


def _same_holdings(new: pd.DataFrame, stored: pd.DataFrame, registered: set[int]) -> bool:
    """Whether the stored holdings of the registered portfolios are exactly `new` (same rows, any order)."""
    stored = stored[stored["portfolio_id"].astype("int64").isin(registered)]
    if len(stored) != len(new):
        return False

    def canonical(frame: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame({"portfolio_id": frame["portfolio_id"].astype("int64").to_numpy(),
                            "effective_date": pd.to_datetime(frame["effective_date"]).to_numpy("datetime64[ns]"),
                            "ticker": frame["ticker"].astype(str).to_numpy(object),
                            "weight": frame["weight"].astype(float).to_numpy()})
        return out.sort_values(["portfolio_id", "effective_date", "ticker"], ignore_index=True)

    return canonical(new).equals(canonical(stored))


def _same_definition(old: object, row: dict) -> bool:
    keys = ("name", "description", "source", "initial_nav", "benchmark", "config", "is_active")
    same = all(_norm(getattr(old, k)) == _norm(row[k]) for k in keys)
    return same and pd.Timestamp(getattr(old, "start_date")) == pd.Timestamp(row["start_date"])


def _norm(value: object) -> object:
    if isinstance(value, str) and value.startswith("{"):
        return json.loads(value)
    return value


def _name_in(file: str, existing: pd.DataFrame) -> str | None:
    """The registered name of the portfolio that was loaded from `file` before (so a now-bad file keeps it)."""
    for row in existing.itertuples(index=False):
        config = json.loads(row.config) if isinstance(row.config, str) else (row.config or {})
        stored = config.get("file")
        if stored and (stored == file or file.endswith("/" + stored) or stored.endswith("/" + file)):
            return row.name
    return None
