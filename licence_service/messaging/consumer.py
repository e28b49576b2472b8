"""Consuming one stage's queue: ack after the handler's commit, retry or dead-letter on failure."""

from __future__ import annotations

import logging
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kombu import Connection, Message, Producer
from sqlalchemy.exc import OperationalError

from licence_service.messaging.broker import connect
from licence_service.messaging.envelope import Event
from licence_service.messaging.names import STAGE_BINDINGS, dead_letter_exchange, dead_letter_queue, stage_queues
from licence_service.registers.citizens import RegisterUnavailable

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
RETRYABLE: tuple[type[BaseException], ...] = (RegisterUnavailable, OperationalError, ConnectionError, TimeoutError)


@dataclass
class StageWorker:
    stage: str
    handle: Callable[[Event], Any]
    prefetch: int = 10
    # Called whenever the queue has been quiet for `idle_seconds` (e.g. portal-sync retries).
    on_idle: Callable[[], Any] | None = None
    idle_seconds: float = 1.0

    def process(self, body: Any, message: Message, producer: Producer) -> None:
        attempts = int((message.headers or {}).get("x-attempts", 0)) + 1
        try:
            event = Event.from_dict(body if isinstance(body, dict) else {})
        except ValueError as exc:
            self._dead_letter(producer, body, message, f"malformed event: {exc}", attempts)
            return
        try:
            self.handle(event)
        except RETRYABLE as exc:
            if attempts >= MAX_ATTEMPTS:
                self._dead_letter(producer, body, message, _describe(exc), attempts)
            else:
                log.warning("%s: retryable error on %s (attempt %d): %s", self.stage, event.application_id,
                            attempts, exc)
                producer.publish(body, exchange=message.delivery_info.get("exchange", ""),
                                 routing_key=message.delivery_info.get("routing_key"), serializer="json",
                                 delivery_mode=2, headers={**(message.headers or {}), "x-attempts": attempts})
                message.ack()
            return
        except Exception as exc:
            log.exception("%s: failed on %s", self.stage, event.application_id)
            self._dead_letter(producer, body, message, _describe(exc), attempts)
            return
        message.ack()

    def _dead_letter(self, producer: Producer, body: Any, message: Message, error: str, attempts: int) -> None:
        producer.publish(
            {"stage": self.stage, "error": error, "attempts": attempts, "body": body,
             "routing_key": message.delivery_info.get("routing_key")},
            exchange=dead_letter_exchange, routing_key=dead_letter_queue().routing_key,
            declare=[dead_letter_queue()], serializer="json", delivery_mode=2,
        )
        message.ack()
        log.error("%s: dead-lettered after %d attempt(s): %s", self.stage, attempts, error.splitlines()[0])

    def run(self, broker_url: str, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        if stop is not None and threading.current_thread() is threading.main_thread():
            # SIGTERM finishes the message in hand, then stops; unacked messages return to the queue.
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            signal.signal(signal.SIGINT, lambda *_: stop.set())
        while not stop.is_set():
            try:
                with connect(broker_url) as conn:
                    conn.ensure_connection(max_retries=None, interval_start=0.5, interval_step=1, interval_max=5)
                    self._consume(conn, stop)
            except Exception:
                log.exception("%s: connection lost; reconnecting", self.stage)
                stop.wait(1.0)

    def _consume(self, conn: Connection, stop: threading.Event) -> None:
        producer = Producer(conn.channel())
        queues = stage_queues(self.stage)
        with conn.Consumer(queues, accept=["json"], prefetch_count=self.prefetch,
                           callbacks=[lambda body, msg: self.process(body, msg, producer)]):
            log.info("%s: consuming %s", self.stage, STAGE_BINDINGS[self.stage][0])
            last_idle = time.monotonic()
            while not stop.is_set():
                try:
                    conn.drain_events(timeout=self.idle_seconds)
                except TimeoutError:
                    pass
                # Periodic work runs on time even when the queue is never quiet.
                if self.on_idle is not None and time.monotonic() - last_idle >= self.idle_seconds:
                    last_idle = time.monotonic()
                    self.on_idle()


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()
