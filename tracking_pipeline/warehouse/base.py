"""One warehouse interface; DuckDB and PostgreSQL implement it (see duckdb_backend.py, postgres_backend.py)."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from tracking_pipeline.warehouse.schema import BOOL, DATE, FLOAT, JSON, TABLES, TIMESTAMP, Table


EXISTING_COLUMNS_SQL = ("SELECT table_name, column_name FROM information_schema.columns "
                       "WHERE table_catalog = current_database() AND table_schema = current_schema()")
"""The columns of the warehouse's tables (same text on DuckDB and PostgreSQL)."""


@dataclass(frozen=True)
class Write:
    """Replace the rows of `table` selected by `scope` with `frame`, atomically.

    scope maps a column to a (low, high) inclusive range (a tuple) or to a list of values; None or {} replaces
    the whole table. Every row of `frame` must fall inside the scope, so a re-run never duplicates.
    """

    table: str
    frame: pd.DataFrame
    scope: dict[str, Any] | None = field(default=None)


def scope_clause(scope: dict[str, Any] | None) -> tuple[str, list[Any]]:
    """SQL WHERE text (with ? placeholders) and parameters for a write scope."""
    if not scope:
        return "TRUE", []
    parts, params = [], []
    for column, value in scope.items():
        if isinstance(value, tuple):
            parts.append(f"{column} BETWEEN ? AND ?")
            params.extend(value)
        else:
            values = list(value)
            if not values:
                return "FALSE", []
            parts.append(f"{column} IN ({', '.join('?' for _ in values)})")
            params.extend(values)
    return " AND ".join(parts), params


JSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
"""Keys sorted (the same value always gives the same text), numpy scalars and arrays as numbers."""


def _json_text(value: Any) -> str | None:
    """A JSON column's text: None for a missing value, a str as given, anything else encoded by orjson (about ten
    times `json.dumps`: the snapshots' JSON columns were most of their write). A float that is not finite is written
    as null, as JSON has no NaN; dates and timestamps as ISO 8601."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        return value
    return orjson.dumps(value, default=_json_default, option=JSON_OPTIONS).decode("utf-8")


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def conform(table: Table, frame: pd.DataFrame) -> pd.DataFrame:
    """Put a frame in the table's column order and storage types (JSON as text, dates as date, NaN as NULL)."""
    unknown = set(frame.columns) - set(table.column_names)
    if unknown:
        raise ValueError(f"{table.name}: unknown columns {sorted(unknown)}")
    out = pd.DataFrame(index=range(len(frame)))
    for column, kind in table.columns:
        values = frame[column].reset_index(drop=True) if column in frame else pd.Series([None] * len(frame))
        if kind == JSON:
            values = values.map(_json_text).astype(object)
        elif kind == DATE:
            values = pd.to_datetime(values).dt.date.astype(object)
        elif kind == TIMESTAMP:
            values = pd.to_datetime(values)
        elif kind == BOOL:
            values = values.astype(object).where(values.notna(), None)
        out[column] = values
    return out


class Warehouse(ABC):
    """Tables created on first use; partition writes replace their rows in one transaction."""

    dialect: str

    def __init__(self) -> None:
        self._schema_ready = False
        self._held: Any = None

    def __getstate__(self) -> dict[str, Any]:
        """A copy for another process (e.g. a report worker): the same warehouse, without this one's connection."""
        return {**self.__dict__, "_held": None}

    # --- backend hooks -------------------------------------------------------------------------------------
    @abstractmethod
    @contextmanager
    def _open(self, read_only: bool = False) -> Iterator[Any]:
        """A new DB-API style connection (DuckDB: with the file lock held, shared when `read_only`), closed on
        exit."""

    def _begin(self, conn: Any) -> None:
        """Start a write transaction (psycopg2 is always in one; DuckDB overrides)."""

    @contextmanager
    def _connection(self, write: bool) -> Iterator[Any]:
        """The session's connection, else a new one; for write=True the caller commits or rolls back."""
        if self._held is not None:
            if write:
                self._begin(self._held)
            yield self._held
            return
        with self._open() as conn:
            if write:
                self._begin(conn)
            yield conn

    @contextmanager
    def session(self, read_only: bool = False) -> Iterator["Warehouse"]:
        """Keep one connection open for every call made inside (an asset step's reads, writes and checks) instead
        of connecting for each (a nightly run makes ~150 calls). For DuckDB the file lock is held for the
        session, so other processes queue for its length. Re-entrant.

        A `read_only` session (the report's workers) may only read: on DuckDB it takes the lock shared and attaches
        the file read-only, so read-only sessions of several processes run side by side while writers wait for
        them (and they for writers)."""
        if self._held is not None:
            yield self
            return
        if read_only:
            self.ensure_schema()  # a read-only connection cannot create a missing table
        with self._open(read_only) as conn:
            self._held = conn
            try:
                self.ensure_schema()
                yield self
            finally:
                self._held = None

    sql_types: dict[str, str]

    def _create_table_sql(self, table: Table) -> str:
        """CREATE TABLE for a declared table in this backend's SQL types."""
        cols = ", ".join(f"{c} {self.sql_types[t]}" for c, t in table.columns)
        return f"CREATE TABLE IF NOT EXISTS {table.name} ({cols}, PRIMARY KEY ({', '.join(table.key)}))"

    @abstractmethod
    def _insert(self, conn: Any, table: Table, frame: pd.DataFrame) -> None: ...

    @abstractmethod
    def _fetch(self, conn: Any, sql: str, params: Sequence[Any]) -> pd.DataFrame: ...

    @abstractmethod
    def _execute(self, conn: Any, sql: str, params: Sequence[Any]) -> None: ...

    @abstractmethod
    def _row_hash_sql(self, columns: Sequence[str]) -> str:
        """A SQL expression: a 64-bit integer hash of a row's `columns` (NULLs included)."""

    @abstractmethod
    def describe(self) -> str:
        """Where the warehouse is, safe to print (no credentials)."""

    # --- public API ------------------------------------------------------------------------------------------
    def ensure_schema(self) -> None:
        """Create every declared table that does not exist yet, and add the declared columns that a table created
        by an earlier version lacks (they start NULL; only missing columns are altered, so no lock is taken on an
        up-to-date warehouse)."""
        if self._schema_ready:
            return
        with self._connection(write=True) as conn:
            present = self._fetch(conn, EXISTING_COLUMNS_SQL, [])
            have = {(str(t).lower(), str(c).lower()) for t, c in present.itertuples(index=False, name=None)}
            existing = {t for t, _ in have}
            for table in TABLES.values():
                self._execute(conn, self._create_table_sql(table), [])
                for column, kind in table.columns:
                    if table.name in existing and (table.name, column) not in have:
                        self._execute(conn, f"ALTER TABLE {table.name} ADD COLUMN IF NOT EXISTS {column} "
                                            f"{self.sql_types[kind]}", [])
            conn.commit()
        self._schema_ready = True

    def replace(self, *writes: Write, before_commit: Any = None) -> dict[str, int]:
        """Apply the writes in one transaction: all rows replaced, or (on any error) none.

        `before_commit` is a hook called inside the transaction after the new rows are in (used by the
        atomicity tests to inject a failure)."""
        self.ensure_schema()
        prepared = [(TABLES[w.table], conform(TABLES[w.table], w.frame), w.scope) for w in writes]
        for table, frame, scope in prepared:
            _check_in_scope(table, frame, scope)
        counts: dict[str, int] = {}
        with self._connection(write=True) as conn:
            try:
                for table, frame, scope in prepared:
                    where, params = scope_clause(scope)
                    self._execute(conn, f"DELETE FROM {table.name} WHERE {where}", params)
                    if len(frame):
                        self._insert(conn, table, frame)
                    counts[table.name] = counts.get(table.name, 0) + len(frame)
                if before_commit is not None:
                    before_commit()
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
        return counts

    def query(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        """Run a SELECT written with ? placeholders; DATE columns come back as datetime64."""
        self.ensure_schema()
        with self._connection(write=False) as conn:
            frame = self._fetch(conn, sql, list(params))
        return _normalise_dates(frame)

    def query_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        """`query` as an Arrow table, for large reads that are reshaped at once (price history): no pandas frame
        and no Python string per row."""
        self.ensure_schema()
        with self._connection(write=False) as conn:
            return self._fetch_arrow(conn, sql, list(params))

    def _fetch_arrow(self, conn: Any, sql: str, params: Sequence[Any]) -> pa.Table:
        """The query's rows as Arrow (this default converts the pandas result; DuckDB exports Arrow natively)."""
        return pa.Table.from_pandas(_normalise_dates(self._fetch(conn, sql, params)), preserve_index=False)

    def read_table(self, name: str, where: str = "TRUE", params: Sequence[Any] = (),
                   order_by: str | None = None, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The columns of a declared table (all, or `columns` in table order), optionally filtered and ordered."""
        table = TABLES[name]
        names = table.pick(columns)
        order = f" ORDER BY {order_by}" if order_by else f" ORDER BY {', '.join(table.key)}"
        frame = self.query(f"SELECT {', '.join(names)} FROM {name} WHERE {where}{order}", params)
        for column, kind in table.columns:
            if column not in frame.columns:
                continue
            if kind == FLOAT:
                frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
            elif kind == DATE:
                frame[column] = pd.to_datetime(frame[column]).astype("datetime64[ns]")
        return frame

    def day_digests(self, table: str, date_column: str, columns: Sequence[str], where: str = "TRUE",
                    params: Sequence[Any] = ()) -> pd.DataFrame:
        """Per date of the rows of `table` matching `where`: `day`, `n` (rows) and `digest`, the XOR of the rows'
        hashes of `columns` (order-free), computed in the database: which days' rows changed, without reading
        them (`asset_correlations` reads only the prices of the dates it recomputes)."""
        return self.query(f"SELECT {date_column} AS day, COUNT(*) AS n, bit_xor({self._row_hash_sql(columns)}) "
                          f"AS digest FROM {table} WHERE {where} GROUP BY 1 ORDER BY 1", params)

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        frame = self.query(sql, params)
        return None if frame.empty else frame.iat[0, 0]


def _check_in_scope(table: Table, frame: pd.DataFrame, scope: dict[str, Any] | None) -> None:
    if not scope or frame.empty:
        return
    for column, value in scope.items():
        col = frame[column]
        if isinstance(value, tuple):
            lo, hi = value
            if table.column_type(column) == DATE:
                col, lo, hi = pd.to_datetime(col), pd.Timestamp(lo), pd.Timestamp(hi)
            outside = (col < lo) | (col > hi)
        else:
            values = list(value)
            if table.column_type(column) == DATE:
                col, values = pd.to_datetime(col), pd.to_datetime(values)
            outside = ~col.isin(values)
        if outside.any():
            raise ValueError(f"{table.name}: {int(outside.sum())} rows outside the write scope on {column}")


def _normalise_dates(frame: pd.DataFrame) -> pd.DataFrame:
    import datetime as dt

    for column in frame.columns:
        if frame[column].dtype == object:
            first = frame[column].dropna()
            if len(first) and isinstance(first.iloc[0], dt.date) and not isinstance(first.iloc[0], dt.datetime):
                frame[column] = pd.to_datetime(frame[column])
    return frame
