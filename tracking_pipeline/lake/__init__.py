"""The input lake (CONTRACT §2): a local folder or s3://bucket/prefix, read-only."""

from tracking_pipeline.lake.errors import LakeInputError
from tracking_pipeline.lake.storage import Lake, open_lake

__all__ = ["Lake", "LakeInputError", "open_lake"]
