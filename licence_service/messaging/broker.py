"""Broker connections (kombu): Redis by default, any kombu URL (e.g. amqp://) by BROKER_URL."""

from __future__ import annotations

from typing import Any

from kombu import Connection

# Redis transport: a message taken but not acknowledged within the visibility timeout is handed
# out again. Handlers finish in seconds, so five minutes is ample and recovers a lost worker's
# message quickly.
REDIS_TRANSPORT_OPTIONS: dict[str, Any] = {
    "visibility_timeout": 300,
    "socket_timeout": 10,
    "socket_connect_timeout": 5,
}


def connect(url: str) -> Connection:
    options = REDIS_TRANSPORT_OPTIONS if url.startswith(("redis://", "rediss://", "unix://")) else {}
    return Connection(url, transport_options=dict(options), heartbeat=0)
