"""What happens to a message whose handler failed: parked for a retry with capped exponential backoff,
or dead-lettered with its error; and an operator's replay of dead letters.

Both are rows in the database, not messages in the broker: the broker's other messages are not held
up while one waits out its backoff, and a broker that loses its data loses neither.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from licence_service.config import Settings
from licence_service.store import models
from licence_service.store.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_seconds: float = 2.0
    cap_seconds: float = 300.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(max_attempts=settings.retry_max_attempts, base_seconds=settings.retry_base_seconds,
                   cap_seconds=settings.retry_cap_seconds)

    def delay(self, failed_attempts: int) -> dt.timedelta:
        """The wait before the next attempt after `failed_attempts` failures: base, 2×base, 4×base, …
        never more than the cap."""
        exponent = max(0, failed_attempts - 1)
        # Capping the exponent first keeps 2**n from growing without bound on a huge count.
        seconds = self.base_seconds * 2 ** min(exponent, 62)
        return dt.timedelta(seconds=min(self.cap_seconds, seconds))

    def gives_up_after(self, failed_attempts: int) -> bool:
        return failed_attempts >= self.max_attempts


def _ids(body: Any) -> tuple[str | None, str | None]:
    if not isinstance(body, dict):
        return None, None
    application_id, event_id = body.get("application_id"), body.get("event_id")
    return (application_id if isinstance(application_id, str) else None,
            event_id if isinstance(event_id, str) else None)


def schedule_retry(uow_factory: Callable[[], UnitOfWork], *, stage: str, body: Any, failed_attempts: int,
                   error: str, due_at: dt.datetime) -> int:
    application_id, event_id = _ids(body)
    with uow_factory() as uow:
        row = models.ScheduledRetry(stage=stage, application_id=application_id, event_id=event_id, body=body,
                                    attempts=failed_attempts, due_at=due_at, last_error=error)
        uow.deliveries.add_retry(row)
        uow.commit()
        return row.id


def dead_letter(uow_factory: Callable[[], UnitOfWork], *, stage: str, body: Any, failed_attempts: int,
                error: str) -> int:
    application_id, event_id = _ids(body)
    with uow_factory() as uow:
        row = models.DeadLetter(stage=stage, application_id=application_id, event_id=event_id, body=body,
                                error=error, attempts=failed_attempts)
        uow.deliveries.add_dead_letter(row)
        uow.commit()
        return row.id


@dataclass(frozen=True)
class DueRetry:
    id: int
    stage: str
    body: Any
    attempts: int


def due_retries(uow_factory: Callable[[], UnitOfWork], now: dt.datetime, limit: int) -> list[DueRetry]:
    with uow_factory() as uow:
        return [DueRetry(r.id, r.stage, r.body, r.attempts) for r in uow.deliveries.due_retries(now, limit)]


def forget_retries(uow_factory: Callable[[], UnitOfWork], ids: Sequence[int]) -> None:
    with uow_factory() as uow:
        uow.deliveries.delete_retries(ids)
        uow.commit()


class NoSuchDeadLetter(LookupError):
    """Replay asked for ids that are not dead letters waiting for a replay."""


def replay(uow_factory: Callable[[], UnitOfWork], ids: Iterable[int] | None, *,
           now: Callable[[], dt.datetime] = models.utcnow) -> list[int]:
    """Re-drive dead letters (`ids`, or every open one when None) from a fresh attempt count.

    Each goes back to its stage's queue through the relay, as a retry due now, in the same
    transaction that marks it replayed: a replay is never lost nor done twice. All or nothing: an
    unknown or already replayed id changes nothing and raises NoSuchDeadLetter."""
    wanted = None if ids is None else sorted(set(ids))
    with uow_factory() as uow:
        letters = uow.deliveries.open_dead_letters(wanted)
        if wanted is not None:
            missing = sorted(set(wanted) - {d.id for d in letters})
            if missing:
                raise NoSuchDeadLetter(missing)
        at = now()
        for letter in letters:
            uow.deliveries.add_retry(models.ScheduledRetry(
                stage=letter.stage, application_id=letter.application_id, event_id=letter.event_id,
                body=letter.body, attempts=0, due_at=at, last_error=f"replay of dead letter {letter.id}"))
            letter.replayed_at = at
        uow.commit()
        return [d.id for d in letters]
