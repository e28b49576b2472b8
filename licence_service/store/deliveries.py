"""Repository of the delivery-guarantee tables: parked retries, dead letters, sweeper re-drives,
and the query that finds applications stuck in a working state."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from sqlalchemy import delete, exists, or_, select
from sqlalchemy.orm import Session

from licence_service.store import models


class DeliveryRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # Retries --------------------------------------------------------------------------------------

    def add_retry(self, retry: models.ScheduledRetry) -> None:
        self.session.add(retry)

    def due_retries(self, now: dt.datetime, limit: int) -> Sequence[models.ScheduledRetry]:
        stmt = (
            select(models.ScheduledRetry)
            .where(models.ScheduledRetry.due_at <= now)
            .order_by(models.ScheduledRetry.due_at, models.ScheduledRetry.id)
            .limit(limit)
        )
        return self.session.scalars(stmt).all()

    def delete_retries(self, ids: Sequence[int]) -> None:
        self.session.execute(delete(models.ScheduledRetry).where(models.ScheduledRetry.id.in_(ids)))

    # Dead letters ---------------------------------------------------------------------------------

    def add_dead_letter(self, letter: models.DeadLetter) -> None:
        self.session.add(letter)

    def dead_letters(self, *, include_replayed: bool = False) -> Sequence[models.DeadLetter]:
        stmt = select(models.DeadLetter).order_by(models.DeadLetter.id)
        if not include_replayed:
            stmt = stmt.where(models.DeadLetter.replayed_at.is_(None))
        return self.session.scalars(stmt).all()

    def open_dead_letters(self, ids: Iterable[int] | None = None) -> Sequence[models.DeadLetter]:
        """Dead letters not yet replayed (all of them, or those among `ids`), locked for the replay."""
        stmt = select(models.DeadLetter).where(models.DeadLetter.replayed_at.is_(None))
        if ids is not None:
            stmt = stmt.where(models.DeadLetter.id.in_(list(ids)))
        return self.session.scalars(stmt.order_by(models.DeadLetter.id).with_for_update()).all()

    # The sweeper ----------------------------------------------------------------------------------

    def stuck_applications(self, statuses: Iterable[str], untouched_since: dt.datetime, limit: int, *,
                           stages: Iterable[str]) -> Sequence[str]:
        """Applications in one of `statuses`, not updated since `untouched_since`, not already
        re-driven since then, and with no message of the workflow's `stages` parked for a retry or
        dead-lettered (at most one step of an application is ever under way); oldest first."""
        stages = list(stages)
        redriven_lately = exists().where(
            models.StuckRedrive.application_id == models.Application.id,
            models.StuckRedrive.last_at > untouched_since,
        )
        parked = exists().where(models.ScheduledRetry.application_id == models.Application.id,
                                models.ScheduledRetry.stage.in_(stages))
        dead = exists().where(models.DeadLetter.application_id == models.Application.id,
                              models.DeadLetter.stage.in_(stages), models.DeadLetter.replayed_at.is_(None))
        stmt = (
            select(models.Application.id)
            .where(models.Application.status.in_(list(statuses)),
                   models.Application.updated_at <= untouched_since,
                   ~redriven_lately, ~parked, ~dead)
            .order_by(models.Application.updated_at)
            .limit(limit)
        )
        return self.session.scalars(stmt).all()

    def waiting_on_failure(self, application_id: str, stage: str) -> bool:
        """True when the stage's work for this application is parked for a retry or dead-lettered
        and not replayed: its message is not lost, so re-driving it would only add a duplicate (or,
        for a poison message, another dead letter each grace period)."""
        retry = exists().where(models.ScheduledRetry.application_id == application_id,
                               models.ScheduledRetry.stage == stage)
        dead = exists().where(models.DeadLetter.application_id == application_id,
                              models.DeadLetter.stage == stage, models.DeadLetter.replayed_at.is_(None))
        return bool(self.session.scalar(select(or_(retry, dead))))

    def redrive(self, application_id: str) -> models.StuckRedrive | None:
        return self.session.get(models.StuckRedrive, application_id)

    def add_redrive(self, row: models.StuckRedrive) -> None:
        self.session.add(row)
