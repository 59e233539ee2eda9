"""PostgreSQL warehouse (production). Rows are loaded with COPY inside the replacing transaction."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import adbc_driver_postgresql.dbapi as adbc
import numpy as np
import pandas as pd
import psycopg2
import psycopg2.extensions
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from tracking_pipeline.warehouse.base import Warehouse
from tracking_pipeline.warehouse.schema import BIGINT, BOOL, DATE, FLOAT, INT, TIMESTAMP, Table

POSTGRES_TYPES = {"date": "DATE", "text": "TEXT", "float": "DOUBLE PRECISION", "int": "INTEGER",
                  "bigint": "BIGINT", "bool": "BOOLEAN", "json": "JSONB", "timestamp": "TIMESTAMP"}

COPY_ROWS = 100_000
ARROW_TYPES = {16: pa.bool_(), 20: pa.int64(), 21: pa.int32(), 23: pa.int32(), 700: pa.float64(),
               701: pa.float64(), 1082: pa.date32(), 1114: pa.timestamp("us"), 25: pa.string(), 1043: pa.string(),
               3802: pa.string(), 1700: pa.float64()}
"""Arrow type per PostgreSQL type OID of a query's columns (anything else is read as text)."""


def _dsn(url: str) -> str:
    """psycopg2 DSN from a postgresql:// or postgresql+psycopg2:// URL."""
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql://", url)


class _Connection(psycopg2.extensions.connection):
    """psycopg2's connection (statements, writes, COPY in), and for a session's reads an ADBC connection to the same
    database, opened on the first read (its connect costs ~70 ms, so one per session, not per call) in autocommit
    (no transaction left open): it returns a result as Arrow from a binary COPY decoded in C, where COPY as CSV
    made the server print every float and Arrow parse it back (a 20-year price history: half the time)."""

    uri = ""
    _reader: Any = None

    def reader(self) -> Any:
        if self._reader is None:
            self._reader = adbc.connect(self.uri, autocommit=True)
        return self._reader

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        super().close()


class PostgresWarehouse(Warehouse):
    dialect = "postgres"
    sql_types = POSTGRES_TYPES

    def __init__(self, url: str) -> None:
        super().__init__()
        self._dsn = _dsn(url)

    def describe(self) -> str:
        parts = urlsplit(self._dsn)
        host = parts.hostname or "localhost"
        port = f":{parts.port}" if parts.port else ""
        user = f"{parts.username}@" if parts.username else ""
        return urlunsplit((parts.scheme, f"{user}{host}{port}", parts.path, "", ""))

    @contextmanager
    def _open(self, read_only: bool = False) -> Iterator[Any]:
        """A connection (PostgreSQL's MVCC lets readers and writers run side by side: `read_only` changes
        nothing)."""
        conn = psycopg2.connect(self._dsn, connection_factory=_Connection)
        conn.uri = self._dsn
        try:
            yield conn
        finally:
            conn.close()

    def _insert(self, conn: Any, table: Table, frame: pd.DataFrame) -> None:
        """COPY in slices of COPY_ROWS rows (the CSV text of one slice at a time)."""
        cols = ", ".join(table.column_names)
        with conn.cursor() as cur:
            for first in range(0, len(frame), COPY_ROWS):
                buffer = io.BytesIO(_copy_csv(table, frame.iloc[first:first + COPY_ROWS]))
                cur.copy_expert(f"COPY {table.name} ({cols}) FROM STDIN WITH (FORMAT csv)", buffer)

    def _fetch_arrow(self, conn: Any, sql: str, params: Sequence[Any]) -> pa.Table:
        """The rows as Arrow, no Python object per cell (a large price history read as rows of tuples takes
        several times its size): in a session through its ADBC reader (binary COPY; committed rows, as every
        write commits before it returns), else COPY (query) TO STDOUT as CSV parsed by Arrow with the query's
        column types (a one-off call does not pay the reader's connect)."""
        with conn.cursor() as cur:
            query = cur.mogrify(_placeholders(sql), list(params)).decode()
            if conn is self._held:
                with conn.reader().cursor() as reader:
                    reader.execute(query)
                    return _conformed(reader.fetch_arrow_table())
            cur.execute(f"SELECT * FROM ({query}) AS q LIMIT 0")
            types = {d.name: ARROW_TYPES.get(d.type_code, pa.string()) for d in cur.description}
            buffer = io.BytesIO()
            cur.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER)", buffer)
        conn.rollback()
        buffer.seek(0)
        options = pacsv.ConvertOptions(column_types=types, null_values=[""], strings_can_be_null=True,
                                       quoted_strings_can_be_null=False,
                                       true_values=["t"], false_values=["f"])
        return pacsv.read_csv(buffer, convert_options=options)

    def _fetch(self, conn: Any, sql: str, params: Sequence[Any]) -> pd.DataFrame:
        """The rows through `_fetch_arrow` (a history read as Python tuples took twice as long and more memory)."""
        return _frame(self._fetch_arrow(conn, sql, params))

    def _execute(self, conn: Any, sql: str, params: Sequence[Any]) -> None:
        with conn.cursor() as cur:
            cur.execute(_placeholders(sql), list(params))

    def _row_hash_sql(self, columns: Sequence[str]) -> str:
        """The columns as text (float8 in its shortest exact form; NULL as chr(30)), joined by chr(31)."""
        texts = ", ".join(f"COALESCE(CAST({c} AS TEXT), chr(30))" for c in columns)
        return f"hashtextextended(concat_ws(chr(31), {texts}), 0)"


@contextmanager
def scratch_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A new, empty database on the server of `admin_url` (for tests and benchmarks), dropped on exit; yields
    its URL (same scheme and credentials as `admin_url`)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(_dsn(admin_url))
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name}")
        try:
            yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
        finally:
            with admin.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        admin.close()


def _conformed(table: pa.Table) -> pa.Table:
    """ADBC's columns typed as the CSV path types them (`ARROW_TYPES`): numeric as float64, json and jsonb as
    text, smallint as int32, real as float64 (the rest: date32, int32/int64, float64, bool, text, timestamp)."""
    columns = []
    for field, column in zip(table.schema, table.columns):
        kind = (field.metadata or {}).get(b"POSTGRESQL:type", b"")
        if isinstance(field.type, pa.BaseExtensionType):
            column = pa.chunked_array([chunk.storage for chunk in column.chunks], type=field.type.storage_type)
        if kind == b"numeric" or pa.types.is_float32(column.type):
            column = pc.cast(column, pa.float64())
        elif pa.types.is_int16(column.type):
            column = pc.cast(column, pa.int32())
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def _frame(table: pa.Table) -> pd.DataFrame:
    """Arrow rows as the frame DuckDB gives: numbers, text and booleans typed (integers and booleans with NULLs
    as pandas' nullable types), dates as `datetime.date` (turned into datetime64 by `query`)."""
    columns = []
    for column in table.columns:
        nullable = column.null_count and (pa.types.is_integer(column.type) or pa.types.is_boolean(column.type))
        columns.append(pd.Series(pd.array(column.to_pylist(), dtype="Int64" if pa.types.is_integer(column.type)
                                          else "boolean")) if nullable else column.to_pandas())
    frame = pd.concat(columns, axis=1, ignore_index=True) if columns else pd.DataFrame()
    frame.columns = table.column_names
    return frame


def _placeholders(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


def _copy_csv(table: Table, frame: pd.DataFrame) -> bytes:
    """COPY ... CSV bytes for a conformed frame, written by Arrow's CSV writer (no Python string per cell).

    NULL is the unquoted empty field and every other value is quoted, so no string (not even '' or '\\N') can be
    read back as NULL; floats are written in their shortest exact form (they round-trip bit for bit)."""
    if frame.empty:
        return b""
    columns = pa.table([_arrow_field(frame[name], kind) for name, kind in table.columns], names=table.column_names)
    sink = io.BytesIO()
    pacsv.write_csv(columns, sink, pacsv.WriteOptions(include_header=False, quoting_style="all_valid"))
    return sink.getvalue()


def _arrow_field(values: pd.Series, kind: str) -> pa.Array:
    null = values.isna().to_numpy()
    if kind == FLOAT:
        return pa.array(values.to_numpy(dtype="float64", na_value=np.nan), mask=null)
    if kind in (INT, BIGINT):
        return pa.array(pd.array(values.to_numpy(dtype=object), dtype="Int64"))  # exact for 62-bit ids
    if kind == BOOL:
        return pa.array([None if n else bool(v) for v, n in zip(values.tolist(), null)], pa.bool_())
    if kind == DATE:
        return pa.array(pd.to_datetime(values).to_numpy(dtype="datetime64[D]"), mask=null).cast(pa.date32())
    if kind == TIMESTAMP:
        return pa.array(pd.to_datetime(values).to_numpy(dtype="datetime64[us]"), mask=null)
    objects = values.to_numpy(dtype=object)
    try:
        return pa.array(objects, pa.string(), from_pandas=True)
    except (pa.ArrowTypeError, pa.ArrowInvalid):  # not all str: each value's str(), as the text it stands for
        return pa.array([None if n else str(v) for v, n in zip(objects, null)], pa.string())
