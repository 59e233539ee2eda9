"""Entry point for `python -m tracking_pipeline`."""

import sys

from tracking_pipeline.cli import main

sys.exit(main())
