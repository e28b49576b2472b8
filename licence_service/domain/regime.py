"""Choosing the rule regime of an application (R-REGIME)."""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

__all__ = ["LOCAL_TZ", "REGIME_CUTOVER", "local_date", "regime_for", "regime_for_date"]

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
# R-REGIME: applications received on or after this local date follow vn-2025.
REGIME_CUTOVER = datetime.date(2025, 1, 1)


def local_date(moment: datetime.datetime) -> datetime.date:
    """R-REGIME: the Asia/Ho_Chi_Minh calendar date of an aware instant.

    Naive datetimes are rejected: guessing their zone would silently move applications
    received around midnight UTC+7 into the wrong day (and, on 31 Dec, the wrong regime).
    """
    if not isinstance(moment, datetime.datetime):
        raise TypeError(f"expected a datetime, got {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive datetime: received_at must carry a time zone")
    return moment.astimezone(LOCAL_TZ).date()


def regime_for_date(received_on: datetime.date) -> str:
    """R-REGIME: regime id for a local receipt date."""
    return "vn-2017" if received_on < REGIME_CUTOVER else "vn-2025"


def regime_for(received_at: datetime.datetime) -> str:
    """R-REGIME: regime id ('vn-2017' | 'vn-2025') for an aware ``received_at``."""
    return regime_for_date(local_date(received_at))
