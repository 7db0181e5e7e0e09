"""The NYSE trading calendar (exchange_calendars' XNYS): sessions, holidays, early closes."""

from __future__ import annotations

from datetime import date
from functools import lru_cache

import pandas as pd

# exchange_calendars builds calendars from a start date; history before this is not needed.
_CALENDAR_START = "1990-01-02"
_CALENDAR_END = "2035-12-31"


@lru_cache(maxsize=1)
def nyse():
    import exchange_calendars as xcals

    return xcals.get_calendar("XNYS", start=_CALENDAR_START, end=_CALENDAR_END)


def _naive(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    return (index.tz_localize(None) if index.tz is not None else index).astype("datetime64[ns]")


@lru_cache(maxsize=64)
def trading_days(start: date, end: date) -> pd.DatetimeIndex:
    """NYSE sessions in [start, end] (midnight timestamps)."""
    cal = nyse()
    lo = max(pd.Timestamp(start), cal.first_session)
    hi = min(pd.Timestamp(end), cal.last_session)
    if lo > hi:
        return pd.DatetimeIndex([], dtype="datetime64[ns]")
    return _naive(cal.sessions_in_range(lo, hi))


def is_trading_day(d: date) -> bool:
    return bool(nyse().is_session(pd.Timestamp(d)))


def previous_trading_day(d: date) -> date:
    """The last session strictly before ``d``."""
    return (
        nyse().date_to_session(pd.Timestamp(d) - pd.Timedelta(days=1), direction="previous").date()
    )
