"""The portal_sync stage: pushes DongBoHoSoMC calls on every status change, and re-sends due retries
every PORTAL_SYNC_POLL_SECONDS even when no new event arrives.

The durable record of what is owed is the portal_sync_items table, not the queue: a status_changed
event only wakes the worker up. So the events are taken without acknowledgement (no_ack: no
unacked bookkeeping in the broker), and the periodic sweep finds anything a lost event missed — one
taken by a worker killed before it synced the application, or a call interrupted by a crash, once its
lease expires.

Wake-ups and the sweep add applications to a set of due ones. Up to PORTAL_SYNC_CONCURRENCY pool
threads each take up to PORTAL_SYNC_BATCH of them at a time (those no other thread of this process
has in hand) and sync them together, one call carrying all their heads (services.portal_sync), until
none has anything more to send; then they take the next ones. So a call that hangs holds up only the
applications of its own batch, and only until the HTTP timeout: the other threads keep going. A
thread started while fewer than a batch are waiting first lets more gather, for up to
PORTAL_SYNC_GATHER_SECONDS (or until a batch is waiting): a burst of status changes then fills its
calls instead of each event starting a call of its own.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor

from licence_service.bootstrap import Services
from licence_service.logs import current_log_context
from licence_service.messaging.consumer import StageWorker
from licence_service.messaging.envelope import Event
from licence_service.registers.portal import PortalClient
from licence_service.services.portal_sync import due_applications, sync_applications
from licence_service.store import models

log = logging.getLogger(__name__)


class PortalSyncWorker:
    def __init__(self, services: Services) -> None:
        self.services = services
        settings = services.settings
        self.client = PortalClient(settings)
        self.concurrency = settings.portal_sync_concurrency
        self.batch = settings.portal_sync_batch
        self.gather_seconds = settings.portal_sync_gather_seconds
        self.pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="portal-sync")
        # Applications woken up or found due, in the order they were, each with the log context of
        # the event that woke it (its correlation id; none when the sweep found it).
        self._due: dict[str, Mapping[str, str]] = {}
        # Applications a pool thread has in hand. One woken again meanwhile stays in _due and is taken
        # once released: its status change may have been committed too late for the sync in hand.
        self._busy: set[str] = set()
        self._threads = 0  # pool tasks taking from _due
        self._stopping = False
        self._lock = threading.Lock()
        # Signalled when a batch's worth of applications is waiting: a gathering thread goes at once.
        self._batch_waiting = threading.Condition(self._lock)
        # The events are wake-ups only (the module docstring): taken without acknowledgement.
        self.stage = StageWorker("portal_sync", self._on_event, on_idle=self.sweep,
                                 idle_seconds=settings.portal_sync_poll_seconds, acknowledge=False)

    def schedule(self, application_id: str, log_fields: Mapping[str, str] | None = None) -> None:
        with self._lock:
            if log_fields or application_id not in self._due:
                self._due[application_id] = log_fields or {}
            if len(self._due) >= self.batch:  # a cheap upper bound: the woken thread counts exactly
                self._batch_waiting.notify_all()
            if self._threads >= self.concurrency or self._stopping:
                return  # a busy thread takes it when it is done with its batch
            self._threads += 1
        # No copy of the waking event's log context for the thread: it syncs many applications in
        # turn, and each line about one carries that one's context (_due).
        self.pool.submit(self._drain)

    def _free(self) -> Iterator[tuple[str, Mapping[str, str]]]:
        """Due applications no thread has in hand, in order, with their log contexts (called with the
        lock held)."""
        return ((a, fields) for a, fields in self._due.items() if a not in self._busy)

    def _batch_is_waiting(self) -> bool:
        return sum(1 for _ in itertools.islice(self._free(), self.batch)) == self.batch

    def _take(self) -> dict[str, Mapping[str, str]]:
        """Up to a batch of due applications no other thread has in hand, now in this one's; none ends
        the thread (called with the lock held)."""
        if self._stopping:
            return {}
        batch = dict(itertools.islice(self._free(), self.batch))
        for application_id in batch:
            del self._due[application_id]
            self._busy.add(application_id)
        return batch

    def _drain(self) -> None:
        first = True
        while True:
            with self._lock:
                if first and self.gather_seconds > 0 and not self._stopping:
                    # Only before a thread's first batch: one that has just sent a call goes on with
                    # what gathered meanwhile. wait_for gives the lock up while it waits.
                    self._batch_waiting.wait_for(
                        lambda: self._stopping or self._batch_is_waiting(),
                        timeout=self.gather_seconds,
                    )
                first = False
                batch = self._take()
                if not batch:
                    self._threads -= 1
                    return
            try:
                sync_applications(list(batch), uow_factory=self.services.uow, client=self.client,
                                  settings=self.services.settings, read_uow_factory=self.services.read_uow,
                                  log_contexts=batch)
            except Exception:
                # The items are still pending in the database: the sweep tries them again.
                log.exception("portal sync of %s failed unexpectedly", ", ".join(batch))
            finally:
                with self._lock:
                    self._busy.difference_update(batch)

    def _on_event(self, event: Event) -> None:
        # Called within the event's log context (consumer.py).
        self.schedule(event.application_id, current_log_context())

    def sweep(self) -> None:
        # A read only: on SQLite the periodic sweep does not queue for the writer lock. Room for
        # every thread's batch, and at least as many as before batching.
        limit = max(100, self.concurrency * self.batch)
        for application_id in due_applications(self.services.read_uow, now=models.utcnow(), limit=limit):
            self.schedule(application_id)

    def run(self, broker_url: str, stop: threading.Event | None = None) -> None:
        try:
            self.stage.run(broker_url, stop)
        finally:
            self.close()

    def close(self) -> None:
        """Stop taking batches. Calls in flight finish (each bounded by the HTTP timeout), a thread
        still gathering goes at once, and whatever is still due stays pending for the next worker."""
        with self._lock:
            self._stopping = True
            self._batch_waiting.notify_all()
        self.pool.shutdown(wait=True, cancel_futures=True)


def worker(services: Services) -> PortalSyncWorker:
    return PortalSyncWorker(services)
