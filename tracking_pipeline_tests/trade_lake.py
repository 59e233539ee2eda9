"""The demo lake's trade files cut to a test lake's range (used by helpers.make_lake).

The demo ledger is causal (scripts/build_demo_trades.py), so the cut equals the ledger the generator would write
from the cut prices: trades entered in [start, end], exits after `end` emptied (open), decisions dated in range.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from tracking_pipeline.settings import DEMO_LAKE

EXIT_FIELDS = ["exit_date", "exit_price", "exit_reason"]


def cut_trade_files(root: Path, start: str, end: str, tickers: list[str] | None = None) -> None:
    """Write the demo's trades/, routing/ and reference/trade_analytics.yaml into the lake at `root`, cut to
    [start, end] (and `tickers`); files left empty are not written."""
    config = DEMO_LAKE / "reference" / "trade_analytics.yaml"
    if config.is_file():
        (root / "reference").mkdir(parents=True, exist_ok=True)
        shutil.copy(config, root / "reference" / config.name)
    for folder, date_column in (("trades", "entry_date"), ("routing", "timestamp")):
        for path in sorted((DEMO_LAKE / folder).glob("*.csv")):
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
            day = frame[date_column].str[:10]
            keep = (day >= start) & (day <= end)
            if tickers is not None:
                keep &= frame["symbol"].isin(tickers)
            frame = frame[keep].copy()
            if folder == "trades":
                frame.loc[frame["exit_date"] > end, EXIT_FIELDS] = ""
            if len(frame):
                (root / folder).mkdir(parents=True, exist_ok=True)
                frame.to_csv(root / folder / path.name, index=False, lineterminator="\n")
