"""The outbox relay: publishes committed outbox rows to the broker, then marks them sent; and publishes
parked retries (licence_service.messaging.failures) to their stage's queue once they are due.

Rows are read in one short transaction, published with no transaction open (SQLite's write lock is
not held while a broker is slow or down), each stage's in as few messages as EVENTS_PER_MESSAGE
allows (envelope.py), then marked sent in a second. While the broker is down
nothing is marked, so every row waits and goes out once it is back, in order. Only a crash between
publishing and marking re-publishes rows; the handlers are idempotent, so that duplicate is harmless,
while an event is never lost. Run one relay: two would publish the same rows twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kombu import Connection, Producer
from kombu.exceptions import OperationalError as BrokerError

from licence_service import metrics
from licence_service.messaging import failures
from licence_service.messaging.broker import connect_until_ready
from licence_service.messaging.envelope import batch_body
from licence_service.messaging.names import all_queues, queue_name, stage_for_routing_key
from licence_service.store import models
from licence_service.store.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

BATCH = 200
# The most events one message carries. A stage worker handles a message's events in its batches
# (consumer.py), and its message is acknowledged once all of them are: more per message is fewer
# broker round trips, but more handled again when a worker dies with the message in hand.
EVENTS_PER_MESSAGE = 50
# Between rounds while events are flowing (see run_relay).
BUSY_PAUSE_SECONDS = 0.02
# Re-declared this often too: a broker reset has forgotten the queues, and AMQP's default exchange
# drops a message for a queue that does not exist (a Redis list needs no declaring).
DECLARE_EVERY_SECONDS = 5.0
PUBLISH_RETRY = {"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2}


def declare_topology(conn: Connection) -> None:
    """Declare every queue and binding, so no event is dropped before its worker first starts."""
    channel = conn.default_channel
    for queue in all_queues():
        queue.bind(channel).declare()


class Publisher:
    """Publishes to the stages' queues, declaring the topology again every few seconds."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.producer = Producer(conn.default_channel)
        self.declared_at = 0.0

    def declare(self) -> None:
        declare_topology(self.conn)
        self.declared_at = time.monotonic()

    def maybe_declare(self) -> None:
        if time.monotonic() - self.declared_at >= DECLARE_EVERY_SECONDS:
            self.declare()

    def event(self, payload: Any, routing_key: str) -> None:
        """One event, alone in its message, onto the queue bound to its routing key."""
        self.events([payload], self.queue_for(routing_key))

    def events(self, payloads: list[Any], queue: str) -> None:
        """Several events for one queue in one message (envelope.batch_body), in order."""
        if len(payloads) == 1:
            self._publish(payloads[0], exchange="", routing_key=queue, headers={"event_id": payloads[0]["event_id"]})
        else:
            self._publish(batch_body(payloads), exchange="", routing_key=queue,
                          headers={"event_ids": [p["event_id"] for p in payloads]})

    @staticmethod
    def queue_for(routing_key: str) -> str:
        # Straight onto the queue bound to the routing key (each is bound to exactly one, names.py),
        # by the default exchange: over Redis, kombu routes a message sent to the topic exchange by
        # reading the exchange's bindings from Redis (SMEMBERS) on every publish, which was 43 % of
        # the relay's CPU. The exchange and its bindings are still declared, for whoever publishes
        # through it.
        stage = stage_for_routing_key(routing_key)
        if stage is None:
            raise ValueError(f"no stage's queue is bound to routing key {routing_key!r} (names.STAGES)")
        return queue_name(stage)

    def to_queue(self, body: Any, queue: str, headers: dict[str, Any]) -> None:
        # The default exchange delivers straight to the named queue: a retry goes to the one stage
        # that failed, not to every queue bound to its routing key.
        self._publish(body, exchange="", routing_key=queue, headers=headers)

    def _publish(self, body: Any, **kwargs: Any) -> None:
        self.producer.publish(body, serializer="json", delivery_mode=2, retry=True, retry_policy=PUBLISH_RETRY,
                              **kwargs)


def relay_once(uow_factory: Callable[[], UnitOfWork], publisher: Publisher,
               read_uow_factory: Callable[[], UnitOfWork] | None = None) -> int:
    """Publish one batch of unsent outbox rows; return how many were published.

    The rows are read through `read_uow_factory` when given: on SQLite such a read does not queue
    for the writer lock, so polling an empty outbox costs the writers nothing."""
    with (read_uow_factory or uow_factory)() as uow:
        rows = [(r.id, r.event_id, r.routing_key, r.payload) for r in uow.outbox.unsent(BATCH)]
    if not rows:
        return 0
    publisher.maybe_declare()
    # Each stage's events in order, EVENTS_PER_MESSAGE to a message. A row whose routing key no
    # queue is bound to fails the round here, before anything is published, and stays unsent.
    by_queue: dict[str, list[tuple[int, Any, str]]] = {}
    for row_id, _event_id, routing_key, payload in rows:
        by_queue.setdefault(publisher.queue_for(routing_key), []).append((row_id, payload, routing_key))
    published: list[int] = []
    try:
        for queue, group in by_queue.items():
            for start in range(0, len(group), EVENTS_PER_MESSAGE):
                chunk = group[start:start + EVENTS_PER_MESSAGE]
                publisher.events([payload for _id, payload, _key in chunk], queue)
                for row_id, payload, routing_key in chunk:
                    published.append(row_id)
                    metrics.event_published(payload, routing_key)
    finally:
        # Even when the broker fails mid-batch, what did go out is marked, so it is not sent again.
        if published:
            with uow_factory() as uow:
                uow.outbox.mark_sent(published, models.utcnow())
                uow.commit()
    return len(published)


def release_due_retries(uow_factory: Callable[[], UnitOfWork], publisher: Publisher,
                        read_uow_factory: Callable[[], UnitOfWork] | None = None) -> int:
    """Publish every parked retry that is due to its stage's queue; return how many."""
    due = failures.due_retries(read_uow_factory or uow_factory, models.utcnow(), BATCH)
    if not due:
        return 0
    published: list[int] = []
    try:
        for retry in due:
            publisher.to_queue(retry.body, queue_name(retry.stage), {"x-attempts": retry.attempts})
            published.append(retry.id)
    finally:
        if published:
            failures.forget_retries(uow_factory, published)
    return len(published)


def run_relay(uow_factory: Callable[[], UnitOfWork], broker_url: str, *, poll_seconds: float = 0.2,
              stop: threading.Event | None = None,
              read_uow_factory: Callable[[], UnitOfWork] | None = None) -> None:
    stop = stop or threading.Event()
    while not stop.is_set():
        conn = connect_until_ready(broker_url, stop, name="relay")
        if conn is None:
            return
        try:
            with conn:
                publisher = Publisher(conn)
                publisher.declare()
                log.info("relay: publishing the outbox to %s", conn.as_uri())
                retries_checked = 0.0
                while not stop.is_set():
                    sent = relay_once(uow_factory, publisher, read_uow_factory)
                    released = 0
                    # Parked retries are due on a clock of seconds: looked at once per poll period,
                    # not on every round while events stream out.
                    if time.monotonic() - retries_checked >= poll_seconds:
                        released = release_due_retries(uow_factory, publisher, read_uow_factory)
                        retries_checked = 0.0 if released >= BATCH else time.monotonic()
                    # A full batch: more is waiting, go on at once. Some: traffic, so look again soon,
                    # after a pause that lets a few rows gather (each round's marking takes the
                    # database's write lock). None: an idle outbox is polled every poll_seconds.
                    if sent >= BATCH or released:
                        continue
                    stop.wait(min(poll_seconds, BUSY_PAUSE_SECONDS) if sent else poll_seconds)
        except (BrokerError, ConnectionError, OSError) as exc:
            # Broker down: the unsent rows stay unsent; reconnect and catch up.
            log.warning("relay: broker unavailable (%s: %s); reconnecting", type(exc).__name__, exc)
            stop.wait(1.0)
        except Exception:
            # The database, most likely: nothing was marked that was not published; try again.
            log.exception("relay: error; retrying in 1 s")
            stop.wait(1.0)
