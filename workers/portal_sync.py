"""The portal_sync stage: pushes DongBoHoSoMC calls on every status change, and re-sends due retries
every PORTAL_SYNC_POLL_SECONDS even when no new event arrives.

The durable record of what is owed is the portal_sync_items table, not the queue: a status_changed
event only wakes the worker up. So the events are taken without acknowledgement (no_ack: no
unacked bookkeeping in the broker), and the periodic sweep finds anything a lost event missed — one
taken by a worker killed before it handed the application to the sender pool, or a call interrupted
by a crash, once its lease expires. Each application is synced in its own pool thread, so one
application whose portal calls hang or fail never holds up another.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from licence_service.bootstrap import Services
from licence_service.messaging.consumer import StageWorker
from licence_service.messaging.envelope import Event
from licence_service.registers.portal import PortalClient
from licence_service.services.portal_sync import due_applications, sync_application
from licence_service.store import models

log = logging.getLogger(__name__)


class PortalSyncWorker:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.client = PortalClient(services.settings)
        self.pool = ThreadPoolExecutor(max_workers=services.settings.portal_sync_concurrency,
                                       thread_name_prefix="portal-sync")
        # Applications queued or being synced in this process: one sync loop per application is
        # enough, since it keeps going until that application's due calls are done.
        self._busy: set[str] = set()
        self._lock = threading.Lock()
        # The events are wake-ups only (the module docstring): taken without acknowledgement.
        self.stage = StageWorker("portal_sync", self._on_event, on_idle=self.sweep,
                                 idle_seconds=services.settings.portal_sync_poll_seconds, acknowledge=False)

    def schedule(self, application_id: str) -> None:
        with self._lock:
            if application_id in self._busy:
                return
            self._busy.add(application_id)
        # The pool thread logs with the ids of the event that woke it (licence_service.logs).
        self.pool.submit(contextvars.copy_context().run, self._sync, application_id)

    def _sync(self, application_id: str) -> None:
        try:
            sync_application(application_id, uow_factory=self.services.uow, client=self.client,
                             settings=self.services.settings, read_uow_factory=self.services.read_uow)
        except Exception:
            # The item is still pending in the database: the sweep tries it again.
            log.exception("portal sync of %s failed unexpectedly", application_id)
        finally:
            with self._lock:
                self._busy.discard(application_id)

    def _on_event(self, event: Event) -> None:
        self.schedule(event.application_id)

    def sweep(self) -> None:
        # A read only: on SQLite the periodic sweep does not queue for the writer lock.
        for application_id in due_applications(self.services.read_uow, now=models.utcnow()):
            self.schedule(application_id)

    def run(self, broker_url: str, stop: threading.Event | None = None) -> None:
        try:
            self.stage.run(broker_url, stop)
        finally:
            # Calls in flight finish (each bounded by the HTTP timeout); queued ones stay pending.
            self.pool.shutdown(wait=True, cancel_futures=True)


def worker(services: Services) -> PortalSyncWorker:
    return PortalSyncWorker(services)
