"""The batched event logs (tracking_pipeline/instance_storage.py) store exactly what Dagster's own event logs store
one event at a time: on SQLite (the embedded instance) same rows in the run's shard and in the cross-run index
(types, assets, partitions, order), same asset event tags, same asset table, same materialized partitions; on
PostgreSQL (deploy/dagster.yaml) the same against dagster-postgres' storage."""

import json
import shutil
import sqlite3
from pathlib import Path

import dagster as dg
import pytest
import yaml

from tracking_pipeline.instance_storage import BatchedPostgresEventLogStorage, BatchedSqliteEventLogStorage
from tracking_pipeline.warehouse.postgres_backend import scratch_database
from tracking_pipeline_tests.conftest import DEPLOY_INSTANCE_YAML, POSTGRES_ADMIN_URL
from tracking_pipeline_tests.helpers import postgres_instance_env

REPO = Path(__file__).resolve().parent.parent
PARTITIONS = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-04-10")


@dg.multi_asset(specs=[dg.AssetSpec("prices"), dg.AssetSpec("navs")], partitions_def=PARTITIONS,
                backfill_policy=dg.BackfillPolicy.single_run())
def prices_and_navs(context: dg.AssetExecutionContext):
    for key in sorted(context.selected_asset_keys):
        yield dg.MaterializeResult(asset_key=key, metadata={"rows": 3}, data_version=dg.DataVersion("v1"))


JOB = dg.define_asset_job("range_job", selection=[prices_and_navs])
DEFS = dg.Definitions(assets=[prices_and_navs], jobs=[JOB])


def _run(home: Path, monkeypatch: pytest.MonkeyPatch, start: str, end: str) -> dg.DagsterInstance:
    monkeypatch.setenv("DAGSTER_HOME", str(home.parent / "elsewhere"))  # the storage follows the config's directory
    instance = dg.DagsterInstance.from_config(str(home))
    result = DEFS.resolve_job_def("range_job").execute_in_process(
        instance=instance, tags={"dagster/asset_partition_range_start": start,
                                 "dagster/asset_partition_range_end": end})
    assert result.success
    return instance


def _rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def _spy_on_single_writes(monkeypatch: pytest.MonkeyPatch, storage: type) -> list[str]:
    """The planned or recorded materializations `storage` writes one at a time (it still writes them)."""
    singles: list[str] = []
    one_by_one = storage.store_event

    def spy(self, event):  # noqa: ANN001, ANN202
        if event.dagster_event_type and event.dagster_event_type.value.startswith("ASSET_MATERIALIZATION"):
            singles.append(event.dagster_event_type.value)
        return one_by_one(self, event)

    monkeypatch.setattr(storage, "store_event", spy)
    return singles


def _events(db: Path) -> list[tuple]:
    """(type, asset, partition, step) of every event in id order: what the shard indexes."""
    return _rows(db, "SELECT dagster_event_type, asset_key, partition, step_key FROM event_logs ORDER BY id")


def _pg_rows(url: str, sql: str) -> list[tuple]:
    import psycopg2

    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def _asset_table(db: Path | str) -> list[tuple]:
    """Each asset's last materialization (its partition and whether it points at a stored event of that asset), in a
    SQLite index shard (a path) or a PostgreSQL database (a URL)."""
    rows = _pg_rows if isinstance(db, str) else _rows
    out = []
    for key, last, run_id in rows(db, "SELECT asset_key, last_materialization, last_run_id FROM asset_keys "
                                      "ORDER BY asset_key"):
        storage_id = json.loads(last)["storage_id"]
        [(stored_key, stored_partition)] = rows(db, f"SELECT asset_key, partition FROM event_logs WHERE id = {storage_id}")
        out.append((key, stored_key, stored_partition, run_id is not None))
    return out


def test_batched_event_log_stores_what_one_by_one_writes_store(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "40")  # batches of 40 events: several per asset and kind
    plain, batched = tmp_path / "plain", tmp_path / "batched"
    plain.mkdir()
    batched.mkdir()
    (plain / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")  # Dagster's default SQLite storage
    shutil.copy(REPO / "dagster.yaml", batched / "dagster.yaml")

    singles = _spy_on_single_writes(monkeypatch, BatchedSqliteEventLogStorage)
    instances = {}
    for home in (plain, batched):
        for start, end in (("2024-01-01", "2024-02-29"), ("2024-03-01", "2024-04-09")):  # two range runs
            instances[home] = _run(home, monkeypatch, start, end)
    assert isinstance(instances[batched].event_log_storage, BatchedSqliteEventLogStorage)
    assert not isinstance(instances[plain].event_log_storage, BatchedSqliteEventLogStorage)
    assert not (tmp_path / "elsewhere").exists()
    assert singles == []  # every planned and recorded materialization went through store_event_batch

    index = {home: home / "history" / "runs" / "index.db" for home in (plain, batched)}
    events = _events(index[plain])
    assert events == _events(index[batched])
    kinds = [e[0] for e in events]
    assert kinds.count("ASSET_MATERIALIZATION") == 2 * 100 and kinds.count("ASSET_MATERIALIZATION_PLANNED") >= 2
    assert _rows(index[plain], "SELECT COUNT(*) FROM asset_event_tags")[0][0] > 0
    tags = "SELECT asset_key, key, value FROM asset_event_tags ORDER BY event_id, key"
    assert _rows(index[plain], tags) == _rows(index[batched], tags)
    assert _asset_table(index[plain]) == _asset_table(index[batched])
    assert [row[2] for row in _asset_table(index[batched])] == ["2024-04-09", "2024-04-09"]

    for home in (plain, batched):  # each run's own shard
        runs = instances[home].get_runs(ascending=True)
        assert len(runs) == 2
    shards = [[_events(home / "history" / "runs" / f"{run.run_id}.db")
               for run in instances[home].get_runs(ascending=True)] for home in (plain, batched)]
    assert shards[0] == shards[1]

    for key in ("prices", "navs"):
        asset = dg.AssetKey(key)
        expected = set(PARTITIONS.get_partition_keys())
        assert instances[plain].get_materialized_partitions(asset) == expected
        assert instances[batched].get_materialized_partitions(asset) == expected
        latest = instances[batched].get_latest_materialization_event(asset)
        assert latest.dagster_event.partition == "2024-04-09"
        assert latest.run_id == instances[batched].get_runs(limit=1)[0].run_id
    for instance in instances.values():
        instance.dispose()


def test_batched_postgres_event_log_stores_what_dagster_postgres_stores(postgres_url, tmp_path, monkeypatch):
    """deploy/dagster.yaml's storage writes planned materializations in batches too, and leaves the same rows as
    dagster-postgres' own storage (which writes them one by one)."""
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "40")
    plain, batched = tmp_path / "plain", tmp_path / "batched"
    plain.mkdir()
    batched.mkdir()
    deploy = yaml.safe_load(DEPLOY_INSTANCE_YAML.read_text())
    assert deploy["storage"]["custom"]["class"] == "BatchedPostgresStorage"
    (plain / "dagster.yaml").write_text(yaml.safe_dump(  # dagster-postgres' storage, same connection fields
        {"storage": {"postgres": deploy["storage"]["custom"]["config"]}}))
    shutil.copy(DEPLOY_INSTANCE_YAML, batched / "dagster.yaml")
    singles = _spy_on_single_writes(monkeypatch, BatchedPostgresEventLogStorage)
    instances, urls = {}, {batched: postgres_url}
    with scratch_database(POSTGRES_ADMIN_URL, "tp_test") as plain_url:
        urls[plain] = plain_url
        for home in (plain, batched):
            for name, value in postgres_instance_env(urls[home]).items():
                monkeypatch.setenv(name, value)
            for start, end in (("2024-01-01", "2024-02-29"), ("2024-03-01", "2024-04-09")):
                instances[home] = _run(home, monkeypatch, start, end)
        assert isinstance(instances[batched].event_log_storage, BatchedPostgresEventLogStorage)
        assert not isinstance(instances[plain].event_log_storage, BatchedPostgresEventLogStorage)
        assert singles == []  # every planned and recorded materialization went through store_event_batch

        events = "SELECT dagster_event_type, asset_key, partition, step_key FROM event_logs ORDER BY id"
        plain_events = _pg_rows(plain_url, events)
        assert plain_events == _pg_rows(postgres_url, events)
        kinds = [e[0] for e in plain_events]
        assert kinds.count("ASSET_MATERIALIZATION") == 2 * 100 and kinds.count("ASSET_MATERIALIZATION_PLANNED") >= 2
        tags = "SELECT asset_key, key, value FROM asset_event_tags ORDER BY event_id, key"
        plain_tags = _pg_rows(plain_url, tags)
        assert plain_tags and plain_tags == _pg_rows(postgres_url, tags)
        assert _asset_table(plain_url) == _asset_table(postgres_url)
        assert [row[2] for row in _asset_table(postgres_url)] == ["2024-04-09", "2024-04-09"]
        for key in ("prices", "navs"):
            asset = dg.AssetKey(key)
            expected = set(PARTITIONS.get_partition_keys())
            assert instances[plain].get_materialized_partitions(asset) == expected
            assert instances[batched].get_materialized_partitions(asset) == expected
        for instance in instances.values():
            instance.dispose()
