"""The sweeper: re-drives applications stuck in a working state, so a message lost by the broker (a
Redis restarted empty, a message dropped on the floor) cannot strand a citizen's application.

An application in `received`, `accepted` or `processing` that nobody has touched for the grace period
gets the event for its next step again, through the outbox. The re-driven event has a new event id,
so the processed-events record does not stop it; what keeps a merely slow original from doing the
work twice is that every stage handler works only from the state it expects (stages._apply) and the
conversion stage only once (`converted`): whichever of the two messages comes second finds the
application moved on and does nothing. Applications waiting for the citizen (`awaiting_payment`,
`needs_supplement`) or an officer are not stuck; pending DongBoHoSoMC calls are re-sent by the
portal_sync worker's own timer.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from licence_service.messaging.envelope import Event
from licence_service.messaging.names import RoutingKeys, stage_for_routing_key
from licence_service.services.transitions import emit
from licence_service.store import models
from licence_service.store.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

STUCK_STATUSES = frozenset({"received", "accepted", "processing"})
# The stages that move an application between those statuses (portal_sync only reports them).
WORKFLOW_STAGES = ("checks", "fee", "conversion", "issuance")
BATCH = 200


def next_step(application: models.Application) -> str | None:
    """The routing key of the event that moves `application` on from where it stands, if any."""
    if application.status == "received":
        return RoutingKeys.RECEIVED  # the checks
    if application.status == "accepted":
        return RoutingKeys.ACCEPTED  # the fee
    if application.status == "processing":
        # Paid: conversion first, then issuance from its result.
        return RoutingKeys.CONVERTED if application.converted else RoutingKeys.PAID
    return None


def sweep(uow_factory: Callable[[], UnitOfWork], *, grace: dt.timedelta,
          now: Callable[[], dt.datetime] = models.utcnow, limit: int = BATCH) -> list[str]:
    """Re-drive every application stuck longer than `grace`; return their ids.

    Each is re-driven at most once per grace period, and not at all while its next stage's message
    is parked for a retry or dead-lettered (that message is not lost; an operator replays a dead
    letter)."""
    at = now()
    untouched_since = at - grace
    with uow_factory() as uow:
        candidates = list(uow.deliveries.stuck_applications(STUCK_STATUSES, untouched_since, limit,
                                                            stages=WORKFLOW_STAGES))
    redriven = []
    for application_id in candidates:
        if _redrive(uow_factory, application_id, untouched_since, at):
            redriven.append(application_id)
    return redriven


def _redrive(uow_factory: Callable[[], UnitOfWork], application_id: str, untouched_since: dt.datetime,
             at: dt.datetime) -> bool:
    with uow_factory() as uow:
        # Checked again under the row lock: a handler may have moved it on since the query.
        application = uow.applications.get(application_id, for_update=True)
        if application is None or application.updated_at > untouched_since:
            return False
        routing_key = next_step(application)
        if routing_key is None:
            return False
        stage = stage_for_routing_key(routing_key)
        if stage and uow.deliveries.waiting_on_failure(application_id, stage):
            return False
        last = uow.deliveries.redrive(application_id)
        if last is not None and last.last_at > untouched_since:
            return False
        event = Event(type=routing_key, application_id=application_id, correlation_id=f"sweeper:{application_id}")
        emit(uow, event)
        if last is None:
            last = models.StuckRedrive(application_id=application_id, redrives=0)
            uow.deliveries.add_redrive(last)
        last.status, last.routing_key, last.event_id, last.last_at = (application.status, routing_key,
                                                                       event.event_id, at)
        last.redrives = (last.redrives or 0) + 1
        uow.commit()
        log.warning("sweeper: application %s stuck in %s since %s; re-published %s (re-drive %d)",
                    application_id, application.status, application.updated_at.isoformat(), routing_key,
                    last.redrives)
        return True
