"""Accepting an application: shared by the checks stage (a clean dossier) and an officer's decision on
a held one, so both fix the same facts and hand over to the fee stage the same way."""

from __future__ import annotations

import datetime as dt

from licence_service.domain import calendar
from licence_service.domain.regime import local_date
from licence_service.messaging.envelope import Event
from licence_service.messaging.names import RoutingKeys
from licence_service.services.transitions import change_status, emit
from licence_service.store import models
from licence_service.store.unit_of_work import UnitOfWork


def accept(
    uow: UnitOfWork,
    application: models.Application,
    *,
    now: dt.datetime,
    working_days: int,
    actor: str,
    note: str | None = None,
    event_id: str | None = None,
    correlation_id: str | None = None,
) -> None:
    """Mark `application` accepted at `now` (portal 2) and emit ACCEPTED for the fee stage, in the
    caller's transaction."""
    application.accepted_at = now
    # R-TIME: NgayHenTra = acceptance date + N working days on the VN calendar, N from configuration.
    application.appointment_date = calendar.appointment_date(local_date(now), working_days)
    change_status(uow, application, "accepted", actor=actor, note=note, event_id=event_id,
                  correlation_id=correlation_id)
    emit(uow, Event(type=RoutingKeys.ACCEPTED, application_id=application.id, correlation_id=correlation_id))
