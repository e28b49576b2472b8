"""The event envelope every message carries; handlers take the application id and reload the record."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from licence_service.store.models import utcnow


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
