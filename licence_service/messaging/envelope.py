"""The event envelope every message carries; handlers take the application id and reload the record.

A message carries one event, or several for the same queue as `{"events": [event, ...]}`: the relay
sends what it finds in the outbox for one stage together (relay.py), since a broker message costs
the relay and the consumer more CPU than the stage's own work for the event (bench/README.md,
issue 8). Retries, dead-letter replays and anything else publish single events.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from licence_service.store.models import utcnow

BATCH_KEY = "events"


@dataclass(frozen=True)
class Event:
    type: str  # the routing key
    application_id: str
    data: dict[str, Any] = field(default_factory=dict)
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    occurred_at: str = field(default_factory=lambda: utcnow().isoformat())
    correlation_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> Event:
        missing = [k for k in ("type", "application_id", "event_id") if not body.get(k)]
        if missing:
            raise ValueError(f"event envelope lacks {', '.join(missing)}")
        return cls(
            type=body["type"],
            application_id=body["application_id"],
            data=body.get("data") or {},
            event_id=body["event_id"],
            occurred_at=body.get("occurred_at") or utcnow().isoformat(),
            correlation_id=body.get("correlation_id"),
        )


def batch_body(payloads: list[dict[str, Any]]) -> dict[str, Any]:
    """The body of one message carrying several events (of one queue), in order."""
    return {BATCH_KEY: payloads}


def events_of(body: Any) -> list[Any]:
    """The event bodies a message carries, in order: the batch's, or the body itself (which may be
    malformed: from_dict says so for each)."""
    if isinstance(body, dict) and set(body) == {BATCH_KEY} and isinstance(body[BATCH_KEY], list):
        return body[BATCH_KEY] or [body]
    return [body]
