"""The lake on S3 and the reports written to S3, against moto's S3 server over HTTP: the same tables as the local
lake; during an S3 outage the runs use the cached copies and say so in their metadata; with no cache they fail
with a clear message and write nothing."""

import time
import uuid

import boto3
import dagster as dg
import pytest

from tracking_pipeline.warehouse import open_warehouse
from tracking_pipeline_tests.helpers import (
    assert_same_tables, run_chain, run_job, table_snapshot, upload_folder,
)

START, END = "2018-06-25", "2018-08-31"
BUCKET = f"tracking-lake-{uuid.uuid4().hex[:8]}"  # moto keeps buckets per process, across tests


@pytest.fixture(autouse=True)
def history_from_start(tracking_env, monkeypatch):
    """The runs here begin at START: so do the partitions (a day's history never reaches before them)."""
    monkeypatch.setenv("TRACKING_PARTITIONS_START", START)


def _lake_warnings(result: dg.ExecuteInProcessResult, asset: str) -> list[str]:
    events = [e for e in result.get_asset_materialization_events()
              if e.asset_key == dg.AssetKey(asset)]
    assert events, f"{asset} was not materialized"
    texts = {str(e.materialization.metadata["lake_warnings"].value) for e in events
             if "lake_warnings" in e.materialization.metadata}
    return sorted(texts)


def _lake_relative(snapshot: dict, root: str) -> dict:
    """portfolio_definitions.config records the portfolio file's full location: make it lake-relative."""
    for config in snapshot["portfolio_definitions"]["config"]:
        config["file"] = config["file"].removeprefix(root.rstrip("/") + "/")
    return snapshot


def test_s3_lake_and_reports_end_to_end(tracking_env, s3_server, monkeypatch):
    defs = tracking_env.defs()
    run_chain(defs, tracking_env.instance, START, END)
    local = _lake_relative(table_snapshot(tracking_env.warehouse_handle()), str(tracking_env.lake))
    reports = tracking_env.root / "reports"
    local_reports = sorted(p.relative_to(reports).as_posix() for p in reports.rglob("*") if p.is_file())
    assert sum(name.endswith(".html") for name in local_reports) >= 2

    uploaded = upload_folder(tracking_env.lake, BUCKET, "lake")
    s3_warehouse = str(tracking_env.root / "s3_run.duckdb")
    monkeypatch.setenv("TRACKING_LAKE", f"s3://{BUCKET}/lake")
    monkeypatch.setenv("TRACKING_REPORTS", f"s3://{BUCKET}/reports")
    monkeypatch.setenv("TRACKING_WAREHOUSE", s3_warehouse)
    monkeypatch.setenv("TRACKING_LAKE_CACHE", str(tracking_env.root / "s3_cache"))
    defs = tracking_env.defs()
    wh = open_warehouse(s3_warehouse)
    assert "portfolios/alpha_momentum_10.yaml" in {c["file"] for c in local["portfolio_definitions"]["config"]}
    with dg.instance_for_test() as instance:
        t0 = time.monotonic()
        run_chain(defs, instance, START, END)
        s3_seconds = time.monotonic() - t0
        counts = assert_same_tables(_lake_relative(table_snapshot(wh), f"s3://{BUCKET}/lake"), local, tol=0.0)
        listing = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="reports/")
        assert sorted(o["Key"].split("/", 1)[1] for o in listing.get("Contents", [])) == local_reports
        index = boto3.client("s3").get_object(Bucket=BUCKET, Key="reports/index.html")["Body"].read().decode()
        assert "<html" in index.lower()

        s3_server.stop()
        outage = run_job(defs, "daily_assets_job", instance, START, END, raise_on_error=False)
        assert outage.success
        for asset in ("price_data", "market_features"):
            warnings = _lake_warnings(outage, asset)
            assert warnings and all(f"s3://{BUCKET}/lake" in w and "cached" in w for w in warnings), warnings
        assert_same_tables(_lake_relative(table_snapshot(wh), f"s3://{BUCKET}/lake"), local, tol=0.0)

        monkeypatch.setenv("TRACKING_LAKE_CACHE", str(tracking_env.root / "empty_cache"))
        no_cache = run_job(defs, "daily_assets_job", instance, START, END, raise_on_error=False)
        assert not no_cache.success
        failures = [e for e in no_cache.all_events if e.is_step_failure]
        assert [e.step_key for e in failures] == ["price_data"]
        message = failures[0].step_failure_data.error.to_string()
        assert f"s3://{BUCKET}/lake" in message and "unreachable" in message and "no cached" in message, message
        assert_same_tables(_lake_relative(table_snapshot(wh), f"s3://{BUCKET}/lake"), local, tol=0.0)
    print(f"s3: {uploaded} lake files, chain {s3_seconds:.1f}s, rows compared {sum(counts.values())}, "
          f"{len(local_reports)} report files")
