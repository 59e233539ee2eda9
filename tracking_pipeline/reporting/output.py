"""Writing report files to a local folder or an s3:// prefix (TRACKING_REPORTS)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit


def write_report(root: str, name: str, text: str) -> str:
    """Write one HTML file; returns its location."""
    if root.startswith("s3://"):
        import boto3

        parts = urlsplit(root)
        key = f"{parts.path.strip('/')}/{name}".lstrip("/")
        boto3.client("s3").put_object(Bucket=parts.netloc, Key=key, Body=text.encode("utf-8"),
                                      ContentType="text/html; charset=utf-8")
        return f"s3://{parts.netloc}/{key}"
    path = Path(root) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return str(path.resolve())
