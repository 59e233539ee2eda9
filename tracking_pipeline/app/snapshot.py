"""How the app reads the warehouse without ever waiting for (or blocking) the pipeline.

PostgreSQL: directly (MVCC: readers and writers do not block each other).

DuckDB allows one writing process per file, and the pipeline holds the file lock (`<file>.lock`, see
`warehouse/duckdb_backend.py`) for a whole asset step, tens of seconds during a backfill. So the app reads a private
copy: when the file changed since the last copy (size or modification time of the file and its WAL), the reader
takes the lock *without waiting* (a shared flock: app processes may copy together; the pipeline's exclusive lock
excludes them), copies the file, releases the lock, and opens the copy read-only. While a step holds the lock the
app keeps showing its last copy and says so; the pipeline waits at most for one file copy (a few milliseconds for the
demo's warehouse), never for a page. Copies live in a folder of the temp dir keyed by the warehouse path and are
reused by the next app process, so a restart during a backfill still has data to show.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from tracking_pipeline.warehouse import Warehouse, open_warehouse
from tracking_pipeline.warehouse.duckdb_backend import DuckDBWarehouse

KEEP_OPEN = 3
"""Copies kept open: a page still reading the previous copy when a new one arrives keeps working."""


class WarehouseBusy(RuntimeError):
    """The pipeline holds the DuckDB warehouse and the app has no earlier copy to show yet."""


class WarehouseMissing(RuntimeError):
    """No warehouse file at the configured path."""


def signature(path: Path) -> tuple[int, int, int, int]:
    """What changes when DuckDB writes the file: size and mtime of the file and of its WAL."""
    main = path.stat()
    try:
        wal = Path(f"{path}.wal").stat()
    except FileNotFoundError:  # no WAL, or the writer just checkpointed it away
        return (main.st_size, main.st_mtime_ns, -1, -1)
    return (main.st_size, main.st_mtime_ns, wal.st_size, wal.st_mtime_ns)


class SnapshotWarehouse(DuckDBWarehouse):
    """A `Warehouse` on a read-only copy: each call gets a cursor of the copy's connection (no file lock; many
    threads may read at once)."""

    def __init__(self, snapshot: "Snapshot") -> None:
        super().__init__(snapshot.path)
        self.snapshot = snapshot
        self._schema_ready = True

    def describe(self) -> str:
        return f"duckdb:{self.snapshot.source.resolve()} (copy of {self.snapshot.taken_at:%H:%M:%S})"

    @contextmanager
    def _open(self, read_only: bool = False) -> Iterator[Any]:
        cursor = self.snapshot.conn.cursor()
        try:
            yield cursor
        finally:
            cursor.close()


@dataclass
class Snapshot:
    """One copy of the warehouse file, opened read-only."""

    source: Path
    path: Path
    conn: duckdb.DuckDBPyConnection
    signature: tuple[int, int, int, int]
    taken_at: dt.datetime

    @property
    def version(self) -> str:
        return self.path.stem


@dataclass
class View:
    """What a page reads: the warehouse, a version key for caches, and what to tell the user about freshness."""

    warehouse: Warehouse
    version: str
    taken_at: dt.datetime | None = None
    busy: bool = False


class SnapshotReader:
    """Private read-only copies of a DuckDB warehouse file, refreshed when it changes and its lock is free."""

    def __init__(self, source: str | os.PathLike[str], root: str | os.PathLike[str] | None = None,
                 min_interval: float = 1.0) -> None:
        self.source = Path(source).resolve()
        key = hashlib.sha1(str(self.source).encode()).hexdigest()[:12]
        self.folder = Path(root or Path(tempfile.gettempdir()) / "tracking_app_snapshots") / key
        self.min_interval = min_interval
        self._lock = threading.Lock()
        self._open: list[Snapshot] = []
        self._last_try = 0.0
        self.busy = False

    # ------------------------------------------------------------------ public

    def view(self, wait: float = 0.0) -> View:
        """The newest copy, refreshed first when the file changed (waiting up to `wait` seconds for the lock only
        when there is no copy at all). Raises WarehouseMissing or WarehouseBusy."""
        snap = self.refresh(wait)
        return View(SnapshotWarehouse(snap), snap.version, snap.taken_at, self.busy)

    def warehouse(self, version: str) -> Warehouse:
        """The copy of a version still open (so a cached computation reads the copy it is keyed by), else the
        newest."""
        with self._lock:
            for snap in self._open:
                if snap.version == version:
                    return SnapshotWarehouse(snap)
        return self.view().warehouse

    def refresh(self, wait: float = 0.0) -> Snapshot:
        with self._lock:
            if not self.source.exists():
                raise WarehouseMissing(f"no DuckDB warehouse at {self.source}: run `make demo` (or the pipeline) "
                                       "first, or set TRACKING_WAREHOUSE")
            if not self._open:
                self._reopen_previous()
            current = self._open[-1] if self._open else None
            now_sig = signature(self.source)
            if current is not None and current.signature == now_sig:
                self.busy = False
                return current
            if current is not None and time.monotonic() - self._last_try < self.min_interval:
                return current
            self._last_try = time.monotonic()
            copied = self._copy(wait if current is None else 0.0)
            if copied is None:
                self.busy = True
                if current is None:
                    raise WarehouseBusy(f"the pipeline is writing {self.source}; the page loads when its step ends")
                return current
            self.busy = False
            self._adopt(copied)
            return self._open[-1]

    def close(self) -> None:
        with self._lock:
            for snap in self._open:
                snap.conn.close()
            self._open.clear()

    # ------------------------------------------------------------------ internals

    def _copy(self, wait: float) -> Snapshot | None:
        """Copy the file (and WAL) under a shared lock taken without blocking the writer; None when busy."""
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = time.time_ns()
        target = self.folder / f"snapshot-{stamp}.duckdb"
        deadline = time.monotonic() + wait
        with open(f"{self.source}.lock", "a+") as handle:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        return None
                    time.sleep(0.05)
            try:
                sig = signature(self.source)
                shutil.copyfile(self.source, target)
                wal = Path(f"{self.source}.wal")
                if wal.exists():  # no writer can remove it while the lock is held
                    shutil.copyfile(wal, Path(f"{target}.wal"))
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        DuckDBWarehouse(target).ensure_schema()  # declared tables/columns a older warehouse lacks; merges the WAL
        taken = dt.datetime.now().replace(microsecond=0)
        Path(f"{target}.json").write_text(json.dumps({"signature": sig, "taken_at": taken.isoformat()}))
        return Snapshot(self.source, target, duckdb.connect(str(target), read_only=True), sig, taken)

    def _adopt(self, snap: Snapshot) -> None:
        """Make a copy the newest; close and delete the ones beyond KEEP_OPEN."""
        self._open.append(snap)
        while len(self._open) > KEEP_OPEN:
            old = self._open.pop(0)
            old.conn.close()
        keep = {s.path.name for s in self._open}
        for path in self.folder.glob("snapshot-*.duckdb"):
            if path.name not in keep:
                for extra in (path, Path(f"{path}.wal"), Path(f"{path}.json"), Path(f"{path}.lock")):
                    extra.unlink(missing_ok=True)

    def _reopen_previous(self) -> None:
        """Open the newest copy a previous app process left (shown while the pipeline holds the file)."""
        candidates = sorted(self.folder.glob("snapshot-*.duckdb"), reverse=True) if self.folder.exists() else []
        for path in candidates:
            meta = Path(f"{path}.json")
            if not meta.exists():
                continue
            try:
                info = json.loads(meta.read_text())
                conn = duckdb.connect(str(path), read_only=True)
            except (OSError, ValueError, duckdb.Error):
                continue
            self._open.append(Snapshot(self.source, path, conn, tuple(info["signature"]),
                                       dt.datetime.fromisoformat(info["taken_at"])))
            return


class DirectReader:
    """PostgreSQL: every page reads the warehouse itself; the version is what changes when the pipeline writes."""

    def __init__(self, url: str) -> None:
        self.wh = open_warehouse(url)

    def view(self, wait: float = 0.0) -> View:
        row = self.wh.query("SELECT (SELECT MAX(trade_date) FROM portfolio_daily_nav) AS nav_day, "
                            "(SELECT COUNT(*) FROM portfolio_metrics) AS metrics, "
                            "(SELECT MAX(snapshot_date) FROM portfolio_snapshots) AS snap_day")
        version = "pg:" + ":".join(str(v) for v in row.iloc[0].tolist())
        return View(self.wh, version, None, False)

    def warehouse(self, version: str) -> Warehouse:
        return self.wh


SNAPSHOTS_ENV = "TRACKING_APP_SNAPSHOTS"


def make_reader(url: str) -> SnapshotReader | DirectReader:
    """The reader for TRACKING_WAREHOUSE: copies for a DuckDB file (kept in TRACKING_APP_SNAPSHOTS, default a
    folder of the temp dir), direct reads for PostgreSQL."""
    if url.startswith(("postgresql://", "postgres://", "postgresql+")):
        return DirectReader(url)
    return SnapshotReader(url, os.environ.get(SNAPSHOTS_ENV, "").strip() or None)
