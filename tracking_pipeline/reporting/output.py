"""Writing report files to a local folder or an s3:// prefix (TRACKING_REPORTS)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


def write_report(root: str, name: str, text: str, client: Any = None) -> str:
    """Write one HTML file; returns its location. On S3, `client` is the S3 client to use (the pipeline passes
    dagster-aws's S3Resource client; boto3's default otherwise)."""
    return write_file(root, name, text.encode("utf-8"), "text/html; charset=utf-8", client)


def write_file(root: str, name: str, data: bytes, content_type: str, client: Any = None,
               unless_same_size: bool = False) -> str:
    """Write one file (a page, a script, a CSV) under a folder or s3:// prefix; returns its location. With
    `unless_same_size`, a file already there with the same size is left alone (a versioned library such as
    plotly.js is then uploaded once, not on every run)."""
    if root.startswith("s3://"):
        if client is None:
            import boto3

            client = boto3.client("s3")
        parts = urlsplit(root)
        key = f"{parts.path.strip('/')}/{name}".lstrip("/")
        if unless_same_size:
            try:
                if client.head_object(Bucket=parts.netloc, Key=key)["ContentLength"] == len(data):
                    return f"s3://{parts.netloc}/{key}"
            except Exception:  # noqa: BLE001 - absent (or unreadable): upload it
                pass
        client.put_object(Bucket=parts.netloc, Key=key, Body=data, ContentType=content_type)
        return f"s3://{parts.netloc}/{key}"
    path = Path(root) / name
    if unless_same_size and path.is_file() and path.stat().st_size == len(data):
        return str(path.resolve())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return str(path.resolve())
