"""Consuming one stage's queue: acknowledge after the handler's commit; park a retryable failure for a
later retry and dead-letter the rest (licence_service.messaging.failures).

Delivery is at least once. A message is acknowledged only once its handler has committed, or once
its failure is recorded in the database; a worker that dies before either leaves it unacknowledged,
and the broker hands it out again (RabbitMQ when the connection drops, Redis after the visibility
timeout). Handlers are idempotent, so the duplicates this allows change nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kombu import Connection, Message
from sqlalchemy.exc import DBAPIError, OperationalError

from licence_service import metrics
from licence_service.messaging import failures
from licence_service.messaging.broker import DEFAULT_VISIBILITY_TIMEOUT, connect_until_ready
from licence_service.messaging.envelope import Event, events_of
from licence_service.messaging.names import STAGE_BINDINGS, stage_queues
from licence_service.registers.citizens import RegisterUnavailable
from licence_service.store import models
from licence_service.store.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from licence_service.bootstrap import Services

log = logging.getLogger(__name__)

# Technical failures that may pass: a register's 5xx or timeout, the database unreachable or locked.
RETRYABLE: tuple[type[BaseException], ...] = (
    RegisterUnavailable, OperationalError, ConnectionError, TimeoutError,
)

# How many events a worker gathers before handling them (in as many messages as carry them: the relay
# puts up to relay.EVENTS_PER_MESSAGE in one), which is also the most a stage with a batch handler
# handles in one transaction. Batches are what make a stage fast: every transaction queues for the
# database's write lock (SQLite has one for the whole file), so one transaction for twenty events
# costs little more than one for one event (bench/README.md, issue 8). A worker takes what is
# already waiting and what arrives within STAGE_GATHER_SECONDS, so under a light load a batch is one
# event, handled that much later.
STAGE_PREFETCH: dict[str, int] = {"checks": 20, "fee": 50, "conversion": 50, "issuance": 20, "portal_sync": 20}
# Without a batch handler, the stages that wait on outside registers or write the national register
# take one message at a time, so a second worker of that stage gets the next message instead of it
# waiting behind a slow one.
SINGLE_PREFETCH: dict[str, int] = {"checks": 1, "fee": 10, "conversion": 10, "issuance": 1, "portal_sync": 20}

# How often a gathering worker looks for more messages (see StageWorker._gather).
GATHER_POLL_SECONDS = 0.01

# While the database cannot even record a failure, the stage pauses (it could do nothing anyway).
DB_PAUSE_START, DB_PAUSE_MAX = 1.0, 30.0


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, RETRYABLE):
        return True
    # A connection lost mid-statement surfaces as a DBAPIError flagged as an invalidated connection.
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def _failed_attempts(message: Message) -> int:
    try:
        return max(0, int((message.headers or {}).get("x-attempts") or 0))
    except (TypeError, ValueError):
        return 0


def describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


@dataclass
class _Delivery:
    """A message taken from the broker, and how many of the events it carries are not settled yet
    (handled, or their failure recorded): it is acknowledged when none is left. When a failure
    cannot be recorded it goes back to its queue whole, and the events already handled are handled
    again when it returns, changing nothing (the handlers are idempotent)."""

    message: Message
    unsettled: int
    requeued: bool = False


@dataclass
class StageWorker:
    stage: str
    handle: Callable[[Event], Any]
    prefetch: int | None = None
    # Handles the events of several messages in one unit of work; returns, for each event in order,
    # None when it was handled or the exception it failed with (recorded like `handle`'s). When it
    # raises, nothing of the batch counts and its messages are handled one by one with `handle`.
    handle_batch: Callable[[list[Event]], list[BaseException | None]] | None = None
    # False for a stage whose messages only wake it up (its work is recorded in the database and
    # found again by a periodic sweep, as portal_sync's is): they are taken without acknowledgement
    # (no_ack), which spares the broker's unacked bookkeeping, eight Redis commands a message.
    acknowledge: bool = True
    # Called whenever `idle_seconds` have passed since the last call, busy or not (e.g. portal-sync
    # retries).
    on_idle: Callable[[], Any] | None = None
    idle_seconds: float = 1.0
    # Where failures are recorded; configure() fills these from the process's services.
    uow_factory: Callable[[], UnitOfWork] | None = None
    retry: failures.RetryPolicy = field(default_factory=failures.RetryPolicy)
    visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT
    # A worker with a batch handler holding fewer than `prefetch` events waits up to this long for
    # more before handling them (STAGE_GATHER_SECONDS): fewer, fuller transactions under load.
    gather_seconds: float = 0.0
    # How often this worker asks Redis to hand out again messages overdue in the unacked set.
    restore_seconds: float = 5.0
    now: Callable[[], dt.datetime] = models.utcnow
    _db_pause: float = field(default=0.0, init=False, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _inbox: list[tuple[Any, Message]] = field(default_factory=list, init=False, repr=False)
    _inbox_events: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.prefetch is None:
            self.prefetch = (STAGE_PREFETCH if self.handle_batch else SINGLE_PREFETCH).get(self.stage, 1)

    def configure(self, services: Services) -> StageWorker:
        settings = services.settings
        self.uow_factory = services.uow
        self.retry = failures.RetryPolicy.from_settings(settings)
        self.visibility_timeout = settings.broker_visibility_timeout_seconds
        self.gather_seconds = settings.stage_gather_seconds
        # An overdue message comes back within a fraction of the visibility timeout.
        self.restore_seconds = max(1.0, min(self.restore_seconds, settings.broker_visibility_timeout_seconds / 4))
        return self

    # -- one message --------------------------------------------------------------------------------

    def process(self, body: Any, message: Message) -> None:
        """Handle the events a message carries one by one (envelope.events_of); acknowledge it once
        each is handled or its failure recorded."""
        bodies = events_of(body)
        delivery = _Delivery(message, len(bodies))
        for event_body in bodies:
            if delivery.requeued:
                return  # it is back in its queue, with the events not handled yet
            # Every line logged while handling it carries the event's application and correlation
            # ids, and its time and outcome are counted (licence_service.metrics).
            with metrics.handling_message(self.stage, event_body):
                self._process(event_body, delivery)

    def _process(self, body: Any, delivery: _Delivery) -> None:
        attempt = _failed_attempts(delivery.message) + 1
        try:
            event = Event.from_dict(body if isinstance(body, dict) else {})
        except ValueError as exc:
            self._failed(body, delivery, f"malformed event: {exc}", attempt, retryable=False)
            return
        try:
            self.handle(event)
        except Exception as exc:
            self._handler_failed(body, delivery, event, exc, attempt)
            return
        self._settle(delivery)
        self._db_pause = 0.0

    def _settle(self, delivery: _Delivery) -> None:
        # A message taken without acknowledgement needs none, and kombu's Redis transport would
        # still send its unacked bookkeeping a MULTI/EXEC for one (it cannot tell such a message).
        delivery.unsettled -= 1
        if self.acknowledge and delivery.unsettled == 0 and not delivery.requeued:
            delivery.message.ack()

    def _handler_failed(self, body: Any, delivery: _Delivery, event: Event, exc: BaseException,
                        attempt: int) -> None:
        retryable = is_retryable(exc)
        if retryable:
            log.warning("%s: attempt %d on %s failed: %s", self.stage, attempt, event.application_id, exc)
        else:
            log.error("%s: failed on %s", self.stage, event.application_id, exc_info=exc)
        self._failed(body, delivery, describe(exc), attempt, retryable=retryable)

    # -- a batch of messages ------------------------------------------------------------------------

    def _collect(self, body: Any, message: Message) -> None:
        self._inbox.append((body, message))
        self._inbox_events += len(events_of(body))

    def process_batch(self, items: list[tuple[Any, Message]]) -> None:
        """Handle the events of the messages in hand together (handle_batch), at most `prefetch` of
        them per unit of work; acknowledge each message once all its events have committed (or their
        failures are recorded, as `process` records them)."""
        assert self.handle_batch is not None
        pending: list[tuple[Any, _Delivery, Event]] = []
        for body, message in items:
            bodies = events_of(body)
            delivery = _Delivery(message, len(bodies))
            for event_body in bodies:
                try:
                    event = Event.from_dict(event_body if isinstance(event_body, dict) else {})
                except ValueError as exc:
                    with metrics.handling_message(self.stage, event_body):
                        self._failed(event_body, delivery, f"malformed event: {exc}",
                                     _failed_attempts(message) + 1, retryable=False)
                    continue
                pending.append((event_body, delivery, event))
        size = self.prefetch or 1
        for start in range(0, len(pending), size):
            # A message put back meanwhile (a failure that could not be recorded) comes back whole.
            self._handle_together([p for p in pending[start:start + size] if not p[1].requeued])

    def _handle_together(self, pending: list[tuple[Any, _Delivery, Event]]) -> None:
        if not pending:
            return
        if len(pending) == 1:
            body, delivery, _event = pending[0]
            with metrics.handling_message(self.stage, body):
                self._process(body, delivery)
            return
        assert self.handle_batch is not None
        started = time.perf_counter()
        try:
            results = self.handle_batch([event for _body, _delivery, event in pending])
            if len(results) != len(pending):
                raise RuntimeError(f"handle_batch gave {len(results)} results for {len(pending)} events")
        except Exception:
            # Nothing of the batch was committed: each event on its own, so one that cannot be
            # handled fails alone and the others go through.
            log.warning("%s: batch of %d failed; handling its events one by one", self.stage, len(pending),
                        exc_info=True)
            for body, delivery, _event in pending:
                if not delivery.requeued:
                    with metrics.handling_message(self.stage, body):
                        self._process(body, delivery)
            return
        for (body, delivery, event), result in zip(pending, results, strict=True):
            with metrics.handling_message(self.stage, body, started=started):
                if result is None:
                    self._settle(delivery)
                    self._db_pause = 0.0
                else:
                    self._handler_failed(body, delivery, event, result, _failed_attempts(delivery.message) + 1)

    def on_decode_error(self, message: Message, exc: Exception) -> None:
        """A body that is not JSON can never be handled: straight to the dead letters."""
        raw = message.body.decode("utf-8", "replace") if isinstance(message.body, bytes) else str(message.body)
        self._failed({"undecodable": raw[:10_000], "content_type": message.content_type},
                     _Delivery(message, 1), f"undecodable message: {describe(exc)}", 1, retryable=False)

    def _failed(self, body: Any, delivery: _Delivery, error: str, attempt: int, *, retryable: bool) -> None:
        """Record one event's failure: parked for a retry (the event alone, with its attempt count),
        or dead-lettered."""
        assert self.uow_factory is not None  # run() refuses to start without it
        try:
            if retryable and not self.retry.gives_up_after(attempt):
                delay = self.retry.delay(attempt)
                failures.schedule_retry(self.uow_factory, stage=self.stage, body=body, failed_attempts=attempt,
                                        error=error, due_at=self.now() + delay)
                log.info("%s: retry %d parked for %.1f s", self.stage, attempt + 1, delay.total_seconds())
                metrics.failure_recorded(self.stage, retry=True)
            else:
                letter = failures.dead_letter(self.uow_factory, stage=self.stage, body=body,
                                              failed_attempts=attempt, error=error)
                log.error("%s: dead letter %d after %d attempt(s): %s", self.stage, letter, attempt,
                          error.splitlines()[0] if error else "")
                metrics.failure_recorded(self.stage, retry=False)
        except Exception:
            # The failure cannot be recorded (the database is down too): the message goes back to the
            # queue unacknowledged and uncounted, and the stage waits a little before the next one.
            log.exception("%s: cannot record the failure; returning the message to the queue", self.stage)
            if not delivery.requeued:
                delivery.requeued = True
                delivery.message.requeue()
            self._db_pause = min(DB_PAUSE_MAX, max(DB_PAUSE_START, self._db_pause * 2))
            self._stop.wait(self._db_pause)
            return
        self._settle(delivery)
        self._db_pause = 0.0

    # -- the process's loop -------------------------------------------------------------------------

    def run(self, broker_url: str, stop: threading.Event | None = None) -> None:
        if self.uow_factory is None:
            raise RuntimeError(f"{self.stage}: configure() the worker first; it has nowhere to record failures")
        if stop is not None:
            self._stop = stop
        stop = self._stop
        if threading.current_thread() is threading.main_thread():
            # SIGTERM: finish the message in hand, then stop; closing the channel returns any message
            # taken but not started to its queue.
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            signal.signal(signal.SIGINT, lambda *_: stop.set())
        while not stop.is_set():
            conn = connect_until_ready(broker_url, stop, name=self.stage, visibility_timeout=self.visibility_timeout)
            if conn is None:
                break
            try:
                with conn:
                    self._consume(conn, stop)
            except Exception:
                log.exception("%s: connection lost; reconnecting", self.stage)
                stop.wait(1.0)

    def _consume(self, conn: Connection, stop: threading.Event) -> None:
        # Messages taken on a connection that was lost come back from the broker, not from here.
        self._inbox, self._inbox_events = [], 0
        channel = conn.default_channel
        batched = self.handle_batch is not None and (self.prefetch or 1) > 1 and self.acknowledge
        with conn.Consumer(stage_queues(self.stage), accept=["json"], prefetch_count=self.prefetch,
                           callbacks=[self._collect if batched else self.process],
                           on_decode_error=self.on_decode_error, no_ack=not self.acknowledge):
            log.info("%s: consuming %s (prefetch %d)", self.stage, STAGE_BINDINGS[self.stage][0], self.prefetch)
            last_idle = last_restore = time.monotonic()
            while not stop.is_set():
                try:
                    conn.drain_events(timeout=min(self.idle_seconds, 1.0))
                except TimeoutError:
                    pass
                if self._inbox:
                    self._gather(conn)
                    batch, self._inbox, self._inbox_events = self._inbox, [], 0
                    self.process_batch(batch)
                now = time.monotonic()
                if now - last_restore >= self.restore_seconds:
                    last_restore = now
                    restore_overdue(channel)
                # Periodic work runs on time even when the queue is never quiet.
                if self.on_idle is not None and now - last_idle >= self.idle_seconds:
                    last_idle = now
                    try:
                        self.on_idle()
                    except Exception:
                        # Its own work failed (e.g. the database is down); consuming goes on.
                        log.exception("%s: periodic work failed", self.stage)

    def _gather(self, conn: Connection) -> None:
        """Take what else is already waiting in the queue, until the messages in hand carry the
        prefetch count's events; then, if they do not, what arrives within `gather_seconds`.

        Fetched one by one (RPOP on Redis, basic.get on AMQP), each entered as unacknowledged like
        a consumed message. Not by draining the consumer: that would leave a blocking pop pending on
        the connection while the batch is handled, and a message it popped meanwhile would sit in
        the socket, where a worker killed mid-batch loses it (redelivered only by the sweeper)."""
        queue = stage_queues(self.stage)[0].bind(conn.default_channel)
        deadline = time.monotonic() + self.gather_seconds
        while self._inbox_events < (self.prefetch or 1) and not self._stop.is_set():
            message = queue.get(no_ack=False, accept=["json"])
            if message is None:
                # Nothing more waiting: look again shortly, until the deadline. Polled rather than
                # blocking in the broker, for the reason above.
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._stop.wait(min(left, GATHER_POLL_SECONDS))
                continue
            try:
                body = message.decode()
            except Exception as exc:
                self.on_decode_error(message, exc)
                continue
            self._collect(body, message)


def restore_overdue(channel: Any) -> None:
    """Redis: hand out again every message left unacknowledged past the visibility timeout (its
    worker died). kombu does this only on a consumer's empty polls, which a busy queue never has.
    Any consumer may restore any queue's messages; a mutex in Redis lets one scan at a time."""
    qos = getattr(channel, "qos", None)
    restore = getattr(qos, "restore_visible", None)
    if restore is None:  # AMQP: the broker itself requeues a dead consumer's messages
        return
    restore(num=getattr(channel, "unacked_restore_limit", None), interval=1)
