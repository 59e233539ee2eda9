"""Writing report files to a local folder or an s3:// prefix (TRACKING_REPORTS)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


def write_report(root: str, name: str, text: str, client: Any = None) -> str:
    """Write one HTML file; returns its location. On S3, `client` is the S3 client to use (the pipeline passes
    dagster-aws's S3Resource client; boto3's default otherwise)."""
    if root.startswith("s3://"):
        if client is None:
            import boto3

            client = boto3.client("s3")
        parts = urlsplit(root)
        key = f"{parts.path.strip('/')}/{name}".lstrip("/")
        client.put_object(Bucket=parts.netloc, Key=key, Body=text.encode("utf-8"),
                                      ContentType="text/html; charset=utf-8")
        return f"s3://{parts.netloc}/{key}"
    path = Path(root) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return str(path.resolve())
