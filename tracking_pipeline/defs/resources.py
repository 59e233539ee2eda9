"""Resources, chosen by deployment through the contract's environment variables (never logged)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from dagster_aws.s3 import S3Resource
from pydantic import PrivateAttr

from tracking_pipeline.lake import Lake, open_lake
from tracking_pipeline.settings import Settings, load_settings
from tracking_pipeline.warehouse import Warehouse, open_warehouse


S3_ATTEMPTS = 2


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse at TRACKING_WAREHOUSE: a DuckDB file or a postgresql:// URL."""

    url: str
    _warehouse: Warehouse | None = PrivateAttr(default=None)

    def get(self) -> Warehouse:
        if self._warehouse is None:
            self._warehouse = open_warehouse(self.url)
        return self._warehouse

    @contextmanager
    def session(self) -> Iterator[Warehouse]:
        """The warehouse with one connection held for an asset step (see `Warehouse.session`)."""
        with self.get().session() as wh:
            yield wh


class LakeResource(dg.ConfigurableResource):
    """The input lake at TRACKING_LAKE: a local folder or s3://bucket/prefix, read through dagster-aws's
    S3Resource (with the lake cache as fallback when S3 fails)."""

    root: str
    s3: S3Resource

    def open(self) -> Lake:
        return open_lake(self.root, client_factory=self.s3.get_client)


class TrackingSettings(dg.ConfigurableResource):
    """Non-secret settings: market ticker, risk-free rate, reports folder."""

    market_ticker: str
    risk_free_rate: float
    reports: str

    @property
    def rf_daily(self) -> float:
        return (1.0 + self.risk_free_rate) ** (1.0 / 252) - 1.0


def _from_env(name: str, default: str) -> str | dg.EnvVar:
    """dg.EnvVar when the variable is set (its value stays out of the UI and logs), else the default."""
    return dg.EnvVar(name) if os.environ.get(name, "").strip() else default


def s3_resource() -> S3Resource:
    """dagster-aws's S3 client for the lake and the reports: endpoint and region from AWS_ENDPOINT_URL /
    AWS_REGION (as dg.EnvVar), credentials from boto3's chain (AWS_* variables, a profile or an instance role),
    never written into the configuration; two attempts, so a dead endpoint falls back to the cache quickly."""
    optional = {field: dg.EnvVar(name) for field, name in (("endpoint_url", "AWS_ENDPOINT_URL"),
                                                            ("region_name", "AWS_REGION"))
                if os.environ.get(name, "").strip()}
    return S3Resource(max_attempts=S3_ATTEMPTS, **optional)


def build_resources(settings: Settings | None = None) -> dict[str, dg.ConfigurableResource]:
    settings = settings or load_settings()
    s3 = s3_resource()
    return {
        "warehouse": WarehouseResource(url=_from_env("TRACKING_WAREHOUSE", settings.warehouse)),
        "lake": LakeResource(root=_from_env("TRACKING_LAKE", settings.lake), s3=s3),
        "s3": s3,
        "tracking": TrackingSettings(market_ticker=settings.market_ticker, risk_free_rate=settings.risk_free_rate,
                                     reports=settings.reports),
    }
