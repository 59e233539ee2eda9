"""Runtime settings read from the environment (CONTRACT §1); defaults give the embedded set-up."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

DEMO_LAKE = Path(__file__).parent / "demo_lake"
DEFAULT_WAREHOUSE = "data/warehouse.duckdb"
DEFAULT_REPORTS = "data/reports"
DEFAULT_MARKET_TICKER = "SPY"
TRADING_DAYS_PER_YEAR = 252


@dataclass(frozen=True)
class Settings:
    """The environment variables of the contract, resolved with their defaults."""

    lake: str
    warehouse: str
    reports: str
    partitions_start: str | None
    partitions_end: str | None
    market_ticker: str
    risk_free_rate: float

    @property
    def on_demo_lake(self) -> bool:
        """Whether the lake is the packaged demo lake (a frozen snapshot of 2018-2023)."""
        return not self.lake.startswith("s3://") and Path(self.lake).resolve() == DEMO_LAKE.resolve()

    @property
    def warehouse_kind(self) -> str:
        """'postgres' or 'duckdb': the warehouse backend TRACKING_WAREHOUSE selects."""
        return "postgres" if self.warehouse.startswith("postgres") else "duckdb"

    @property
    def rf_daily(self) -> float:
        """Daily cash return: (1 + annual rate)^(1/252) - 1."""
        return (1.0 + self.risk_free_rate) ** (1.0 / TRADING_DAYS_PER_YEAR) - 1.0


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _date_env(name: str) -> str | None:
    """An optional YYYY-MM-DD variable (None when unset), a clear error when malformed."""
    value = _env(name, "")
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise ValueError(f"{name} must be a date YYYY-MM-DD, got {value!r}") from exc


def load_settings() -> Settings:
    """Read the contract's environment variables, raising a clear error on malformed values."""
    rate_text = _env("TRACKING_RISK_FREE_RATE", "0")
    try:
        rate = float(rate_text)
    except ValueError as exc:
        raise ValueError(f"TRACKING_RISK_FREE_RATE must be a number, got {rate_text!r}") from exc
    return Settings(
        lake=_env("TRACKING_LAKE", str(DEMO_LAKE)),
        warehouse=_env("TRACKING_WAREHOUSE", DEFAULT_WAREHOUSE),
        reports=_env("TRACKING_REPORTS", DEFAULT_REPORTS),
        partitions_start=_date_env("TRACKING_PARTITIONS_START"),
        partitions_end=_date_env("TRACKING_PARTITIONS_END"),
        market_ticker=_env("TRACKING_MARKET_TICKER", DEFAULT_MARKET_TICKER),
        risk_free_rate=rate,
    )
