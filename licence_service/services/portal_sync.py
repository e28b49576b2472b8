"""Sending the DongBoHoSoMC calls owed to the portal, in order per application.

Items are written with the status change that owes them; this handler sends the oldest pending item
of an application, then the next, and stops at the first failure so a later status can never
overtake an earlier one. A retryable failure is scheduled again with capped exponential backoff;
a non-retryable one is marked failed for an operator. The HTTP call happens outside any transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from licence_service.config import Settings
from licence_service.registers.portal import PortalClient, build_payload
from licence_service.store import models
from licence_service.store.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 5.0
BACKOFF_CAP_SECONDS = 15 * 60.0


def backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1)))


def sync_application(application_id: str, *, uow_factory: Callable[[], UnitOfWork], client: PortalClient,
                     settings: Settings, now: Callable[[], dt.datetime] = models.utcnow) -> int:
    """Send what is due for one application; return how many calls the portal acknowledged."""
    sent = 0
    while True:
        with uow_factory() as uow:
            items = uow.applications.pending_sync_items(application_id)
            if not items:
                return sent
            item = items[0]
            if item.next_attempt_at > now():
                return sent
            application = uow.applications.get(application_id)
            first = item.seq == 1
            if not client.configured:
                # No portal configured (the embedded default): nothing to send, nothing owed.
                item.state = "skipped"
                uow.commit()
                continue
            payload = build_payload(application, item.portal_status, first=first, settings=settings)
            item_id = item.id
        result = client.send(payload)
        with uow_factory() as uow:
            item = uow.session.get(models.PortalSyncItem, item_id)
            item.attempts += 1
            if result.ok:
                item.state = "sent"
                item.sent_at = now()
                item.last_error = None
                application = uow.applications.get(application_id)
                application.portal_acked_status = item.portal_status
                sent += 1
            elif result.retryable:
                item.last_error = result.detail
                item.next_attempt_at = now() + backoff(item.attempts)
                log.warning("portal sync of %s (status %s) failed, retrying: %s",
                            application_id, item.portal_status, result.detail)
            else:
                item.state = "failed"
                item.last_error = result.detail
                log.error("portal sync of %s (status %s) rejected: %s",
                          application_id, item.portal_status, result.detail)
            uow.commit()
            if not result.ok:
                return sent
