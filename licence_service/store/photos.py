"""The photos table: one row per distinct photo (keyed by the SHA-256 of its bytes)."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Collection, Sequence

from sqlalchemy import and_, delete, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from licence_service.store import models


@functools.cache
def _upsert(dialect_name: str) -> Insert:
    """keep's statement, made once per dialect (its values are bound at execution). On the table,
    not the entity: a plain Core statement, without the ORM's bulk-insert steps."""
    photos = models.Photo.__table__
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return dialect.insert(photos).on_conflict_do_update(index_elements=[photos.c.sha256],
                                                        set_={photos.c.purge_after: None})


class PhotoRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, sha256: str) -> models.Photo | None:
        return self.session.get(models.Photo, sha256)

    def keep(self, sha256: str, content_type: str, content: bytes, now: dt.datetime) -> None:
        """Store the photo unless it is stored already, and cancel any purge planned for it (a new
        application needs it again).

        One statement, an upsert: on a conflict it updates (and so locks) the existing row, so a
        purge running at the same time either deleted the row before (and this inserts it again) or
        finds it needed again; two submissions of one new photo at once store it once."""
        self.session.execute(_upsert(self.session.get_bind().dialect.name),  # by column name ("bytes")
                             {"sha256": sha256, "content_type": content_type, "bytes": content, "created_at": now})

    def unscheduled(self, settled: Collection[str]) -> Sequence[tuple[str, dt.datetime, int, dt.datetime | None]]:
        """For every photo with no purge date: its hash, when it was stored, how many of the
        applications carrying it are still open, and the last status change of any of them."""
        carriers = models.Application.photo_sha256 == models.Photo.sha256
        still_open = (
            select(func.count()).select_from(models.Application)
            .where(carriers, models.Application.status.not_in(settled)).scalar_subquery()
        )
        last_change = (
            select(func.max(models.ApplicationHistory.at))
            .join(models.Application, models.Application.id == models.ApplicationHistory.application_id)
            .where(carriers).scalar_subquery()
        )
        stmt = (
            select(models.Photo.sha256, models.Photo.created_at, still_open, last_change)
            .where(models.Photo.purge_after.is_(None))
        )
        return [(sha, created, n, last) for sha, created, n, last in self.session.execute(stmt)]

    def schedule(self, sha256: str, purge_after: dt.datetime) -> None:
        self.session.execute(
            update(models.Photo).where(models.Photo.sha256 == sha256, models.Photo.purge_after.is_(None))
            .values(purge_after=purge_after).execution_options(synchronize_session=False)
        )

    def delete_due(self, now: dt.datetime, settled: Collection[str]) -> int:
        """Delete the photos whose purge date has come, unless an open application carries one (it
        was submitted again after the date was set)."""
        reused = exists().where(and_(models.Application.photo_sha256 == models.Photo.sha256,
                                     models.Application.status.not_in(settled)))
        return self.session.execute(
            delete(models.Photo).where(models.Photo.purge_after <= now, ~reused)
            .execution_options(synchronize_session=False)
        ).rowcount
