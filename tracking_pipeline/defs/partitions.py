"""Trading-day partitions: NYSE sessions from the first day with data to the latest session whose close has passed.

Built from the settings each time the definitions load (never at import), so TRACKING_PARTITIONS_START/END take
effect in every process. A partition's time window runs from its session's 16:00 New York close to the next
weekday's (cron `0 16 * * 1-5`, NYSE holidays excluded): the partition for day D appears once D's close has
passed, so the nightly run at 18:00 can target it. One exception comes from how Dagster steps over an excluded
day: on the evening of an exchange holiday the next session's partition appears a day early; a run of it fails
in `price_data` (the session has not closed, the lake has no prices) and stores nothing.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd

from tracking_pipeline.lake import open_lake
from tracking_pipeline.lake.tables import price_day_span
from tracking_pipeline.settings import Settings
from tracking_pipeline.trading_calendar import non_session_weekdays, nyse_sessions

NYSE_TIMEZONE = "America/New_York"
CLOSE_HOUR = 16
SESSION_CLOSES = f"0 {CLOSE_HOUR} * * 1-5"


def partition_bounds(settings: Settings) -> tuple[str, str | None]:
    """(first partition, last partition or None for "the latest closed session").

    The first is TRACKING_PARTITIONS_START, else the lake's first trading day with prices. The last is
    TRACKING_PARTITIONS_END, else, on the packaged demo lake (a frozen 2018-2023 snapshot), its last day with
    prices, else open-ended."""
    start, end = settings.partitions_start, settings.partitions_end
    if start is None or (end is None and settings.on_demo_lake):
        first, last = price_day_span(open_lake(settings.lake))
        start = start or first.isoformat()
        if end is None and settings.on_demo_lake:
            end = last.isoformat()
    if end is not None and end < start:
        raise ValueError(f"TRACKING_PARTITIONS_END {end} is before the first partition {start}")
    return start, end


def trading_day_partitions(start: str, end: str | None = None) -> dg.TimeWindowPartitionsDefinition:
    """Partitions keyed YYYY-MM-DD on the NYSE sessions in [start, end]; open-ended (end None) up to the latest
    session whose 16:00 New York close has passed."""
    last_known = nyse_sessions()[-1]
    holidays = non_session_weekdays(start, last_known)
    bounds: dict[str, object] = {"end_offset": 1}
    if end is not None:
        after = pd.Timestamp(end) + pd.offsets.BDay(1)  # the close that ends the last session's window
        bounds = {"end": dt.datetime(after.year, after.month, after.day, CLOSE_HOUR)}
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule=SESSION_CLOSES, fmt="%Y-%m-%d", start=start, timezone=NYSE_TIMEZONE,
        exclusions=[dt.datetime(d.year, d.month, d.day, CLOSE_HOUR) for d in holidays],
        **bounds,
    )


def build_trading_days(settings: Settings) -> dg.TimeWindowPartitionsDefinition:
    return trading_day_partitions(*partition_bounds(settings))
