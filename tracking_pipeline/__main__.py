"""Entry point for `python -m tracking_pipeline`."""

import sys

from tracking_pipeline.cli import main

if __name__ == "__main__":  # not when a backfill's chunk process (spawned) imports this module again
    sys.exit(main())
