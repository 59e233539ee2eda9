"""Shared benchmark plumbing: child processes with wall time and peak RSS, fresh Dagster homes and Postgres
databases, the machine description, and the no-op copy of the live asset graph (Dagster's own floor)."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
DEMO_START = "2018-01-02"
DEMO_END = "2023-10-27"
POSTGRES_ADMIN_URL = os.environ.get("TRACKING_TEST_POSTGRES_URL", "postgresql://postgres@localhost/postgres")


@dataclass(frozen=True)
class ChildResult:
    """A finished child process: exit code, wall seconds, CPU seconds (user + system) and peak RSS (MiB), both of
    the child and its descendants."""

    returncode: int
    wall_s: float
    cpu_s: float
    peak_rss_mib: float
    stdout: str
    stderr: str


def run_child(args: Sequence[str], env: dict[str, str] | None = None, cwd: Path | str | None = None,
              check: bool = True) -> ChildResult:
    """Run `args` and measure it with wait4 (peak RSS of that child alone, not of earlier ones)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(args), env=env, cwd=cwd, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        result = ChildResult(proc.returncode, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0,
                             out.read(), err.read())
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} exited {result.returncode}:\n"
                           f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return result


def clean_env(**overrides: str) -> dict[str, str]:
    """The current environment without any TRACKING_*/DAGSTER_* variable (contract defaults), plus overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKING_", "DAGSTER_"))}
    env["PYTHONWARNINGS"] = "ignore"
    env.update(overrides)
    return env


def machine() -> str:
    """One line: CPU model, cores, RAM, OS and Python."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{cpu}, nproc {os.cpu_count()}, RAM {ram:.1f} GiB, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def header(title: str) -> None:
    print(f"# {title}")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"machine: {machine()}")
    print(f"load average at start: {load_average()} (other processes share this machine)")


def best_of(fn: Callable[[], T], repeat: int) -> tuple[float, T, int]:
    """Call `fn` once to warm up, then `repeat` (at least 1) timed times: (best seconds, last result, runs)."""
    fn()
    timings, result = [], None
    for _ in range(max(repeat, 1)):
        t0 = time.perf_counter()
        result = fn()
        timings.append(time.perf_counter() - t0)
    return min(timings), result, len(timings)


def figure(name: str, value: str) -> None:
    """A result line (`FIGURE name: value`); the smoke test looks for these."""
    print(f"FIGURE {name}: {value}", flush=True)


def postgres_problem() -> str | None:
    """Why the local PostgreSQL server cannot be used, or None."""
    try:
        import psycopg2
    except ImportError as exc:
        return str(exc)
    try:
        psycopg2.connect(POSTGRES_ADMIN_URL, connect_timeout=3).close()
        return None
    except psycopg2.OperationalError as exc:
        return str(exc).strip()


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (dropped afterwards); yields its URL."""
    from tracking_pipeline.warehouse.postgres_backend import scratch_database

    with scratch_database(POSTGRES_ADMIN_URL, "tp_bench") as url:
        yield url


def dagster_home(root: Path, postgres_url: str | None = None) -> Path:
    """A fresh DAGSTER_HOME seeded with the project's dagster.yaml (SQLite), or with the production storage of
    deploy/dagster.yaml (batched dagster-postgres) on `postgres_url`."""
    import yaml

    home = root / "dagster_home"
    home.mkdir(parents=True)
    config = yaml.safe_load((ROOT / "dagster.yaml").read_text()) or {}
    if postgres_url:
        # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; the project ships psycopg2
        url = postgres_url.replace("postgresql://", "postgresql+psycopg2://", 1)
        storage = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())["storage"]["custom"]
        config["storage"] = {"custom": {**storage, "config": {"postgres_url": url}}}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return home


@contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def noop_build():  # noqa: ANN201 - dagster types, imported lazily
    """The code location's graph with no-op bodies (`noop_definitions`): the CLI's `build` for the floor, a
    top-level function so that the CLI's chunk processes can call it too."""
    from tracking_pipeline.definitions import build_definitions

    return noop_definitions(build_definitions())


def noop_definitions(defs):  # noqa: ANN001, ANN201 - dagster types, imported lazily
    """The same asset graph with bodies that only report success.

    Same asset keys, deps, groups, partitions, backfill policies, pools, check specs, jobs and executor as
    `defs`; every executable body just yields a MaterializeResult per selected asset and a passing check
    result per selected check, so a run costs only Dagster's own bookkeeping."""
    import dagster as dg

    def body(context):  # noqa: ANN001 - untyped: dagster accepts a bare context
        for key in sorted(context.selected_asset_keys):
            yield dg.MaterializeResult(asset_key=key)
        for check in sorted(context.selected_asset_check_keys):
            yield dg.AssetCheckResult(asset_key=check.asset_key, check_name=check.name, passed=True)

    def check_body(context):  # noqa: ANN001
        for check in sorted(context.selected_asset_check_keys):
            yield dg.AssetCheckResult(asset_key=check.asset_key, check_name=check.name, passed=True)

    assets, checks = [], []
    for ad in defs.resolve_asset_graph().assets_defs:
        if not ad.is_executable:
            assets.append(ad)
            continue
        name = ad.node_def.name
        pool = getattr(ad.node_def, "pool", None)
        if not ad.keys:
            checks.append(dg.multi_asset_check(specs=list(ad.check_specs), name=name, can_subset=ad.can_subset,
                                               pool=pool)(check_body))
            continue
        specs = [spec.replace_attributes(partitions_def=None) if hasattr(spec, "replace_attributes") else spec
                 for spec in ad.specs]
        assets.append(dg.multi_asset(
            name=name, specs=specs, check_specs=list(ad.check_specs), partitions_def=ad.partitions_def,
            backfill_policy=ad.backfill_policy, can_subset=ad.can_subset, pool=pool)(body))
    return dg.Definitions(assets=assets, asset_checks=checks, jobs=list(defs.jobs), executor=defs.executor)


_PROGRESS = re.compile(r"^\[\s*[\d.]+s\] (?P<label>.+?): (?P<status>ok|FAILED) \((?P<seconds>[\d.]+)s, run")


def job_seconds(stdout: str) -> dict[str, float]:
    """Seconds per job run from the CLI's progress lines ('daily assets ...' chunks summed under 'daily')."""
    out: dict[str, float] = {}
    for line in stdout.splitlines():
        match = _PROGRESS.match(line)
        if not match:
            continue
        label = match["label"]
        kind = "daily" if label.startswith("daily assets") else "registry" if label.startswith("register") \
            else "downstream"
        out[kind] = out.get(kind, 0.0) + float(match["seconds"])
    return out


def step_seconds(stdout: str) -> dict[str, float]:
    """Seconds per step (summed over runs) from the `STEP job step seconds peak-MiB start-MiB` lines of
    _backfill_child.py."""
    out: dict[str, float] = {}
    for line in stdout.splitlines():
        if line.startswith("STEP "):
            step, seconds = line.split()[2:4]
            out[step] = out.get(step, 0.0) + float(seconds)
    return out


def step_peak_rss(stdout: str) -> dict[str, tuple[float, float]]:
    """(peak resident MiB of the process while the step ran, the most it grew during one run of it), largest over
    the step's runs, from the same lines."""
    out: dict[str, tuple[float, float]] = {}
    for line in stdout.splitlines():
        if line.startswith("STEP "):
            step, _, peak, before = line.split()[2:6]
            old = out.get(step, (0.0, 0.0))
            out[step] = (max(old[0], float(peak)), max(old[1], float(peak) - float(before)))
    return out


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def graph_summary() -> str:
    """The measured graph, read from the live Definitions: assets and checks per CLI job."""
    import warnings

    warnings.filterwarnings("ignore")
    from tracking_pipeline.cli import backfill  # noqa: F401 - the CLI's jobs are the ones measured
    from tracking_pipeline.definitions import defs

    lines = []
    for name in ("portfolio_registry_job", "daily_assets_job", "downstream_job"):
        layer = defs.resolve_job_def(name).asset_layer
        keys = sorted(k.to_user_string() for k in layer.executable_asset_keys)
        checks = layer.asset_graph.asset_check_keys
        lines.append(f"{name}: {len(keys)} assets ({', '.join(keys)}), {len(checks)} checks")
    return "\n".join(lines)
