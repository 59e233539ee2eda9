"""Test helpers: small lakes cut from the demo lake, and running the chain in-process on a real instance."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import yaml

from tracking_pipeline.settings import DEMO_LAKE
from tracking_pipeline_tests.trade_lake import cut_trade_files

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
    cut_trade_files(root, start, end, tickers)
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


NAV_ASSETS = ("price_data", "market_features", "overlay_signals", "portfolio_daily_nav")


def run_assets(defs: dg.Definitions, instance: dg.DagsterInstance, assets: tuple[str, ...], start: str, end: str,
               raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
    """Only `assets` of the daily job over [start, end], as one range run (cheaper than the whole job)."""
    return defs.resolve_job_def("daily_assets_job").execute_in_process(
        instance=instance, tags={RANGE_START_TAG: start, RANGE_END_TAG: end}, run_config=QUIET,
        asset_selection=[dg.AssetKey(name) for name in assets], raise_on_error=raise_on_error)


def run_nav_chain(defs: dg.Definitions, instance: dg.DagsterInstance, start: str, end: str,
                  raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
    """Register portfolios, then only the daily assets NAV depends on over [start, end] (one range run)."""
    run_job(defs, "portfolio_registry_job", instance)
    return run_assets(defs, instance, NAV_ASSETS, start, end, raise_on_error)


def step_failure_messages(result: dg.ExecuteInProcessResult) -> list[str]:
    """The error message of every failed step of a run, with the messages of its causes (the user code's
    exception is the cause of Dagster's wrapper)."""
    out = []
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error is not None:
            error, parts = event.step_failure_data.error, []
            while error is not None:
                parts.append(error.message.strip())
                error = error.cause
            out.append("\n".join(parts))
    return out


VOLATILE_COLUMNS = ("created_at", "updated_at", "fingerprint")
"""Wall-clock columns, and input fingerprints (hashes of exact input bits: runs whose numbers agree within a
tolerance need not share them; their keys and row counts are still compared)."""
VOLATILE_TABLES = ("alerts", "system_health")
LATEST_ONLY = {"asset_indicator_state": "as_of"}
"""Run bookkeeping: which days hold a state depends on where the runs that wrote a range ended, so runs that split
the same range differently are compared on the last day's rows, the state the next run continues from."""


def table_snapshot(wh) -> dict[str, pd.DataFrame]:  # noqa: ANN001 - a Warehouse
    """Every declared table's rows in key order, JSON parsed and volatile columns dropped, for comparisons
    across runs and backends."""
    import json

    from tracking_pipeline.warehouse import TABLES

    out = {}
    for name, table in TABLES.items():
        if name in VOLATILE_TABLES:
            continue
        frame = wh.read_table(name).drop(columns=[c for c in VOLATILE_COLUMNS if c in table.column_names])
        if name in LATEST_ONLY and len(frame):
            day = frame[LATEST_ONLY[name]]
            frame = frame[day == day.max()]
        for column, kind in table.columns:
            if kind == "json" and column in frame:
                frame[column] = frame[column].map(lambda v: None if v is None or v != v else json.loads(v))
            elif kind in ("int", "bigint") and column in frame:
                frame[column] = pd.to_numeric(frame[column]).astype("float64")
            elif kind in ("text", "bool") and column in frame:
                frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
        out[name] = frame.reset_index(drop=True)
    return out


def assert_same_tables(left: dict[str, pd.DataFrame], right: dict[str, pd.DataFrame],
                       tol: float = 1e-9) -> dict[str, int]:
    """Same tables, same keys and values (floats within `tol`, relative above 1); returns rows per table."""
    import numpy as np

    assert left.keys() == right.keys()
    counts = {}
    for name in left:
        a, b = left[name], right[name]
        assert len(a) == len(b), f"{name}: {len(a)} rows vs {len(b)}"
        for column in a.columns:
            x, y = a[column], b[column]
            if pd.api.types.is_float_dtype(x) and pd.api.types.is_float_dtype(y):
                xv, yv = x.to_numpy(float), y.to_numpy(float)
                same = (np.isnan(xv) & np.isnan(yv)) | (xv == yv) | (
                    np.abs(xv - yv) <= tol * np.maximum(1.0, np.abs(yv)))
                assert same.all(), f"{name}.{column}: {int((~same).sum())} values differ, first at row " \
                                   f"{int(np.flatnonzero(~same)[0])}: {xv[~same][0]!r} vs {yv[~same][0]!r}"
            else:
                differ = [i for i, (p, q) in enumerate(zip(x.tolist(), y.tolist())) if not _same_value(p, q, tol)]
                assert not differ, f"{name}.{column}: {len(differ)} values differ, first at row {differ[0]}: " \
                                   f"{x.iloc[differ[0]]!r} vs {y.iloc[differ[0]]!r}"
        counts[name] = len(a)
    return counts


def _same_value(p: object, q: object, tol: float) -> bool:
    """Equality for JSON-parsed values, with floats inside them compared to `tol`."""
    if _missing(p) and _missing(q):
        return True
    if isinstance(p, float) and isinstance(q, float):
        return (p != p and q != q) or abs(p - q) <= tol * max(1.0, abs(q))
    if isinstance(p, dict) and isinstance(q, dict):
        return p.keys() == q.keys() and all(_same_value(p[k], q[k], tol) for k in p)
    if isinstance(p, list) and isinstance(q, list):
        return len(p) == len(q) and all(_same_value(u, v, tol) for u, v in zip(p, q))
    if p is None or q is None:
        return p is None and q is None or _missing(p) and _missing(q)
    return p == q


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value is pd.NaT


def postgres_instance_env(postgres_url: str) -> dict[str, str]:
    """The DAGSTER_PG_* variables deploy/dagster.yaml reads, pointing at `postgres_url`'s database."""
    from urllib.parse import urlsplit

    parts = urlsplit(postgres_url)
    return {"DAGSTER_PG_HOST": parts.hostname or "localhost", "DAGSTER_PG_PORT": str(parts.port or 5432),
            "DAGSTER_PG_USER": parts.username or "postgres", "DAGSTER_PG_PASSWORD": parts.password or "",
            "DAGSTER_PG_DB": parts.path.lstrip("/")}


def upload_folder(folder: Path, bucket: str, prefix: str) -> int:
    """Create `bucket` (if needed) and upload every file under `folder` to s3://bucket/prefix/; returns the count."""
    import boto3

    client = boto3.client("s3")
    if bucket not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
        client.create_bucket(Bucket=bucket)
    files = [p for p in folder.rglob("*") if p.is_file()]
    for path in files:
        client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(folder).as_posix()}")
    return len(files)


def demo_returns(tickers: list[str], start: str, end: str) -> pd.DataFrame:
    """Daily simple returns (dates x tickers) of real demo-lake prices on [start, end]; the first day has none."""
    long = pd.concat(pd.read_parquet(DEMO_LAKE / "prices" / f"{n}.parquet", columns=["date", "ticker", "adj_close"])
                     for n in ("stocks", "etfs"))
    long["date"] = pd.to_datetime(long["date"])
    long = long[long["ticker"].isin(tickers) & long["date"].between(pd.Timestamp(start), pd.Timestamp(end))]
    wide = long.pivot(index="date", columns="ticker", values="adj_close")[list(tickers)]
    return wide.pct_change(fill_method=None).iloc[1:]
