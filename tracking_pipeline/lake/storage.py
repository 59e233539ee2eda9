"""Listing and reading lake files, locally or on S3 with a local cache fallback (seed 000, "S3 Fallbacks").

Every S3 object read is mirrored to a cache folder (TRACKING_LAKE_CACHE, default data/lake_cache). When S3
fails, the last cached copy is used and a warning is recorded in `Lake.warnings`, which assets put in their
metadata. With neither, a clear error names the object.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_CACHE = "data/lake_cache"


@dataclass
class Lake:
    """A lake root. Paths passed to its methods are relative to the root and use '/'."""

    root: str
    cache_dir: Path = field(default_factory=lambda: Path(os.environ.get("TRACKING_LAKE_CACHE", DEFAULT_CACHE)))
    warnings: list[str] = field(default_factory=list)
    client_factory: Callable[[], Any] | None = None
    """Makes the S3 client (in the pipeline: dagster-aws's S3Resource.get_client); boto3's default otherwise."""

    @property
    def is_s3(self) -> bool:
        return self.root.startswith("s3://")

    def describe(self, relative: str = "") -> str:
        """The full location of a lake path, for messages."""
        return f"{self.root.rstrip('/')}/{relative}" if relative else self.root

    # --- listing -------------------------------------------------------------------------------------------
    def list(self, prefix: str, patterns: tuple[str, ...], recursive: bool = False) -> list[str]:
        """Relative paths under `prefix` whose file name matches one of `patterns`, sorted."""
        if self.is_s3:
            keys = self._s3_list(prefix)
        else:
            base = Path(self.root) / prefix
            if not base.exists():
                return []
            walker = base.rglob("*") if recursive else base.glob("*")
            keys = [p.relative_to(self.root).as_posix() for p in walker if p.is_file()]
        out = []
        for key in keys:
            rest = key[len(prefix):].lstrip("/")
            if not recursive and "/" in rest:
                continue
            if any(fnmatch.fnmatch(rest.rsplit("/", 1)[-1], pat) for pat in patterns):
                out.append(key)
        return sorted(out)

    def exists(self, relative: str) -> bool:
        if self.is_s3:
            return relative in self._s3_list(relative.rsplit("/", 1)[0] if "/" in relative else "")
        return (Path(self.root) / relative).is_file()

    # --- reading -------------------------------------------------------------------------------------------
    def local_path(self, relative: str) -> Path:
        """A local file holding the object's bytes (the file itself, or the S3 object's cached copy)."""
        if not self.is_s3:
            path = Path(self.root) / relative
            if not path.is_file():
                raise FileNotFoundError(f"{self.describe(relative)}: file not found")
            return path
        return self._s3_fetch(relative)

    def read_bytes(self, relative: str) -> bytes:
        return self.local_path(relative).read_bytes()

    def version(self, relative: str) -> str:
        """A change marker (size + mtime locally, ETag on S3) used by the registration sensor."""
        if self.is_s3:
            self._s3_list(relative.rsplit("/", 1)[0] if "/" in relative else "")
            return self._etags.get(relative, "")
        stat = (Path(self.root) / relative).stat()
        return f"{stat.st_size}-{stat.st_mtime_ns}"

    def versions(self, prefix: str, patterns: tuple[str, ...], content: bool = False) -> dict[str, str]:
        """{relative path: version} for the files `list` returns, from one listing (one S3 request). With
        `content`, a local file's version is the SHA-256 of its bytes (a copied file keeps it; for small files
        such as portfolios); the S3 ETag already depends on the content only."""
        files = self.list(prefix, patterns)
        if self.is_s3:
            return {relative: self._etags.get(relative, "") for relative in files}
        if content:
            return {relative: hashlib.sha256((Path(self.root) / relative).read_bytes()).hexdigest()
                    for relative in files}
        return {relative: self.version(relative) for relative in files}

    # --- S3 --------------------------------------------------------------------------------------------------
    @property
    def _bucket_prefix(self) -> tuple[str, str]:
        parts = urlsplit(self.root)
        return parts.netloc, parts.path.strip("/")

    def _key(self, relative: str) -> str:
        _, prefix = self._bucket_prefix
        return f"{prefix}/{relative}" if prefix else relative

    def _cache_path(self, relative: str) -> Path:
        bucket, prefix = self._bucket_prefix
        return self.cache_dir / bucket / prefix / relative

    def _client(self):  # noqa: ANN202 - boto3 client
        if self.client_factory is not None:
            return self.client_factory()
        import boto3
        from botocore.config import Config

        return boto3.client("s3", config=Config(retries={"max_attempts": 2, "mode": "standard"},
                                                connect_timeout=5, read_timeout=30))

    _etags: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def _s3_list(self, prefix: str) -> list[str]:
        bucket, root_prefix = self._bucket_prefix
        full = self._key(prefix).rstrip("/") + "/" if prefix else (root_prefix + "/" if root_prefix else "")
        manifest = self._cache_path(f".listing/{prefix or '_root'}.json")
        try:
            paginator = self._client().get_paginator("list_objects_v2")
            keys: dict[str, str] = {}
            for page in paginator.paginate(Bucket=bucket, Prefix=full):
                for obj in page.get("Contents", []):
                    rel = obj["Key"][len(root_prefix) + 1:] if root_prefix else obj["Key"]
                    keys[rel] = obj.get("ETag", "").strip('"')
            manifest.parent.mkdir(parents=True, exist_ok=True)
            manifest.write_text(json.dumps(keys))
        except Exception as exc:  # botocore raises many types; any failure means "use the cache"
            if not manifest.exists():
                raise RuntimeError(
                    f"lake {self.describe(prefix)} is unreachable ({type(exc).__name__}) and no cached listing exists"
                ) from exc
            self.warn(f"S3 listing of {self.describe(prefix)} failed ({type(exc).__name__}); used cached listing")
            keys = json.loads(manifest.read_text())
        self._etags.update(keys)
        return sorted(keys)

    def _s3_fetch(self, relative: str) -> Path:
        bucket, _ = self._bucket_prefix
        target = self._cache_path(relative)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(target.suffix + ".part")
            self._client().download_file(bucket, self._key(relative), str(tmp))
            shutil.move(tmp, target)
        except Exception as exc:
            if not target.exists():
                raise RuntimeError(
                    f"{self.describe(relative)}: S3 read failed ({type(exc).__name__}: {exc}) and no cached copy exists"
                ) from exc
            self.warn(f"S3 read of {self.describe(relative)} failed ({type(exc).__name__}); used cached copy {target}")
        return target

    def warn(self, message: str) -> None:
        """Record a warning once (assets show `warnings` in their metadata)."""
        if message not in self.warnings:
            self.warnings.append(message)


def open_lake(root: str, client_factory: Callable[[], Any] | None = None) -> Lake:
    """A lake at a local folder or s3://bucket/prefix (TRACKING_LAKE)."""
    if not root.startswith("s3://") and not Path(root).is_dir():
        raise FileNotFoundError(f"TRACKING_LAKE folder {root!r} does not exist")
    return Lake(root, client_factory=client_factory)
