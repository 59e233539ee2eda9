"""The Dagster instance's storage: Dagster's own SQLite storage (embedded: same files under DAGSTER_HOME) and
dagster-postgres' storage (production), whose event logs write a batch of asset events of any kind at once.

A range run records two events per partition per asset (materialization planned, materialization). Dagster's SQLite
event log stores each alone: a new engine and two committed transactions (the run's shard and the cross-run index
shard), ~10-17 ms per event, so a 1,466-day demo's 15 daily assets spent minutes on bookkeeping. With
DAGSTER_EVENT_BATCH_SIZE set (the CLI sets 1000) Dagster hands the event log batches of one kind of asset event;
this storage writes such a batch in one transaction per shard: the same rows and asset index as one-by-one writes
(tested). Any other batch falls back to Dagster's one-by-one writes.

The embedded dagster.yaml selects it through `instance_class: TrackingInstance`, a DagsterInstance whose default
storage (no `storage:` key) is this one under the instance's own directory, wherever that is (DAGSTER_HOME,
`DagsterInstance.from_config(dir)`, or the temporary home of `dagster dev` without DAGSTER_HOME), as Dagster's
default SQLite storage is. A `storage:` key (e.g. PostgreSQL) still replaces it.

dagster-postgres batches materializations and observations but stores each planned event alone (an INSERT and an
index transaction: ~75,000 of them in a 20-year backfill of the daily assets); deploy/dagster.yaml selects
`BatchedPostgresStorage` (`storage: custom`, same `postgres_db` config), whose event log batches those too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from dagster import DagsterInstance, Field, StringSource
from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage, _event_logs_directory
from dagster._serdes import ConfigurableClassData
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.storage import DagsterPostgresStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

BATCHED_TYPES = ({DagsterEventType.ASSET_MATERIALIZATION}, {DagsterEventType.ASSET_OBSERVATION},
                 {DagsterEventType.ASSET_MATERIALIZATION_PLANNED})
"""Batches written at once: one kind of asset event (a range run plans, then records, one event per partition)."""


def _one_kind_of_asset_events(events: Sequence[EventLogEntry]) -> bool:
    """Whether a batch is one run's asset events of one batched kind (what the batched path writes)."""
    return (bool(events) and {event.dagster_event_type for event in events} in BATCHED_TYPES
            and len({event.run_id for event in events}) == 1
            and all(event.dagster_event and event.dagster_event.asset_key for event in events))


class AssetEventBatches(SqlEventLogStorage):
    """`store_event_batch` for batches of one run's asset events of one kind: the rows `store_event` writes for
    each (run shard where there is one, the index, asset event tags) and the asset table from each asset's last
    event of the batch (what one-by-one writes leave), in one transaction on the index."""

    def _store_in_run_shard(self, run_id: str, rows: list[dict[str, Any]]) -> None:
        """Write the batch's rows where the run's own events live, when that is not the index (SQLite's shards)."""

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        if not _one_kind_of_asset_events(events):
            super().store_event_batch(events)
            return
        rows = [self._event_to_row(event) for event in events]
        self._store_in_run_shard(events[0].run_id, rows)
        with self.index_transaction() as conn:
            inserted = conn.execute(
                SqlEventLogStorageTable.insert().returning(SqlEventLogStorageTable.c.id, sort_by_parameter_order=True),
                rows)
            event_ids = [int(row[0]) for row in inserted]
            self._store_asset_event_tags(conn, events, event_ids)
            last: dict[str, tuple[EventLogEntry, int]] = {}
            for event, event_id in zip(events, event_ids):
                last[event.get_dagster_event().asset_key.to_string()] = (event, event_id)
            for event, event_id in last.values():
                self._store_asset_event(conn, event, event_id)


class BatchedSqliteEventLogStorage(AssetEventBatches, SqliteEventLogStorage):
    """Dagster's SQLite event log (a shard per run plus the cross-run index) with batched asset events."""

    def _store_in_run_shard(self, run_id: str, rows: list[dict[str, Any]]) -> None:
        with self.run_connection(run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)


class BatchedSqliteStorage(DagsterSqliteStorage):
    """DagsterSqliteStorage (runs, event log and schedules under `base_dir`, the layout of Dagster's default) with
    the batched event log."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        super().__init__(base_dir, inst_data)
        self._event_log_storage = BatchedSqliteEventLogStorage(_event_logs_directory(base_dir))

    @classmethod
    def config_type(cls) -> Mapping[str, Any]:
        return {"base_dir": Field(StringSource)}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None,  # type: ignore[override]
                          config_value: Mapping[str, Any]) -> BatchedSqliteStorage:
        return cls(config_value["base_dir"], inst_data=inst_data)


class TrackingInstance(DagsterInstance):
    """Dagster's instance with `BatchedSqliteStorage` as the default storage under the instance's directory."""

    @classmethod
    def config_schema(cls) -> Mapping[str, Any]:
        return {}

    @staticmethod
    def config_defaults(base_dir: str) -> Mapping[str, ConfigurableClassData | None]:
        return {**InstanceRef.config_defaults(base_dir),
                "storage": ConfigurableClassData(__name__, BatchedSqliteStorage.__name__,
                                                 yaml.dump({"base_dir": base_dir}, default_flow_style=False))}


class BatchedPostgresEventLogStorage(AssetEventBatches, PostgresEventLogStorage):
    """dagster-postgres' event log with batched asset events of every kind: its own batch path takes only
    materializations and observations, so a range run's ~2 x days x assets planned events went one INSERT (and one
    index transaction) each."""


class BatchedPostgresStorage(DagsterPostgresStorage):
    """`storage: postgres` (runs, event log, schedules in one database) with the batched event log; selected in
    deploy/dagster.yaml as `storage: custom` with the same `postgres_db` config. (The event log dagster-postgres'
    constructor builds first is dropped unused: ~9 ms per instance, less than copying that constructor.)"""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True,
                 inst_data: ConfigurableClassData | None = None, token_provider: Any = None) -> None:
        super().__init__(postgres_url, should_autocreate_tables, inst_data, token_provider)
        self._event_log_storage = BatchedPostgresEventLogStorage(postgres_url, should_autocreate_tables,
                                                                 token_provider=token_provider)

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None,  # type: ignore[override]
                          config_value: Mapping[str, Any]) -> BatchedPostgresStorage:
        return cls(pg_url_from_config(config_value), config_value.get("should_autocreate_tables", True),
                   inst_data=inst_data, token_provider=get_token_provider_from_config(config_value))
