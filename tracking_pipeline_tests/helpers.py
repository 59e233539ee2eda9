"""Test helpers: small lakes cut from the demo lake, and running the chain in-process on a real instance."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import yaml

from tracking_pipeline.settings import DEMO_LAKE

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def make_lake(root: Path, start: str = "2018-01-02", end: str = "2019-06-28",
              tickers: list[str] | None = None, portfolios: list[dict] | None = None) -> Path:
    """A lake folder cut from the demo lake to [start, end] (and `tickers`), with the given portfolio
    mappings (default: the demo portfolio files)."""
    root.mkdir(parents=True, exist_ok=True)
    for sub in ("prices", "features", "reference", "portfolios"):
        (root / sub).mkdir(exist_ok=True)
    for name in ("stocks", "etfs"):
        frame = pd.read_parquet(DEMO_LAKE / "prices" / f"{name}.parquet")
        frame = frame[(frame["date"] >= pd.Timestamp(start).date()) & (frame["date"] <= pd.Timestamp(end).date())]
        if tickers is not None:
            frame = frame[frame["ticker"].isin(tickers)]
        frame.to_parquet(root / "prices" / f"{name}.parquet", index=False)
    features = pd.read_parquet(DEMO_LAKE / "features" / "features_latest.parquet")
    features = features[(features["date"] >= pd.Timestamp(start).date()) & (features["date"] <= pd.Timestamp(end).date())]
    features.to_parquet(root / "features" / "features_latest.parquet", index=False)
    shutil.copy(DEMO_LAKE / "reference" / "sectors.csv", root / "reference" / "sectors.csv")
    if portfolios is None:
        for path in (DEMO_LAKE / "portfolios").glob("*.yaml"):
            shutil.copy(path, root / "portfolios" / path.name)
    else:
        for i, spec in enumerate(portfolios):
            write_portfolio(root, f"p{i}.yaml", spec)
    return root


def write_portfolio(lake: Path, filename: str, spec: dict) -> Path:
    path = lake / "portfolios" / filename
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def run_job(defs: dg.Definitions, job: str, instance: dg.DagsterInstance, start: str | None = None,
            end: str | None = None, raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
    """Execute a job in-process on `instance`, over a partition range when start/end are given."""
    tags = {RANGE_START_TAG: start, RANGE_END_TAG: end} if start else {}
    return defs.resolve_job_def(job).execute_in_process(instance=instance, tags=tags, run_config=QUIET,
                                                         raise_on_error=raise_on_error)


def run_chain(defs: dg.Definitions, instance: dg.DagsterInstance, start: str, end: str,
              downstream: bool = True) -> None:
    """Register portfolios, run the daily assets over [start, end], then the unpartitioned downstream assets."""
    run_job(defs, "portfolio_registry_job", instance)
    run_job(defs, "daily_assets_job", instance, start, end)
    if downstream:
        run_job(defs, "downstream_job", instance)
