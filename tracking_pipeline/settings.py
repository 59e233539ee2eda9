"""Runtime settings read from the environment (CONTRACT §1); defaults give the embedded set-up."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEMO_LAKE = Path(__file__).parent / "demo_lake"
DEFAULT_WAREHOUSE = "data/warehouse.duckdb"
DEFAULT_REPORTS = "data/reports"
DEFAULT_PARTITIONS_START = "2010-01-04"
DEFAULT_MARKET_TICKER = "SPY"
TRADING_DAYS_PER_YEAR = 252


@dataclass(frozen=True)
class Settings:
    """The environment variables of the contract, resolved with their defaults."""

    lake: str
    warehouse: str
    reports: str
    partitions_start: str
    market_ticker: str
    risk_free_rate: float

    @property
    def rf_daily(self) -> float:
        """Daily cash return: (1 + annual rate)^(1/252) - 1."""
        return (1.0 + self.risk_free_rate) ** (1.0 / TRADING_DAYS_PER_YEAR) - 1.0


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


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
        partitions_start=_env("TRACKING_PARTITIONS_START", DEFAULT_PARTITIONS_START),
        market_ticker=_env("TRACKING_MARKET_TICKER", DEFAULT_MARKET_TICKER),
        risk_free_rate=rate,
    )
