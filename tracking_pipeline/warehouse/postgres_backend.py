"""PostgreSQL warehouse (production). Rows are loaded with COPY inside the replacing transaction."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pandas as pd
import psycopg2
import psycopg2.extras

from tracking_pipeline.warehouse.base import Warehouse
from tracking_pipeline.warehouse.schema import Table

POSTGRES_TYPES = {"date": "DATE", "text": "TEXT", "float": "DOUBLE PRECISION", "int": "INTEGER",
                  "bigint": "BIGINT", "bool": "BOOLEAN", "json": "JSONB", "timestamp": "TIMESTAMP"}


def _dsn(url: str) -> str:
    """psycopg2 DSN from a postgresql:// or postgresql+psycopg2:// URL."""
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql://", url)


class PostgresWarehouse(Warehouse):
    dialect = "postgres"

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
    def _connection(self, write: bool) -> Iterator[Any]:
        conn = psycopg2.connect(self._dsn)
        psycopg2.extras.register_default_jsonb(conn_or_curs=conn, loads=lambda text: text)
        try:
            yield conn
        finally:
            conn.close()

    def _create_table_sql(self, table: Table) -> str:
        cols = ", ".join(f"{c} {POSTGRES_TYPES[t]}" for c, t in table.columns)
        return f"CREATE TABLE IF NOT EXISTS {table.name} ({cols}, PRIMARY KEY ({', '.join(table.key)}))"

    def _insert(self, conn: Any, table: Table, frame: pd.DataFrame) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for row in frame.itertuples(index=False, name=None):
            writer.writerow(["\\N" if _is_null(v) else _csv_value(v) for v in row])
        buffer.seek(0)
        cols = ", ".join(table.column_names)
        with conn.cursor() as cur:
            cur.copy_expert(f"COPY {table.name} ({cols}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buffer)

    def _fetch(self, conn: Any, sql: str, params: Sequence[Any]) -> pd.DataFrame:
        with conn.cursor() as cur:
            cur.execute(_placeholders(sql), list(params))
            rows = cur.fetchall()
            names = [d.name for d in cur.description]
        conn.rollback()
        return pd.DataFrame.from_records(rows, columns=names)

    def _execute(self, conn: Any, sql: str, params: Sequence[Any]) -> None:
        with conn.cursor() as cur:
            cur.execute(_placeholders(sql), list(params))


def _placeholders(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


def _is_null(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _csv_value(value: Any) -> Any:
    if isinstance(value, float):
        return repr(value)
    if value is True or value is False:
        return "t" if value else "f"
    return value
