"""Calendar-year and calendar-month arithmetic (R-REGIME: "years" are calendar years)."""

from __future__ import annotations

import calendar
import datetime

__all__ = ["add_months", "add_years"]


def add_months(d: datetime.date, n: int) -> datetime.date:
    """Add ``n`` calendar months (may be negative), clamping to the month's last day.

    Clamping is what makes 31 Jan + 1 month = 28/29 Feb and 29 Feb + 12 months = 28 Feb,
    the reading RULES.md gives for calendar years.
    """
    index = d.year * 12 + (d.month - 1) + n
    year, month0 = divmod(index, 12)
    month = month0 + 1
    day = min(d.day, calendar.monthrange(year, month)[1])
    return datetime.date(year, month, day)


def add_years(d: datetime.date, n: int) -> datetime.date:
    """R-REGIME/R-VALID: add calendar years; 29 February becomes 28 February in a common year."""
    return add_months(d, 12 * n)
