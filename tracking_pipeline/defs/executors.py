"""Where a run's steps execute: in one process (DuckDB), in parallel processes (PostgreSQL), or on Celery workers
on other machines (TRACKING_EXECUTOR=celery, dagster-celery with a Redis broker), and how the CLI launches a job
so that the configured executor is the one used.

Celery workers run `celery -A tracking_pipeline.celery_app worker -Q dagster` with the same environment as the
runs (docs/deploy.md §6): they write to the shared instance, warehouse, lake and reports, so a DuckDB file (one
writer, one machine) is refused.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from tracking_pipeline.settings import Settings

EXECUTOR_ENV = "TRACKING_EXECUTOR"
BROKER_ENV = "TRACKING_CELERY_BROKER"
BACKEND_ENV = "TRACKING_CELERY_BACKEND"
CELERY = "celery"
EXECUTORS = ("auto", "in_process", "multiprocess", CELERY)
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
FORKSERVER = {"start_method": {"forkserver": {"preload_modules": ["tracking_pipeline.definitions"]}}}
"""Step processes forked from a server that has imported the code location once: a spawned process imports
dagster, pandas and the definitions again for every step (~5 s of CPU each, 75 s for a nightly's 15 steps)."""


def batch_events() -> None:
    """Batched event writes (unless DAGSTER_EVENT_BATCH_SIZE is set): a range step records two events per partition
    per asset. Called by every process that executes steps: the CLI, the Celery workers and any process that loads
    the code location (`tracking_pipeline.definitions`: the runs launched from the UI, schedules and sensors).
    dagster-postgres and the embedded storage (tracking_pipeline/instance_storage.py) then write a batch at once."""
    os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", "1000")


class ExecutorConfigError(ValueError):
    """TRACKING_EXECUTOR names an unknown executor, or one the warehouse cannot serve."""


def executor_kind() -> str:
    """TRACKING_EXECUTOR (default 'auto': in_process on DuckDB, multiprocess on PostgreSQL)."""
    kind = os.environ.get(EXECUTOR_ENV, "").strip().lower() or "auto"
    if kind not in EXECUTORS:
        raise ExecutorConfigError(f"{EXECUTOR_ENV} must be one of {', '.join(EXECUTORS)}, got {kind!r}")
    return kind


def celery_urls() -> tuple[str, str]:
    """Broker and result backend URLs (the backend defaults to the broker)."""
    broker = os.environ.get(BROKER_ENV, "").strip() or DEFAULT_BROKER
    return broker, os.environ.get(BACKEND_ENV, "").strip() or broker


def _from_env(name: str, value: str) -> str | dict[str, str]:
    """An env-sourced config value when the variable is set (a password in the URL stays out of the UI)."""
    return {"env": name} if os.environ.get(name, "").strip() else value


def build_executor(settings: Settings) -> dg.ExecutorDefinition:
    """The executor for the settings and TRACKING_EXECUTOR; a distributed one on a DuckDB file is an error."""
    kind = executor_kind()
    if kind == "auto":
        kind = "in_process" if settings.warehouse_kind == "duckdb" else "multiprocess"
    if kind == "in_process":
        return dg.in_process_executor
    if settings.warehouse_kind == "duckdb":
        raise ExecutorConfigError(
            f"{EXECUTOR_ENV}={kind} runs steps in several processes{' on other machines' if kind == CELERY else ''}, "
            f"but TRACKING_WAREHOUSE is the DuckDB file {settings.warehouse!r}, which only one process of one machine "
            "can write: set TRACKING_WAREHOUSE to a postgresql:// URL shared by every worker (docs/deploy.md §6), "
            f"or unset {EXECUTOR_ENV}")
    if kind == "multiprocess":
        return dg.multiprocess_executor.configured(FORKSERVER, name="multiprocess")
    from dagster_celery import celery_executor

    broker, backend = celery_urls()
    return celery_executor.configured(
        {"broker": _from_env(BROKER_ENV, broker), "backend": _from_env(BACKEND_ENV, backend)}, name=CELERY)


def is_distributed(defs: dg.Definitions) -> bool:
    """Whether the Definitions' executor sends steps to workers (then runs must be reconstructable)."""
    return defs.executor is not None and defs.executor.name == CELERY


def execute_job(defs: dg.Definitions, job_name: str, instance: dg.DagsterInstance, tags: dict[str, str],
                run_config: dict[str, Any]) -> dg.ExecutionResult:
    """Run a job of the code location to completion: in this process (execute_in_process) unless the executor
    is distributed, in which case the job is reconstructed from `tracking_pipeline.definitions` by every worker
    and this process only orchestrates (dagster's execute_job)."""
    if not is_distributed(defs):
        return defs.resolve_job_def(job_name).execute_in_process(
            instance=instance, tags=tags, raise_on_error=False, run_config=run_config)
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    recon = ReconstructableRepository.for_module("tracking_pipeline.definitions", "defs",
                                                 working_directory=os.getcwd()).get_reconstructable_job(job_name)
    return dg.execute_job(recon, instance=instance, tags=tags, run_config=run_config, raise_on_error=False)
