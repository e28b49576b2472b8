"""The outbox relay: publishes committed outbox rows to the broker, then marks them sent.

A crash between publishing and marking re-publishes those rows on restart; handlers are idempotent,
so that duplicate is harmless, while an event is never lost.
"""

from __future__ import annotations

import logging
import threading

from kombu import Connection, Producer

from licence_service.messaging.names import all_queues, events_exchange
from licence_service.store import models
from licence_service.store.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

BATCH = 200


def declare_topology(conn: Connection) -> None:
    """Declare every queue and binding, so no event is dropped before its worker first starts."""
    channel = conn.default_channel
    for queue in all_queues():
        queue.bind(channel).declare()


def relay_once(uow_factory: type[UnitOfWork] | object, producer: Producer) -> int:
    """Publish one batch of unsent rows; return how many were published."""
    with uow_factory() as uow:  # type: ignore[operator]
        rows = uow.outbox.unsent(BATCH)
        if not rows:
            return 0
        for row in rows:
            producer.publish(
                row.payload,
                exchange=events_exchange,
                routing_key=row.routing_key,
                serializer="json",
                delivery_mode=2,
                headers={"event_id": row.event_id},
                retry=True,
                retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5},
            )
        uow.outbox.mark_sent([r.id for r in rows], models.utcnow())
        uow.commit()
        return len(rows)


def run_relay(uow_factory: object, broker_url: str, *, poll_seconds: float = 0.2,
              stop: threading.Event | None = None) -> None:
    from licence_service.messaging.broker import connect

    stop = stop or threading.Event()
    while not stop.is_set():
        try:
            with connect(broker_url) as conn:
                conn.ensure_connection(max_retries=None, interval_start=0.5, interval_step=1, interval_max=5)
                declare_topology(conn)
                producer = Producer(conn.default_channel)
                log.info("relay: publishing outbox to %s", conn.as_uri())
                while not stop.is_set():
                    if relay_once(uow_factory, producer) < BATCH:
                        stop.wait(poll_seconds)
        except Exception:
            # Broker or database down: keep the rows, wait, reconnect, catch up.
            log.exception("relay: error; retrying in 1 s")
            stop.wait(1.0)
