"""Applicants' photos: kept once however many applications carry them, and deleted a configured
number of days (PHOTO_RETENTION_DAYS) after the last of those applications is settled — its card
issued or delivered, or the application refused, withdrawn or stopped (decree 13/2023/NĐ-CP: personal
data is kept no longer than its purpose needs). `flask photos purge` runs `purge_photos`; an operator
schedules it (daily)."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from licence_service.domain.model import FINAL_STATUSES
from licence_service.store import models
from licence_service.store.photos import PhotoRepository
from licence_service.store.unit_of_work import UnitOfWork

# A photo is needed until its application reaches one of these (the card is printed by then).
SETTLED_STATUSES = FINAL_STATUSES


def photo_key(content: bytes) -> str:
    """The SHA-256 a photo is stored, and referred to, by."""
    return hashlib.sha256(content).hexdigest()


def keep_photo(uow: UnitOfWork, content_type: str, content: bytes, sha256: str | None = None) -> str:
    """Store a photo (once) in the caller's unit of work and return its SHA-256, the key the
    application refers to it by (`sha256`: that key, when the caller has computed it already)."""
    sha256 = sha256 or photo_key(content)
    PhotoRepository(uow.session).keep(sha256, content_type, content, models.utcnow())
    return sha256


@dataclass(frozen=True)
class PurgeSummary:
    scheduled: int  # photos given a purge date in this run
    purged: int  # photos deleted in this run


def purge_photos(uow_factory: Any, *, retention_days: int, now: dt.datetime | None = None) -> PurgeSummary:
    """Give every photo whose applications are all settled its purge date (the last of their
    status changes + retention_days), then delete the photos whose date has come. Safe to run any
    number of times, and at the same time as submissions."""
    now = now or models.utcnow()
    retention = dt.timedelta(days=retention_days)
    scheduled = 0
    with uow_factory() as uow:
        photos = PhotoRepository(uow.session)
        for sha256, stored_at, still_open, last_change in photos.unscheduled(SETTLED_STATUSES):
            if still_open:
                continue
            # A photo no application carries (e.g. replaced by a supplement) counts from its storing.
            photos.schedule(sha256, (last_change or stored_at) + retention)
            scheduled += 1
        purged = photos.delete_due(now, SETTLED_STATUSES)
        uow.commit()
    return PurgeSummary(scheduled=scheduled, purged=purged)
