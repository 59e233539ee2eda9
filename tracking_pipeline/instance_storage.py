"""The embedded Dagster instance's storage: Dagster's own SQLite storage (same files under DAGSTER_HOME) whose event
log also writes a batch of asset events at once, as dagster-postgres does.

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
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage, _event_logs_directory
from dagster._serdes import ConfigurableClassData

BATCHED_TYPES = ({DagsterEventType.ASSET_MATERIALIZATION}, {DagsterEventType.ASSET_OBSERVATION},
                 {DagsterEventType.ASSET_MATERIALIZATION_PLANNED})
"""Batches written at once: one kind of asset event (a range run plans, then records, one event per partition)."""


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """SqliteEventLogStorage with `store_event_batch` for batches of one run's asset events of one kind: the rows
    `store_event` writes for each (run shard, index shard, asset event tags), the asset table from each asset's
    last event of the batch (what one-by-one writes leave)."""

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        types = {event.dagster_event_type for event in events}
        if (not events or types not in BATCHED_TYPES or len({event.run_id for event in events}) != 1
                or not all(event.dagster_event and event.dagster_event.asset_key for event in events)):
            super().store_event_batch(events)
            return
        rows = [self._event_to_row(event) for event in events]
        with self.run_connection(events[0].run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)
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
