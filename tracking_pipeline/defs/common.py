"""Small helpers shared by the asset modules: the build context, partition windows, metadata."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import dagster as dg
from dagster import AssetExecutionContext
import pandas as pd

from tracking_pipeline.reporting.markdown import markdown_table
from tracking_pipeline.settings import Settings
from tracking_pipeline.trading_calendar import sessions_between
from tracking_pipeline.warehouse import TABLES, Warehouse

SINGLE_RUN = dg.BackfillPolicy.single_run()
COLUMN_TYPES = {"date": "date", "text": "string", "float": "float", "int": "int", "bigint": "int", "bool": "bool",
                "json": "json", "timestamp": "timestamp"}


@dataclass(frozen=True)
class DefsContext:
    """What the asset factories build from: the settings and the trading-day partitions they resolve to."""

    settings: Settings
    partitions: dg.TimeWindowPartitionsDefinition

    @property
    def first_partition(self) -> str:
        return self.partitions.get_first_partition_key()

    @property
    def kinds(self) -> set[str]:
        """The warehouse the assets actually write (shown as the asset's kind in the UI)."""
        return {self.settings.warehouse_kind}


COLUMN_LABELS: dict[str, str] = {
    "hhi": "Herfindahl-Hirschman index of the position weights on a 0-10,000 scale: sum of squared weights x 10,000 "
           "(10,000 = one position; 1,000 = ten equal positions; under 1,500 is usually read as diversified)",
    "effective_num_positions": "10,000 / HHI: the number of equal positions with the same concentration",
    "equity_allocation": "Share of the portfolio's target basket held (every position of the basket, bonds and "
                         "other ETFs included, not only stocks); the rest, cash_allocation, is cash at the risk-free "
                         "rate. 1 for the raw variant; an overlay lowers it",
    "risk_level": "Seed 003's band of the realized 63-day volatility: Very Low < 15%, Low < 25%, Moderate < 35%, "
                  "High < 50%, else Very High",
    "expected_volatility_filtered": "True when the HAR forecast was not positive or above the largest target of its "
                                    "fitting sample and was replaced by the sample's mean (insanity filter)",
}
"""What a column means, for readers of the UI who have not read the docs (shown as the column's description)."""


def table_spec_metadata(table: str) -> dict[str, object]:
    """Definition metadata of an asset stored as a warehouse table: its columns from the one schema declaration,
    described by `COLUMN_LABELS` where a column needs words (key columns say so)."""
    columns = [dg.TableColumn(name, COLUMN_TYPES[kind],
                              description=COLUMN_LABELS.get(name, "key" if name in TABLES[table].key else None))
               for name, kind in TABLES[table].columns]
    return {"dagster/column_schema": dg.TableSchema(columns=columns), "dagster/table_name": table}


def partition_window(context: AssetExecutionContext) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last trading day of the run's partition range."""
    key_range = context.partition_key_range
    return pd.Timestamp(key_range.start), pd.Timestamp(key_range.end)


def window_sessions(start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    return sessions_between(start, end)


def preview(frame: pd.DataFrame, rows: int = 8, wh: Warehouse | None = None) -> dg.MetadataValue:
    """A small markdown preview of a frame's last rows for the UI (floats to 6 decimals; portfolio names instead
    of ids when the warehouse is given)."""
    if frame.empty:
        return dg.MetadataValue.md("_no rows_")
    shown = frame.tail(rows) if wh is None else with_names(wh, frame.tail(rows))
    floats = [c for c in shown.columns if pd.api.types.is_float_dtype(shown[c])]
    return dg.MetadataValue.md(markdown_table(shown.round({c: 6 for c in floats})))


def table_metadata(frame: pd.DataFrame, date_column: str | None, warnings: list[str] | None = None,
                   wh: Warehouse | None = None, **extra: object) -> dict[str, object]:
    """Row count, date range and preview (plus any lake warnings) for a MaterializeResult."""
    meta: dict[str, object] = {"dagster/row_count": len(frame), "preview": preview(frame, wh=wh)}
    if date_column and len(frame):
        meta["first_date"] = str(pd.Timestamp(frame[date_column].min()).date())
        meta["last_date"] = str(pd.Timestamp(frame[date_column].max()).date())
    if warnings:
        meta["lake_warnings"] = dg.MetadataValue.md("\n".join(f"- {w}" for w in warnings))
    meta.update(extra)
    return meta


def with_names(wh: Warehouse, frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with the portfolio name in front of (instead of) its portfolio_id, for previews in the UI."""
    if frame.empty or "portfolio_id" not in frame.columns:
        return frame
    names = wh.query("SELECT portfolio_id, name AS portfolio FROM portfolio_definitions")
    names = dict(zip(names["portfolio_id"].astype("int64"), names["portfolio"]))
    out = frame.copy()
    out.insert(0, "portfolio", [names.get(int(i), str(i)) for i in out.pop("portfolio_id")])
    return out


def iso(day: dt.date | pd.Timestamp) -> str:
    return pd.Timestamp(day).date().isoformat()
