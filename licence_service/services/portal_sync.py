"""Sending the DongBoHoSoMC calls owed to the portal, in order per application (PORTAL.md §2).

Items are written in the same transaction as the status change that owes them (transitions.py), so
no change is lost whatever happens to a worker. For one application only its oldest pending item (the
head) may be sent, and only by the worker holding its lease:

1. claim: in one short transaction, lease the head to this worker until now + lease (conditional
   UPDATE; exactly one of several racing workers wins) and build the payload;
2. send: the HTTP call, outside any transaction;
3. record: in one short transaction, and only if the lease is still ours, write the outcome and
   release the lease; when the call is done with (sent, or failed for good), claim the next head in
   that same transaction (step 1 for the next call, one transaction fewer per call).

While a call is in flight its item stays pending and leased, so no other worker sends it again or
sends anything after it: a later status is never overtaken by a retry of an earlier one. A worker
killed mid-call leaves a lease that simply expires; the item is then sent again (so at least once).
A 5xx, 429 or network error is retried with capped exponential backoff for at least the configured
horizon (24 hours by default) from the item's first attempt, then marked failed for an operator; any
other refusal is marked failed at once (a retry would get the same answer). A failed item no longer
holds back the later ones of its application, and a failing application never holds back another.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from licence_service.config import Settings
from licence_service.registers.portal import PortalClient, SyncResult, build_payload
from licence_service.store import models
from licence_service.store.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

# 2**60 × any sane base is far beyond any cap; bounding the exponent avoids float overflow.
_MAX_DOUBLINGS = 60


def backoff(attempts: int, settings: Settings) -> dt.timedelta:
    """Capped exponential backoff after the `attempts`-th failed attempt: base, 2×base, 4×base, …, cap."""
    doublings = min(max(0, attempts - 1), _MAX_DOUBLINGS)
    seconds = min(settings.portal_sync_backoff_cap_seconds, settings.portal_sync_backoff_base_seconds * 2**doublings)
    return dt.timedelta(seconds=seconds)


def retry_horizon(settings: Settings) -> dt.timedelta:
    return dt.timedelta(hours=settings.portal_sync_retry_hours)


@dataclass(frozen=True)
class Claim:
    item_id: int
    token: str
    application_id: str
    portal_status: int
    payload: dict[str, Any]


def sync_application(application_id: str, *, uow_factory: Callable[[], UnitOfWork], client: PortalClient,
                     settings: Settings, now: Callable[[], dt.datetime] = models.utcnow,
                     read_uow_factory: Callable[[], UnitOfWork] | None = None) -> int:
    """Send what is due for one application, in order; return how many calls the portal acknowledged.

    Returns early when the head is not due yet, is leased by another worker, or has just failed in
    a way worth retrying later. With `read_uow_factory`, whether there is anything to claim is
    looked at first in a read-only transaction (on SQLite it does not queue for the writer lock):
    many wake-ups find nothing to claim (the call is in flight in another thread, or already sent)."""
    if not client.configured:
        _skip_pending(application_id, uow_factory)
        return 0
    if read_uow_factory is not None and not _head_claimable(application_id, read_uow_factory, now):
        return 0
    acknowledged = 0
    claim = _claim_head(application_id, uow_factory=uow_factory, settings=settings, now=now)
    while claim is not None:
        result = client.send(claim.payload)
        # The outcome is recorded and, when the call is done with (sent, or failed for an operator),
        # the next call claimed in the same transaction: it is now the head.
        outcome, claim = _record(claim, result, uow_factory=uow_factory, settings=settings, now=now)
        if outcome == "sent":
            acknowledged += 1
        # Otherwise backing off, or the lease was lost to another worker: claim is None.
    return acknowledged


def _skip_pending(application_id: str, uow_factory: Callable[[], UnitOfWork]) -> None:
    """No portal configured (the embedded default): nothing to send, so nothing is owed."""
    with uow_factory() as uow:
        for item in uow.portal_sync.for_application(application_id):
            if item.state == "pending":
                item.state = "skipped"
        uow.commit()


def _head_claimable(application_id: str, read_uow_factory: Callable[[], UnitOfWork],
                    now: Callable[[], dt.datetime]) -> bool:
    """Whether the application has a head that is due and not leased, as far as a read can tell;
    _claim_head decides under the write lock."""
    with read_uow_factory() as uow:
        item = uow.portal_sync.head(application_id)
        if item is None:
            return False
        at = now()
        return item.next_attempt_at <= at and (item.claimed_until is None or item.claimed_until <= at)


def _claim_head(application_id: str, *, uow_factory: Callable[[], UnitOfWork], settings: Settings,
                now: Callable[[], dt.datetime]) -> Claim | None:
    with uow_factory() as uow:
        claim = _claim_in(uow, application_id, settings=settings, at=now())
        if claim is not None:
            uow.commit()
        return claim


def _claim_in(uow: UnitOfWork, application_id: str, *, settings: Settings, at: dt.datetime) -> Claim | None:
    """Lease the application's head to this worker in the caller's transaction, if it is due and
    nobody holds it, and build its payload."""
    item = uow.portal_sync.head(application_id)
    if item is None:
        return None
    if item.next_attempt_at > at:
        return None  # backing off
    if item.claimed_until is not None and item.claimed_until > at:
        return None  # another worker is sending it (or crashed doing so: its lease will expire)
    token = str(uuid.uuid4())
    until = at + dt.timedelta(seconds=settings.portal_sync_lease_seconds)
    if not uow.portal_sync.claim(item.id, token, now=at, until=until):
        return None  # another worker won the race for it
    application = uow.applications.get(application_id, with_history=False)
    # isUpdating "False" only until the portal has acknowledged a first call for this dossier.
    first = application.portal_acked_status is None
    payload = build_payload(application, item.portal_status, first=first, settings=settings)
    return Claim(item.id, token, application_id, item.portal_status, payload)


def _record(claim: Claim, result: SyncResult, *, uow_factory: Callable[[], UnitOfWork], settings: Settings,
            now: Callable[[], dt.datetime]) -> tuple[str, Claim | None]:
    """Write the outcome of a call: "sent", "retry" (scheduled again), "failed" (given up), or "lost"
    when the lease expired meanwhile (then the new holder's outcome is the one that counts). After
    "sent" or "failed", the application's next call is claimed in the same transaction (or None)."""
    with uow_factory() as uow:
        item = uow.portal_sync.get_for_update(claim.item_id)
        if item is None or item.claim_token != claim.token:
            log.warning("portal sync of %s (status %s): lease lost while sending; outcome %s left to the "
                        "new holder", claim.application_id, claim.portal_status, result.detail)
            return "lost", None
        at = now()
        item.attempts += 1
        item.claim_token = None
        item.claimed_until = None
        if result.ok:
            outcome = item.state = "sent"
            item.sent_at = at
            item.last_error = None
            uow.portal_sync.acknowledged(claim.application_id, item.portal_status)
        elif result.retryable and at < (item.first_attempt_at or at) + retry_horizon(settings):
            outcome = "retry"
            item.last_error = result.detail
            item.next_attempt_at = at + backoff(item.attempts, settings)
            log.warning("portal sync of %s (status %s) failed (attempt %d), retrying at %s: %s",
                        claim.application_id, item.portal_status, item.attempts, item.next_attempt_at.isoformat(),
                        result.detail)
        else:
            outcome = item.state = "failed"
            item.last_error = result.detail if not result.retryable else (
                f"gave up after {item.attempts} attempts over {settings.portal_sync_retry_hours:g} h: {result.detail}")
            log.error("portal sync of %s (status %s) failed for good: %s", claim.application_id,
                      item.portal_status, item.last_error)
        following = None
        if outcome in ("sent", "failed"):
            uow.session.flush()  # the head query below must see this item done
            following = _claim_in(uow, claim.application_id, settings=settings, at=at)
        uow.commit()
        return outcome, following


def due_applications(uow_factory: Callable[[], UnitOfWork], *, now: dt.datetime, limit: int = 100) -> list[str]:
    with uow_factory() as uow:
        return list(uow.portal_sync.applications_due(now, limit))


# ------------------------------------------------------------------------------------------------
# What an operator sees


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _problem(item: models.PortalSyncItem) -> dict[str, Any]:
    return {"seq": item.seq, "portal_status": item.portal_status, "state": item.state, "attempts": item.attempts,
            "first_attempt_at": _iso(item.first_attempt_at), "next_attempt_at": _iso(item.next_attempt_at)
            if item.state == "pending" else None, "last_error": item.last_error}


def sync_state(uow_factory: Callable[[], UnitOfWork], application: models.Application) -> dict[str, Any]:
    """The application's sync as the API shows it: the last status the portal acknowledged, and
    `state` — in_sync, pending (calls not yet sent), retrying (the next call has failed and will be
    tried again) or failed (a call was given up; an operator must look) — with the failing calls."""
    with uow_factory() as uow:
        items = uow.portal_sync.for_application(application.id)
    failed = [i for i in items if i.state == "failed"]
    pending = [i for i in items if i.state == "pending"]
    if failed:
        state = "failed"
    elif pending and pending[0].attempts > 0:
        state = "retrying"
    elif pending:
        state = "pending"
    else:
        state = "in_sync"
    return {
        "acknowledged_portal_status": application.portal_acked_status,
        "state": state,
        "failing": [_problem(i) for i in failed + [p for p in pending if p.attempts > 0]],
    }


@dataclass(frozen=True)
class FailingSync:
    application_id: str
    portal_dossier_id: str
    seq: int
    portal_status: int
    state: str
    attempts: int
    first_attempt_at: dt.datetime | None
    next_attempt_at: dt.datetime | None
    last_error: str | None


def failing(uow_factory: Callable[[], UnitOfWork]) -> list[FailingSync]:
    """Every call given up or being retried after a failure, oldest first (the operator's list)."""
    with uow_factory() as uow:
        return [
            FailingSync(application.id, application.portal_dossier_id, item.seq, item.portal_status, item.state,
                        item.attempts, item.first_attempt_at,
                        item.next_attempt_at if item.state == "pending" else None, item.last_error)
            for item, application in uow.portal_sync.failing()
        ]
