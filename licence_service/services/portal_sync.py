"""Sending the DongBoHoSoMC calls owed to the portal, in order per application (PORTAL.md §2).

Items are written in the same transaction as the status change that owes them (transitions.py), so
no change is lost whatever happens to a worker. For one application only its oldest pending item (the
head) may be sent, and only by the worker holding its lease. One call carries the heads of up to
PORTAL_SYNC_BATCH applications (its `data` is a list), at most one entry per application:

1. claim: find the due heads of the applications in hand and build their entries, loading the
   applications in one query, in a read-only transaction; then, in one short writing transaction,
   lease them to this worker until now + lease (one conditional UPDATE; of several racing workers
   exactly one wins each item);
2. send: outside any transaction, one call per `isUpdating` value among the claimed heads
   ("False" only for an application's first sync, and the flag belongs to the call): so one call,
   or two when the batch mixes first syncs and updates. Keeping first syncs together rather than
   each in a call of its own is what batches a burst of new applications. Before each call the
   leases are renewed if they might run out while it lasts;
3. record: in one short transaction, and for each item only if its lease is still ours, write the
   outcomes and release the leases; for each application whose call is done with (sent, or failed
   for good), claim its next head in that same transaction (step 1 for the next call, one
   transaction fewer per call).

While a call is in flight its items stay pending and leased, so no other worker sends them again or
sends anything after them: a later status is never overtaken by a retry of an earlier one. A worker
killed mid-call leaves leases that simply expire; the items are then sent again (so at least once).
The portal answers a call as a whole, so its answer is every entry's: a 5xx, 429 or network error is
retried, per item, with capped exponential backoff (from that item's own attempts) for at least the
configured horizon (24 hours by default) from the item's first attempt, then marked failed for an
operator; any other refusal is marked failed at once (a retry would get the same answer) — after a
refused call of several entries, each is sent again alone, so only the one the portal refuses fails.
A failed item no longer holds back the later ones of its application, and a failing application holds
back another only while they share a batch's calls (each bounded by the HTTP timeout).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from licence_service.config import Settings
from licence_service.logs import log_context
from licence_service.registers.portal import PortalClient, SyncResult, payload_entry, sync_call
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
class ItemState:
    """A DongBoHoSoMC item's columns that the outcome of its call depends on."""

    attempts: int
    first_attempt_at: dt.datetime | None
    next_attempt_at: dt.datetime
    last_error: str | None


@dataclass(frozen=True)
class Claim:
    item_id: int
    token: str
    application_id: str
    portal_status: int
    # No status of this dossier acknowledged yet: its call must say isUpdating "False".
    first: bool
    entry: dict[str, Any]
    # The lease's end as this worker set it.
    until: dt.datetime
    # The item's columns its call's outcome depends on, as they were when it was claimed.
    item: ItemState
    # The log context of what woke the application up (its correlation id), for the lines about it.
    log_fields: Mapping[str, str] = field(default_factory=dict)


@contextlib.contextmanager
def _about(claim: Claim) -> Iterator[None]:
    # A sender thread handles many applications in turn: each line names the one it is about, with
    # the correlation id of the request that led to it.
    with log_context(**{**claim.log_fields, "application_id": claim.application_id}):
        yield


def sync_application(application_id: str, *, uow_factory: Callable[[], UnitOfWork], client: PortalClient,
                     settings: Settings, now: Callable[[], dt.datetime] = models.utcnow,
                     read_uow_factory: Callable[[], UnitOfWork] | None = None) -> int:
    """sync_applications for one application."""
    return sync_applications([application_id], uow_factory=uow_factory, client=client, settings=settings, now=now,
                             read_uow_factory=read_uow_factory)


def sync_applications(application_ids: Sequence[str], *, uow_factory: Callable[[], UnitOfWork],
                      client: PortalClient, settings: Settings, now: Callable[[], dt.datetime] = models.utcnow,
                      read_uow_factory: Callable[[], UnitOfWork] | None = None,
                      log_contexts: Mapping[str, Mapping[str, str]] | None = None) -> int:
    """Send what is due for these applications, in order per application, up to PORTAL_SYNC_BATCH
    of them per call; return how many status updates the portal acknowledged.

    An application drops out when its head is not due yet, is leased by another worker, or has just
    failed in a way worth retrying later; the others go on with their next heads. With
    `read_uow_factory`, what there is to claim is found in a read-only transaction (on SQLite it
    does not queue for the writer lock; see _claim_heads). `log_contexts` gives, per
    application, the log fields (correlation id) of what woke it up."""
    ids = list(dict.fromkeys(application_ids))
    contexts = log_contexts or {}
    if not ids:
        return 0
    if not client.configured:
        _skip_pending(ids, uow_factory)
        return 0
    acknowledged = 0
    size = settings.portal_sync_batch
    for start in range(0, len(ids), size):
        chunk = ids[start:start + size]
        claims = _claim_heads(chunk, uow_factory=uow_factory, settings=settings, now=now, contexts=contexts,
                              read_uow_factory=read_uow_factory)
        while claims:
            results = _send(claims, client=client, uow_factory=uow_factory, settings=settings, now=now)
            # The outcomes are recorded and, for each application whose call is done with (sent, or
            # failed for an operator), its next call claimed in the same transaction: it is now the head.
            outcomes, claims = _record(results, uow_factory=uow_factory, settings=settings, now=now,
                                       contexts=contexts)
            acknowledged += outcomes.count("sent")
    return acknowledged


def _skip_pending(application_ids: Sequence[str], uow_factory: Callable[[], UnitOfWork]) -> None:
    """No portal configured (the embedded default): nothing to send, so nothing is owed."""
    with uow_factory() as uow:
        for application_id in application_ids:
            for item in uow.portal_sync.for_application(application_id):
                if item.state == "pending":
                    item.state = "skipped"
        uow.commit()


def _due_and_free(item: models.PortalSyncItem, at: dt.datetime) -> bool:
    # Not backing off, and nobody else sending it (or a crashed sender's lease has expired).
    return item.next_attempt_at <= at and (item.claimed_until is None or item.claimed_until <= at)


def _claim_heads(application_ids: Sequence[str], *, uow_factory: Callable[[], UnitOfWork], settings: Settings,
                 now: Callable[[], dt.datetime], contexts: Mapping[str, Mapping[str, str]],
                 read_uow_factory: Callable[[], UnitOfWork] | None = None) -> list[Claim]:
    """With `read_uow_factory`, the due heads and their entries are found in a read-only transaction
    (on SQLite it does not queue for the writer lock), and only their leases taken in a writing one:
    many wake-ups find nothing to claim (the call is in flight in another thread, or already sent),
    and building the entries under the lock held up every other writer."""
    if read_uow_factory is None:
        with uow_factory() as uow:
            claims = _claim_in(uow, application_ids, settings=settings, at=now(), contexts=contexts)
            if claims:
                uow.commit()
            return claims
    with read_uow_factory() as uow:
        candidates = _candidates(uow, application_ids, settings=settings, at=now(), contexts=contexts)
    if not candidates:
        return []
    with uow_factory() as uow:
        claims = _lease(uow, candidates, settings=settings, at=now())
        if claims:
            uow.commit()
        return claims


def _claim_in(uow: UnitOfWork, application_ids: Sequence[str], *, settings: Settings,
              at: dt.datetime, contexts: Mapping[str, Mapping[str, str]]) -> list[Claim]:
    """Lease to this worker, in the caller's transaction, the head of each of these applications
    that is due and that nobody holds, and build their entries (in the order of `application_ids`)."""
    return _lease(uow, _candidates(uow, application_ids, settings=settings, at=at, contexts=contexts),
                  settings=settings, at=at)


def _candidates(uow: UnitOfWork, application_ids: Sequence[str], *, settings: Settings, at: dt.datetime,
                contexts: Mapping[str, Mapping[str, str]]) -> list[Claim]:
    """The heads of these applications that are due and that nobody holds as of `at`, with their
    entries, in the order of `application_ids`: claims still to be leased (no token yet)."""
    heads = [item for item in uow.portal_sync.heads(application_ids) if _due_and_free(item, at)]
    if not heads:
        return []
    applications = uow.applications.get_for_entries([item.application_id for item in heads])
    order = {a: i for i, a in enumerate(application_ids)}
    candidates = []
    for item in sorted(heads, key=lambda item: order[item.application_id]):
        application = applications[item.application_id]
        # isUpdating "False" only until the portal has acknowledged a first call for this dossier.
        candidates.append(Claim(item.id, "", item.application_id, item.portal_status,
                                application.portal_acked_status is None,
                                payload_entry(application, item.portal_status, settings=settings), at,
                                ItemState(item.attempts, item.first_attempt_at, item.next_attempt_at,
                                          item.last_error),
                                contexts.get(item.application_id, {})))
    return candidates


def _lease(uow: UnitOfWork, candidates: Sequence[Claim], *, settings: Settings, at: dt.datetime) -> list[Claim]:
    """Lease each candidate's item to this worker until `at` + the lease, if it is still pending and
    unleased (one conditional UPDATE for all: of several racing workers exactly one wins each); the claims won,
    in the candidates' order. An item stays the head of its application until it is sent or failed,
    which is what the UPDATE's condition checks, so a candidate found in an earlier transaction is
    still the one to send when its lease is won."""
    until = at + dt.timedelta(seconds=settings.portal_sync_lease_seconds)
    # One token for the lease: a lease is still per item (its row holds the token), and a sender
    # that takes an item over writes a token of its own.
    token = str(uuid.uuid4())
    won = uow.portal_sync.claim([c.item_id for c in candidates], token, now=at, until=until)
    # The others another worker won the race for.
    # The claim's UPDATE set first_attempt_at where it was unset (PortalSyncRepository.claim).
    return [dataclasses.replace(c, token=token, until=until,
                                item=dataclasses.replace(c.item, first_attempt_at=c.item.first_attempt_at or at))
            for c in candidates if c.item_id in won]


# A claim, the answer that counts for it, and how many calls carried it (2 when sent again alone).
Sent = tuple[Claim, SyncResult, int]


def _send(claims: list[Claim], *, client: PortalClient, uow_factory: Callable[[], UnitOfWork], settings: Settings,
          now: Callable[[], dt.datetime]) -> list[Sent]:
    """Send the claimed heads, one call per isUpdating value, and pair each with its call's answer.
    A claim whose lease turned out to be lost before its call is left out (not sent, not recorded)."""
    results: list[Sent] = []
    for first in (True, False):
        group = _still_leased([c for c in claims if c.first is first], uow_factory=uow_factory,
                              settings=settings, now=now)
        if not group:
            continue
        result = client.send(sync_call([c.entry for c in group], first=first))
        if result.ok or result.retryable or len(group) == 1:
            # A 5xx, 429 or network error says nothing about any one entry: each is retried.
            results.extend((c, result, 1) for c in group)
            continue
        # Refused for good, but the portal answers for the whole call: one bad entry (say a dossier
        # it does not know) must not fail the other applications' updates for an operator. So each
        # entry is sent again alone, and only the one the portal refuses on its own is failed.
        log.warning("portal refused a DongBoHoSoMC call of %d dossiers (%s); sending them one by one",
                    len(group), result.detail)
        for claim in group:
            for single in _still_leased([claim], uow_factory=uow_factory, settings=settings, now=now):
                results.append((single, client.send(sync_call([single.entry], first=first)), 2))
    return results


def _still_leased(claims: list[Claim], *, uow_factory: Callable[[], UnitOfWork], settings: Settings,
                  now: Callable[[], dt.datetime]) -> list[Claim]:
    """The claims whose leases will outlast a call starting now, renewed if need be. A call is
    bounded by the HTTP timeout for connecting and again for reading (hence twice it; the lease is
    longer, config.py), but a batch's second call, or the one-by-one calls after a refusal, start
    later than the claim: without a renewal their lease could run out mid-call, and another worker
    could then send the item, or the next one of its application, at the same time."""
    if not claims:
        return []
    at = now()
    call_bound = dt.timedelta(seconds=2 * settings.portal_sync_timeout_seconds)
    if all(c.until - at > call_bound for c in claims):
        return claims
    until = at + dt.timedelta(seconds=settings.portal_sync_lease_seconds)
    kept = []
    with uow_factory() as uow:
        for claim in sorted(claims, key=lambda c: c.item_id):
            if uow.portal_sync.renew(claim.item_id, claim.token, until=until):
                kept.append(dataclasses.replace(claim, until=until))
            else:
                with _about(claim):
                    log.warning("portal sync of %s (status %s): lease lost before sending; left to the new "
                                "holder", claim.application_id, claim.portal_status)
        uow.commit()
    order = {c.item_id: i for i, c in enumerate(claims)}
    return sorted(kept, key=lambda c: order[c.item_id])


def _record(results: list[Sent], *, uow_factory: Callable[[], UnitOfWork], settings: Settings,
            now: Callable[[], dt.datetime], contexts: Mapping[str, Mapping[str, str]]
            ) -> tuple[list[str], list[Claim]]:
    """Write the outcome of each call's entry, all in one transaction: "sent", "retry" (scheduled
    again), "failed" (given up), or "lost" when the lease expired meanwhile (then the new holder's
    outcome is the one that counts). For each application whose outcome is "sent" or "failed", its
    next call is claimed in the same transaction; those claims are returned with the outcomes.

    The outcomes are worked out from the items as they were claimed (Claim.item): while a lease is
    held only its holder changes the item, so the transaction reads just the lease tokens to know
    which are still held, then writes all the outcomes with one UPDATE. Loading and flushing the
    items through the ORM made this the longest hold of SQLite's writer lock (issue 8)."""
    if not results:
        return [], []
    with uow_factory() as uow:
        at = now()
        tokens = uow.portal_sync.tokens([c.item_id for c, _, _ in results])
        decided = [_decide(claim, result, calls, held=tokens.get(claim.item_id) == claim.token,
                           settings=settings, at=at)
                   for claim, result, calls in results]
        kept = sorted((d for d in decided if d.outcome != "lost"), key=lambda d: d.claim.item_id)
        uow.portal_sync.record_outcomes([(d.claim.item_id, d.values) for d in kept])
        # Applications are updated (acknowledged) in the order of their ids, as the stage workers'
        # batches lock them (services/stages.py apply_batch): on PostgreSQL, two transactions
        # locking the same rows in different orders deadlock, and a lost record would hold its
        # leases until they expire and then send every entry of it again.
        uow.portal_sync.acknowledged_many(sorted((d.claim.application_id, d.claim.portal_status)
                                                 for d in kept if d.outcome == "sent"))
        done = [d.claim.application_id for d in decided if d.outcome in ("sent", "failed")]
        following = _claim_in(uow, done, settings=settings, at=at, contexts=contexts) if done else []
        uow.commit()
    for d in decided:
        if d.message:
            with _about(d.claim):
                log.log(d.level, d.message, *d.args)
    return [d.outcome for d in decided], following


@dataclass(frozen=True)
class _Decided:
    """A call's outcome for one of its items, worked out before it is written: the item's new
    OUTCOME_COLUMNS values (none when its lease was lost) and the line to log once written."""

    claim: Claim
    outcome: str
    values: dict[str, Any] = field(default_factory=dict)
    level: int = logging.INFO
    message: str = ""
    args: tuple[Any, ...] = ()


def _decide(claim: Claim, result: SyncResult, calls: int, *, held: bool, settings: Settings,
            at: dt.datetime) -> _Decided:
    """The outcome of one entry's call for its item, as claimed (`held`: its lease is still ours)."""
    if not held:
        # The lease is per item: one lost lease leaves the other entries of the call to be recorded.
        return _Decided(claim, "lost", level=logging.WARNING,
                        message="portal sync of %s (status %s): lease lost while sending; outcome %s left to "
                                "the new holder", args=(claim.application_id, claim.portal_status, result.detail))
    item = claim.item
    attempts = item.attempts + calls  # what the portal was sent, the refused batch call included
    values = {"state": "pending", "attempts": attempts, "next_attempt_at": item.next_attempt_at,
              "last_error": item.last_error, "sent_at": None}
    if result.ok:
        values.update(state="sent", sent_at=at, last_error=None)
        return _Decided(claim, "sent", values)
    if result.retryable and at < (item.first_attempt_at or at) + retry_horizon(settings):
        values.update(last_error=result.detail, next_attempt_at=at + backoff(attempts, settings))
        return _Decided(claim, "retry", values, logging.WARNING,
                        "portal sync of %s (status %s) failed (attempt %d), retrying at %s: %s",
                        (claim.application_id, claim.portal_status, attempts,
                         values["next_attempt_at"].isoformat(), result.detail))
    error = result.detail if not result.retryable else (
        f"gave up after {attempts} attempts over {settings.portal_sync_retry_hours:g} h: {result.detail}")
    values.update(state="failed", last_error=error)
    return _Decided(claim, "failed", values, logging.ERROR,
                    "portal sync of %s (status %s) failed for good: %s",
                    (claim.application_id, claim.portal_status, error))


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
