"""The warehouse: one interface (`Warehouse`), DuckDB or PostgreSQL behind it, chosen by URL."""

from __future__ import annotations

from tracking_pipeline.warehouse.base import Warehouse, Write
from tracking_pipeline.warehouse.schema import TABLES, Table


def open_warehouse(url: str) -> Warehouse:
    """A DuckDB file path, or a postgresql:// URL (TRACKING_WAREHOUSE)."""
    if url.startswith(("postgresql://", "postgres://", "postgresql+")):
        from tracking_pipeline.warehouse.postgres_backend import PostgresWarehouse

        return PostgresWarehouse(url)
    from tracking_pipeline.warehouse.duckdb_backend import DuckDBWarehouse

    return DuckDBWarehouse(url)


__all__ = ["TABLES", "Table", "Warehouse", "Write", "open_warehouse"]
