"""Service-layer handlers behind the API: submit, pay, withdraw. Each runs in one unit of work."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError

from licence_service.domain.model import FINAL_STATUSES
from licence_service.domain.regime import regime_for
from licence_service.messaging.envelope import Event
from licence_service.messaging.names import RoutingKeys
from licence_service.services.photos import keep_photo, photo_key
from licence_service.services.transitions import (
    InvalidTransition,
    change_status,
    change_status_if_unchanged,
    emit,
    insert_new,
)
from licence_service.store import models


class NotFound(Exception):
    pass


class DossierConflict(Exception):
    """The portal dossier id was already used for a different body (HTTP 409)."""


class PaymentRejected(Exception):
    """The payment does not match the fee; `errors` maps field names to messages (HTTP 422)."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


def body_fingerprint(body: Any) -> str:
    """A hash of the submitted JSON that ignores key order and white space, for idempotent retries."""
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class SubmitResult:
    application: models.Application
    created: bool


def submit(uow_factory: Any, data: dict[str, Any], raw_body: Any, *, client_id: str,
           correlation_id: str | None = None) -> SubmitResult:
    """Store a new application with its first history row and outbox event, or return the one
    already stored under the same portal dossier id (PORTAL.md: 200 same body, 409 different)."""
    fingerprint = body_fingerprint(raw_body)
    # Everything is built before the transaction starts, so the database's write lock (SQLite's
    # BEGIN IMMEDIATE) is held only for the statements themselves.
    application = _new_application(data, fingerprint)
    photo = data.get("photo")
    with uow_factory() as uow:
        # Insert first, look up only when the insert fails: a new dossier (the common case) costs no
        # query, and the unique index on portal_dossier_id decides between two identical
        # submissions racing each other (on PostgreSQL the second waits for the first to commit).
        try:
            insert_new(uow, application, "received", actor=client_id, note="submitted via portal",
                       correlation_id=correlation_id, at=application.created_at,
                       events=(Event(type=RoutingKeys.RECEIVED, application_id=application.id,
                                     correlation_id=correlation_id),))
            if photo:
                # Kept once, by the hash the application refers to; purged after it settles.
                keep_photo(uow, photo["content_type"], photo["data"], application.photo_sha256)
            uow.commit()
        except IntegrityError:
            # The dossier id was submitted before (a retry), or a concurrent submission won the race.
            uow.rollback()
        else:
            return SubmitResult(application, created=True)
    with uow_factory() as uow:
        existing = uow.applications.get_by_dossier(data["portal_dossier_id"])
        if existing is None:
            # The integrity error had another cause than the dossier race: a real fault.
            raise RuntimeError(f"could not store dossier {data['portal_dossier_id']}: integrity error")
        return _same_or_conflict(existing, fingerprint)


def _same_or_conflict(existing: models.Application, fingerprint: str) -> SubmitResult:
    if existing.body_sha256 != fingerprint:
        raise DossierConflict(existing.portal_dossier_id)
    return SubmitResult(existing, created=False)


def _new_application(data: dict[str, Any], fingerprint: str) -> models.Application:
    applicant = data["applicant"]
    received_at: dt.datetime = data["received_at"]
    photo = data.get("photo")
    details = {
        "requested_classes": data.get("requested_classes") or {},
        "force_majeure": bool(data.get("force_majeure", False)),
        "health_certificate": _jsonable(data.get("health_certificate")),
        "delivery": _jsonable(data.get("delivery")),
    }
    now = models.utcnow()
    return models.Application(
        id=str(uuid.uuid4()),
        portal_dossier_id=data["portal_dossier_id"],
        body_sha256=fingerprint,
        procedure=data["procedure"],
        channel=data.get("channel", "online"),
        reason=data.get("reason"),
        status="new",
        portal_status=0,
        regime=regime_for(received_at),  # R-REGIME: chosen once, from received_at
        received_at=received_at,
        citizen_id=applicant["citizen_id"],
        licence_number=data["licence"]["number"],
        applicant=_jsonable(applicant),
        details=details,
        photo_sha256=photo_key(photo["data"]) if photo else None,
        refusal_reasons=[],
        created_at=now,
        updated_at=now,
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        return None  # photos are kept by hash, never inside the JSON columns
    return value


def get(uow_factory: Any, application_id: str) -> models.Application:
    with uow_factory() as uow:
        application = uow.applications.get(application_id)
        if application is None:
            raise NotFound(application_id)
        return application


def find_by_dossier(uow_factory: Any, portal_dossier_id: str) -> list[models.Application]:
    with uow_factory() as uow:
        application = uow.applications.get_by_dossier(portal_dossier_id)
        return [application] if application else []


@dataclass(frozen=True)
class PaymentResult:
    application: models.Application
    created: bool


def pay(uow_factory: Any, application_id: str, data: dict[str, Any], *, client_id: str,
        correlation_id: str | None = None, read_uow_factory: Any = None) -> PaymentResult:
    """Record a fee payment (R-FEE: the full fee, once) and move the application to processing.

    With `read_uow_factory`, the application and any earlier payment of the transaction are read
    first without the database's write lock (SQLite), and the payment written with a conditional
    UPDATE of the application (transitions.change_status_if_unchanged): the lock is held for the
    writes alone. Anything but a first payment of an unchanged application awaiting it (a repeat,
    another state, a concurrent change) is answered by the locked path."""
    try:
        if read_uow_factory is not None:
            result = _record_payment_unlocked(uow_factory, read_uow_factory, application_id, data, client_id,
                                              correlation_id)
            if result is not None:
                return result
        return _record_payment(uow_factory, application_id, data, client_id, correlation_id)
    except IntegrityError:
        # The same transaction id raced in concurrently (a retry, or a mix-up between two
        # applications): the unique index kept one. Answer as if this request came second.
        return _record_payment(uow_factory, application_id, data, client_id, correlation_id)


def _check_fee(application: models.Application, data: dict[str, Any]) -> None:
    problems: dict[str, list[str]] = {}
    if data["amount"] != application.fee_amount:
        problems["amount"] = [f"must equal the fee of {application.fee_amount} VND"]
    if data["currency"] != application.fee_currency:
        problems["currency"] = [f"must be {application.fee_currency}"]
    if problems:
        raise PaymentRejected(problems)


def _payment_rows(uow: Any, application: models.Application, data: dict[str, Any],
                  correlation_id: str | None) -> None:
    """The payment and the paid event, appended to the unit of work (the status change is the caller's)."""
    uow.append(models.Payment(application_id=application.id, transaction_id=data["transaction_id"],
                              amount=data["amount"], currency=data["currency"], paid_at=data["paid_at"]))
    emit(uow, Event(type=RoutingKeys.PAID, application_id=application.id, correlation_id=correlation_id))


def _record_payment_unlocked(uow_factory: Any, read_uow_factory: Any, application_id: str, data: dict[str, Any],
                             client_id: str, correlation_id: str | None) -> PaymentResult | None:
    with read_uow_factory() as uow:
        application = uow.applications.get_status(application_id)
        if application is None or application.status != "awaiting_payment":
            return None
        if uow.applications.payment_by_transaction(data["transaction_id"]) is not None:
            return None
        # The seq of the DongBoHoSoMC item the status change owes, read here rather than under the
        # lock: only a status change adds an item, and one since this read fails the conditional
        # UPDATE below (a seq taken meanwhile would fail the unique (application, seq) index too).
        next_seq = uow.applications.next_sync_seq(application_id)
    _check_fee(application, data)
    with uow_factory() as uow:
        uow.next_sync_seqs[application_id] = next_seq
        if not change_status_if_unchanged(uow, application, "processing", actor=client_id,
                                          note=f"fee paid, transaction {data['transaction_id']}",
                                          correlation_id=correlation_id, also={"fee_paid": True}):
            return None  # changed since it was read
        _payment_rows(uow, application, data, correlation_id)
        uow.commit()
    return PaymentResult(application, created=True)


def _record_payment(uow_factory: Any, application_id: str, data: dict[str, Any], client_id: str,
                    correlation_id: str | None) -> PaymentResult:
    with uow_factory() as uow:
        # Without its history: a payment only appends to it, and select-in loading every earlier
        # row cost every payment a query (a sixth of its time in the pipeline benchmark).
        application = uow.applications.get(application_id, for_update=True, with_history=False)
        if application is None:
            raise NotFound(application_id)
        earlier = uow.applications.payment_by_transaction(data["transaction_id"])
        if earlier is not None:
            if earlier.application_id != application_id:
                raise InvalidTransition(
                    f"transaction {data['transaction_id']} already paid another application"
                )
            return PaymentResult(application, created=False)
        if application.status != "awaiting_payment":
            raise InvalidTransition(f"application is {application.status}, not awaiting payment")
        _check_fee(application, data)
        application.fee_paid = True
        change_status(uow, application, "processing", actor=client_id,
                      note=f"fee paid, transaction {data['transaction_id']}", correlation_id=correlation_id)
        _payment_rows(uow, application, data, correlation_id)
        uow.commit()
        return PaymentResult(application, created=True)


def withdraw(uow_factory: Any, application_id: str, reason: str, *, client_id: str,
             correlation_id: str | None = None) -> models.Application:
    """The citizen withdraws (portal status 7); not possible once the licence is issued."""
    with uow_factory() as uow:
        application = uow.applications.get(application_id, for_update=True)
        if application is None:
            raise NotFound(application_id)
        if application.status == "withdrawn":
            return application
        if application.status in FINAL_STATUSES or application.status in ("issued", "delivered"):
            raise InvalidTransition(f"application is {application.status} and can no longer be withdrawn")
        change_status(uow, application, "withdrawn", actor=client_id, note=reason, correlation_id=correlation_id)
        uow.commit()
        return application


def issued_document(uow_factory: Any, application: models.Application) -> dict[str, Any] | None:
    """The issued licence (its printed data) or permit, once issuance has run."""
    if not (application.issued_card_serial or application.issued_permit_number):
        return None
    with uow_factory() as uow:
        if application.procedure == "international_permit":
            permit = uow.register.permit_for_application(application.id)
            if permit is None:
                return None
            return {
                "kind": "international_permit",
                "number": permit.number,
                "licence_number": permit.licence_number,
                "issued_on": permit.issued_on.isoformat(),
                "valid_until": permit.valid_until.isoformat(),
                "classes": [{"code": c} for c in permit.classes],
            }
        card = uow.register.card_for_application(application.id)
        return dict(card.printed or {}) if card else None
