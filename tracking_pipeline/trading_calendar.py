"""NYSE trading sessions (exchange_calendars), the one source of trading days for the project."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import exchange_calendars as xc
import numpy as np
import pandas as pd

CALENDAR_START = "2000-01-03"


@lru_cache(maxsize=1)
def nyse_sessions() -> pd.DatetimeIndex:
    """All NYSE sessions the calendar knows (about a year ahead of today)."""
    cal = xc.get_calendar("XNYS", start=CALENDAR_START)
    return pd.DatetimeIndex(cal.sessions.tz_localize(None)).normalize()


def sessions_between(start: dt.date | str, end: dt.date | str) -> pd.DatetimeIndex:
    """Sessions in [start, end], both inclusive."""
    s = nyse_sessions()
    return s[(s >= pd.Timestamp(start)) & (s <= pd.Timestamp(end))]


def is_session(day: dt.date | str) -> bool:
    return pd.Timestamp(day).normalize() in nyse_sessions()


def next_session_on_or_after(day: dt.date | str) -> pd.Timestamp:
    """The trading day a date maps to when it is not one itself (e.g. a rebalance on a holiday)."""
    s = nyse_sessions()
    i = s.searchsorted(pd.Timestamp(day))
    if i >= len(s):
        raise ValueError(f"{day} is beyond the NYSE calendar's last session {s[-1].date()}")
    return s[i]


def previous_session(day: dt.date | str) -> pd.Timestamp:
    """The last session strictly before `day`."""
    s = nyse_sessions()
    i = s.searchsorted(pd.Timestamp(day)) - 1
    if i < 0:
        raise ValueError(f"no NYSE session before {day}")
    return s[i]


def sessions_before(day: dt.date | str | pd.Timestamp, count: int) -> pd.Timestamp:
    """The session `count` sessions before `day` (for indicator look-back; the calendar's first at most)."""
    sessions = nyse_sessions()
    i = max(int(sessions.searchsorted(pd.Timestamp(day))) - count, 0)
    return sessions[i]


def non_session_weekdays(start: dt.date | str, end: dt.date | str) -> pd.DatetimeIndex:
    """Weekdays in [start, end] on which NYSE is closed (holidays)."""
    weekdays = pd.bdate_range(start, end)
    return weekdays.difference(nyse_sessions())


def session_mask(days: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """True where a date is a trading day: an NYSE session within the calendar's range, a weekday outside it."""
    days = pd.DatetimeIndex(days).normalize()
    s = nyse_sessions()
    inside = (days >= s[0]) & (days <= s[-1])
    return np.where(inside, days.isin(s), days.day_of_week < 5)


def month_ends(days: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """The last of `days` (sorted, unique) in each calendar month; the latest day is always among them."""
    month = (days.year * 12 + days.month).to_numpy()
    return days[np.r_[month[1:] != month[:-1], True]] if len(days) else days
