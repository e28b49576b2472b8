"""Status changes: every one writes the current state, an append-only history row, and — when the
portal's status code changes — a DongBoHoSoMC item owed to the portal plus its outbox event, all in
the caller's transaction."""

from __future__ import annotations

import datetime as dt
from typing import Any

from licence_service.domain.model import PORTAL_STATUS
from licence_service.messaging.envelope import Event
from licence_service.messaging.names import RoutingKeys
from licence_service.store import models
from licence_service.store.unit_of_work import UnitOfWork


class InvalidTransition(Exception):
    """A request asked for a change the application's current state does not allow (HTTP 409)."""


def emit(uow: UnitOfWork, event: Event) -> None:
    uow.append(_outbox_message(event))


def change_status(
    uow: UnitOfWork,
    application: models.Application,
    status: str,
    *,
    actor: str,
    note: str | None = None,
    event_id: str | None = None,
    correlation_id: str | None = None,
    at: dt.datetime | None = None,
) -> None:
    portal_changed, history = _set_status(application, status, actor=actor, note=note, event_id=event_id, at=at)
    uow.append(history)
    if portal_changed:
        owe_portal_sync(uow, application, history.portal_status, correlation_id=correlation_id)


def change_status_if_unchanged(
    uow: UnitOfWork,
    application: models.Application,
    status: str,
    *,
    actor: str,
    note: str | None = None,
    correlation_id: str | None = None,
    also: dict[str, Any] | None = None,
) -> bool:
    """change_status for an application read in an earlier transaction (so not in this one's
    session): its row gets the new status and the `also` columns only if it has not changed since
    it was read, with one conditional UPDATE instead of a locked read and the ORM's flush. Returns
    False when it has changed: nothing is written, and `application` is stale."""
    expected_status, read_at = application.status, application.updated_at
    portal_changed, history = _set_status(application, status, actor=actor, note=note, event_id=None, at=None)
    values = {"status": status, "portal_status": history.portal_status, "updated_at": history.at, **(also or {})}
    if not uow.applications.update_if_unchanged(application.id, status=expected_status, updated_at=read_at,
                                                values=values):
        return False
    for column, value in (also or {}).items():
        setattr(application, column, value)
    uow.append(history)
    if portal_changed:
        owe_portal_sync(uow, application, history.portal_status, correlation_id=correlation_id)
    return True


def _set_status(
    application: models.Application, status: str, *, actor: str, note: str | None, event_id: str | None,
    at: dt.datetime | None,
) -> tuple[bool, models.ApplicationHistory]:
    """Move `application` to `status`; return whether its portal status changed, and its history row."""
    at = at or models.utcnow()
    portal_status = PORTAL_STATUS[status]
    portal_changed = portal_status != application.portal_status
    application.status = status
    application.portal_status = portal_status
    application.updated_at = at
    history = models.ApplicationHistory(application_id=application.id, status=status, portal_status=portal_status,
                                        at=at, note=note, actor=actor, event_id=event_id)
    return portal_changed, history


def owe_portal_sync(
    uow: UnitOfWork, application: models.Application, portal_status: int, *, correlation_id: str | None = None
) -> None:
    uow.append(models.PortalSyncItem(
        application_id=application.id,
        seq=_next_sync_seq(uow, application.id),
        portal_status=portal_status,
    ))
    emit(uow, _status_changed(application, portal_status, correlation_id))


def _next_sync_seq(uow: UnitOfWork, application_id: str) -> int:
    # Items this transaction appended (written at its commit) come after every stored one.
    pending = [o.seq for o in uow.appended
               if isinstance(o, models.PortalSyncItem) and o.application_id == application_id]
    if pending:
        return max(pending) + 1
    if application_id in uow.next_sync_seqs:
        return uow.next_sync_seqs[application_id]
    with uow.session.no_autoflush:
        return uow.applications.next_sync_seq(application_id)


def _status_changed(application: models.Application, portal_status: int, correlation_id: str | None) -> Event:
    return Event(
        type=RoutingKeys.STATUS_CHANGED,
        application_id=application.id,
        data={"portal_status": portal_status},
        correlation_id=correlation_id,
    )


def _outbox_message(event: Event) -> models.OutboxMessage:
    return models.OutboxMessage(event_id=event.event_id, routing_key=event.type, payload=event.to_dict())


def insert_new(
    uow: UnitOfWork,
    application: models.Application,
    status: str,
    *,
    actor: str,
    note: str | None = None,
    correlation_id: str | None = None,
    at: dt.datetime | None = None,
    events: tuple[Event, ...] = (),
) -> None:
    """Store a new application (built by the caller, not added to the session) in its first status,
    with the rows change_status and emit would write for it: the history row, the DongBoHoSoMC item
    owed when the portal status changes (seq 1: the application has no other) and its event, then
    `events`. Inserted with one statement per table rather than through the ORM's flush, which cost
    the submit as much as everything else it does (bench/README.md, issue 8); the objects stay
    transient. A dossier id already stored fails here, with IntegrityError."""
    portal_changed, history = _set_status(application, status, actor=actor, note=note, event_id=None, at=at)
    portal_status = history.portal_status
    sync_items, outbox = [], []
    if portal_changed:
        sync_items.append(models.PortalSyncItem(application_id=application.id, seq=1, portal_status=portal_status))
        outbox.append(_outbox_message(_status_changed(application, portal_status, correlation_id)))
    outbox.extend(_outbox_message(event) for event in events)
    uow.applications.insert_new(application, [history], sync_items, outbox)
