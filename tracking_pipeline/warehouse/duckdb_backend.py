"""DuckDB warehouse (the embedded default).

DuckDB allows one writing process per file. Every connection takes an exclusive advisory lock on `<file>.lock`
(fcntl.flock) for its life (one call, or one asset step's `Warehouse.session()`), so concurrent runs and processes
queue instead of failing with lock errors; within a run the in-process executor keeps steps sequential. A read-only
session takes the lock shared and attaches the file read-only: several processes may read at once (DuckDB allows
many read-only processes), never beside a writer.

A connection is the warehouse file ATTACHed to this process's one in-memory DuckDB instance and DETACHed at the
end (which releases DuckDB's own file lock like a close): creating an instance costs ~13 ms (DuckDB builds its
catalog of built-in functions), attaching a file ~1 ms, and a nightly run opens a connection per asset step.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from tracking_pipeline.warehouse.base import Warehouse
from tracking_pipeline.warehouse.schema import Table

DUCKDB_TYPES = {"date": "DATE", "text": "VARCHAR", "float": "DOUBLE", "int": "INTEGER", "bigint": "BIGINT",
                "bool": "BOOLEAN", "json": "JSON", "timestamp": "TIMESTAMP"}
LOCK_TIMEOUT_S = float(os.environ.get("TRACKING_DUCKDB_LOCK_TIMEOUT", "900"))

_engine: tuple[int, duckdb.DuckDBPyConnection] | None = None
_engine_lock = threading.Lock()
_aliases = itertools.count()


def _instance() -> duckdb.DuckDBPyConnection:
    """This process's in-memory DuckDB instance that warehouse files are attached to (a new one after a fork)."""
    global _engine
    with _engine_lock:
        if _engine is None or _engine[0] != os.getpid():
            _engine = (os.getpid(), duckdb.connect(":memory:"))
        return _engine[1]


class DuckDBWarehouse(Warehouse):
    dialect = "duckdb"
    sql_types = DUCKDB_TYPES

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = Path(path)

    def describe(self) -> str:
        return f"duckdb:{self.path.resolve()}"

    @contextmanager
    def _lock(self, shared: bool = False) -> Iterator[None]:
        """The file lock: exclusive, or shared with other readers (`shared`)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{self.path}.lock", "a+") as handle:
            deadline = time.monotonic() + LOCK_TIMEOUT_S
            while True:
                try:
                    fcntl.flock(handle, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"DuckDB warehouse {self.path} stayed locked for {LOCK_TIMEOUT_S:.0f}s")
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextmanager
    def _open(self, read_only: bool = False) -> Iterator[Any]:
        with self._lock(shared=read_only):
            alias = f"warehouse_{next(_aliases)}"
            path = str(self.path).replace("'", "''")
            conn = _instance().cursor()  # a connection of its own to the shared instance (one per thread)
            try:
                conn.execute(f"ATTACH '{path}' AS {alias}{' (READ_ONLY)' if read_only else ''}")
            except BaseException:
                conn.close()
                raise
            try:
                conn.execute(f"USE {alias}")
                yield conn
            finally:
                conn.close()  # ends any open transaction, so the file can be detached
                detach = _instance().cursor()
                try:
                    detach.execute(f"DETACH {alias}")
                finally:
                    detach.close()

    def _begin(self, conn: Any) -> None:
        conn.begin()

    def _insert(self, conn: Any, table: Table, frame: pd.DataFrame) -> None:
        # No try/finally around the INSERT: after a failed statement DuckDB rejects every call (unregister
        # included) until ROLLBACK, which would mask the real error; the next register replaces the view anyway.
        conn.register("_incoming", frame)
        cols = ", ".join(table.column_names)
        conn.execute(f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM _incoming")
        conn.unregister("_incoming")

    def _fetch(self, conn: Any, sql: str, params: Sequence[Any]) -> pd.DataFrame:
        return conn.execute(sql, list(params)).df()

    def _fetch_arrow(self, conn: Any, sql: str, params: Sequence[Any]) -> pa.Table:
        return conn.sql(sql, params=list(params)).to_arrow_table()

    def _execute(self, conn: Any, sql: str, params: Sequence[Any]) -> None:
        conn.execute(sql, list(params))

    def _row_hash_sql(self, columns: Sequence[str]) -> str:
        return f"hash({', '.join(columns)})"
