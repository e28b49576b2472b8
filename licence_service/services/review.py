"""Settling an application held in `needs_supplement` (portal 5): an officer's decision, or the
citizen's supplementary documents that send it back through the checks. Each runs in one unit of work
and changes nothing unless the application is still held."""

from __future__ import annotations

import datetime as dt
from typing import Any

from licence_service.domain.eligibility import LICENCE_EXPIRED
from licence_service.messaging.envelope import Event
from licence_service.messaging.names import RoutingKeys
from licence_service.services.acceptance import accept
from licence_service.services.applications import NotFound
from licence_service.services.photos import keep_photo
from licence_service.services.transitions import InvalidTransition, change_status, emit
from licence_service.store import models
from licence_service.store.unit_of_work import UnitOfWork

HELD = "needs_supplement"


def _held(uow: UnitOfWork, application_id: str) -> models.Application:
    application = uow.applications.get(application_id, for_update=True)
    if application is None:
        raise NotFound(application_id)
    if application.status != HELD:
        raise InvalidTransition(f"application is {application.status}, not {HELD}")
    return application


def decide(uow_factory: Any, application_id: str, decision: str, note: str | None, *, officer: str,
           working_days: int, now: dt.datetime | None = None,
           correlation_id: str | None = None) -> models.Application:
    """An officer accepts or refuses a held application; the history row carries the officer's client
    id as its actor.

    accept: exactly as the checks accept a clean dossier (accepted_at, R-TIME appointment date, then
    the fee stage through ACCEPTED). refuse: portal 3 with the reasons the checks held it for."""
    with uow_factory() as uow:
        application = _held(uow, application_id)
        summary = f"officer decision: {decision}" + (f" — {note}" if note else "")
        if decision == "accept":
            accept(uow, application, now=now or models.utcnow(), working_days=working_days, actor=officer,
                   note=summary, correlation_id=correlation_id)
        else:
            # R-ELIG-6's force-majeure hold is the only review ground today, hence the fallback for
            # an application held before its reasons were recorded.
            reasons = (application.details or {}).get("review_reasons") or [LICENCE_EXPIRED]
            application.refusal_reasons = list(reasons)
            change_status(uow, application, "refused", actor=officer, note=summary,
                          correlation_id=correlation_id)
        uow.commit()
        return application


def supplement(uow_factory: Any, application_id: str, data: dict[str, Any], *, client_id: str,
               correlation_id: str | None = None) -> models.Application:
    """Store a new health certificate and/or photo on a held application and send it back through
    the checks (status `received`, portal 1; a SUPPLEMENTED event for the checks queue)."""
    with uow_factory() as uow:
        application = _held(uow, application_id)
        details = {k: v for k, v in (application.details or {}).items() if k != "review_reasons"}
        supplied = []
        certificate = data.get("health_certificate")
        if certificate:
            # The reference only: the checks ask the health-certificate register, never trust it.
            details["health_certificate"] = {**certificate, "issued_on": certificate["issued_on"].isoformat()}
            supplied.append(f"health certificate {certificate['number']}")
        photo = data.get("photo")
        if photo:
            # Kept as at submission: once, by the hash the application refers to. The replaced
            # photo is left to the purge (services.photos), which counts it from its storing.
            application.photo_sha256 = keep_photo(uow, photo["content_type"], photo["data"])
            supplied.append("photo")
        application.details = details
        change_status(uow, application, "received", actor=client_id,
                      note="supplemented: " + ", ".join(supplied), correlation_id=correlation_id)
        emit(uow, Event(type=RoutingKeys.SUPPLEMENTED, application_id=application.id,
                        correlation_id=correlation_id))
        uow.commit()
        return application
