"""Working days and the appointment date (R-TIME)."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import holidays

__all__ = [
    "APPOINTMENT_WORKING_DAYS",
    "SUPPLEMENT_REQUEST_WORKING_DAYS",
    "UNPAID_STOP_DAYS",
    "TimeLimits",
    "add_working_days",
    "appointment_date",
    "is_vn_holiday",
    "is_working_day",
    "unpaid_stop_date",
]

# R-TIME defaults; callers pass their configured values.
APPOINTMENT_WORKING_DAYS = 5
SUPPLEMENT_REQUEST_WORKING_DAYS = 2
UNPAID_STOP_DAYS = 30


@dataclass(frozen=True)
class TimeLimits:
    """R-TIME configuration in one value, for the app's settings to build."""

    appointment_working_days: int = APPOINTMENT_WORKING_DAYS
    supplement_request_working_days: int = SUPPLEMENT_REQUEST_WORKING_DAYS
    unpaid_stop_days: int = UNPAID_STOP_DAYS


HolidayTest = Callable[[datetime.date], bool]


@cache
def _vn_holidays(year: int) -> frozenset[datetime.date]:
    # One frozen set per year: holidays objects grow lazily and are not safe to share
    # between worker threads; a frozenset is.
    return frozenset(holidays.country_holidays("VN", years=year))


def is_vn_holiday(d: datetime.date) -> bool:
    """R-TIME: a Vietnamese public holiday per the ``holidays`` VN calendar (Tết included)."""
    return d in _vn_holidays(d.year)


def is_working_day(d: datetime.date, is_holiday: HolidayTest = is_vn_holiday) -> bool:
    """R-TIME: Monday–Friday and not a public holiday.

    Compensatory working Saturdays are not working days: R-TIME defines working days as
    Monday–Friday only.
    """
    return d.weekday() < 5 and not is_holiday(d)


def add_working_days(
    start: datetime.date, n: int, is_holiday: HolidayTest = is_vn_holiday
) -> datetime.date:
    """R-TIME: the ``n``-th working day after ``start`` (``start`` itself is not counted,
    so acceptance on a Saturday starts counting on Monday)."""
    if n < 0:
        raise ValueError("working days must be >= 0")
    d = start
    while n:
        d += datetime.timedelta(days=1)
        if is_working_day(d, is_holiday):
            n -= 1
    return d


def appointment_date(
    accepted_on: datetime.date,
    working_days: int = APPOINTMENT_WORKING_DAYS,
    is_holiday: HolidayTest = is_vn_holiday,
) -> datetime.date:
    """R-TIME: DVCQG ``NgayHenTra`` = acceptance date + ``working_days`` working days."""
    if working_days < 1:
        raise ValueError("an appointment needs at least one working day")
    return add_working_days(accepted_on, working_days, is_holiday)


def unpaid_stop_date(
    awaiting_payment_since: datetime.date, days: int = UNPAID_STOP_DAYS
) -> datetime.date:
    """R-TIME: the day from which an unpaid application is stopped (portal 8).

    The period is in calendar days ("30 days", not working days), counted from the day
    the fee was requested; on the returned day the period has fully elapsed.
    """
    if days < 1:
        raise ValueError("the unpaid period must be at least one day")
    return awaiting_payment_since + datetime.timedelta(days=days)
