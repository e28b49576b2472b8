"""Broker connections (kombu): Redis by default, any kombu URL (e.g. amqp://) by BROKER_URL."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from functools import cached_property
from typing import Any

from kombu import Connection
from kombu.transport import redis as kombu_redis

log = logging.getLogger(__name__)

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
AMQP_SCHEMES = ("amqp://", "amqps://", "pyamqp://")
SUPPORTED_SCHEMES = REDIS_SCHEMES + AMQP_SCHEMES

# Redis has no acknowledgements of its own: kombu keeps each delivered message in an "unacked" hash
# until it is acknowledged, and hands it out again once it has been there for the visibility timeout
# (a worker killed mid-step). The default is long enough for any handler (config.py insists it
# exceeds the longest outside call) and short enough that such a message is back within minutes;
# a handler that does overrun it only causes a duplicate, which the handlers ignore.
DEFAULT_VISIBILITY_TIMEOUT = 120
UNROUTABLE = "licence.unroutable"


def is_redis(url: str) -> bool:
    return url.startswith(REDIS_SCHEMES)


def transport_options(url: str, visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT) -> dict[str, Any]:
    if is_redis(url):
        return {
            "visibility_timeout": visibility_timeout,
            # kombu re-queues overdue unacked messages from a consumer's empty polls, scanning on
            # every 10th one (a ZRANGE under a mutex: about seven Redis commands). StageWorker scans
            # on a timer besides (restore_overdue), as a busy queue never polls empty, and ends each
            # batch with an empty poll: scanning on each of those would cost more round trips than
            # the messages themselves. No restore limit: every overdue message comes back in one pass.
            "unacked_restore_throttle": 10,
            "unacked_restore_limit": None,
            # The scan's mutex outlives a worker killed while scanning only this long (kombu's
            # default, five minutes, would stop every restore for that time).
            "unacked_mutex_expire": max(5, min(60, visibility_timeout // 2)),
            # Redis keeps an exchange's bindings as plain keys, so a Redis restarted without its data
            # has none, and kombu drops what is published to an unbound routing key without a word.
            # Naming a dead-letter queue makes it warn instead (the message still goes nowhere); the
            # relay turns that warning into an error, declares the bindings again and re-publishes.
            "deadletter_queue": UNROUTABLE,
            # A broker that vanishes without closing the socket must not hang a publish forever.
            "socket_timeout": 10,
            "socket_connect_timeout": 5,
        }
    # AMQP: wait for the broker's confirmation of each publish, so the relay marks an outbox row
    # sent only once RabbitMQ has it. Unacknowledged deliveries return to the queue as soon as the
    # consumer's connection closes, killed or not, so there is no visibility timeout to tune.
    return {"confirm_publish": True}


class _RedisChannel(kombu_redis.Channel):
    """kombu's Redis channel, with one client object for its commands instead of a new one for each.

    kombu builds a redis-py client (and with it a table of some 200 response callbacks) for every
    non-blocking get and every acknowledgement: a twentieth of a stage worker's CPU (py-spy, issue
    8). A redis-py client is safe to share: each command takes a connection from the channel's pool
    for itself, as it did with a new client."""

    @contextlib.contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        yield client or self._commands_client

    @cached_property
    def _commands_client(self) -> Any:
        return self._create_client()


class RedisTransport(kombu_redis.Transport):
    Channel = _RedisChannel


def connect(url: str, *, visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT) -> Connection:
    # No AMQP heartbeats: the workers block in their handlers, and a missed heartbeat would make
    # RabbitMQ drop the connection (and requeue the message in hand) mid-step.
    transport = RedisTransport if url.startswith(("redis://", "rediss://")) else None
    return Connection(url, transport=transport, transport_options=transport_options(url, visibility_timeout),
                      heartbeat=0)


def connect_until_ready(url: str, stop: threading.Event, *, name: str,
                        visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT) -> Connection | None:
    """A connected Connection, retrying with capped backoff while the broker is down; None once
    `stop` is set (SIGTERM while the broker is unreachable still stops the process)."""
    delay = 0.5
    while not stop.is_set():
        conn = connect(url, visibility_timeout=visibility_timeout)
        try:
            conn.ensure_connection(max_retries=1, interval_start=0.2, interval_step=0, timeout=5)
            return conn
        except Exception as exc:
            conn.release()
            log.warning("%s: broker unavailable (%s: %s); retrying in %.1f s", name, type(exc).__name__, exc, delay)
            stop.wait(delay)
            delay = min(delay * 2, 5.0)
    return None
