"""Every exchange, queue and routing-key name in one place (a test checks them against the Procfile)."""

from __future__ import annotations

from kombu import Exchange, Queue

EXCHANGE_NAME = "licence.events"
DEAD_LETTER_EXCHANGE_NAME = "licence.dead-letter"


class RoutingKeys:
    """Events the workflow publishes; each names what happened, not who should act on it."""

    RECEIVED = "application.received"
    SUPPLEMENTED = "application.supplemented"
    ACCEPTED = "application.accepted"
    PAID = "application.paid"
    CONVERTED = "application.converted"
    STATUS_CHANGED = "application.status_changed"


class QueueNames:
    """One queue per worker stage; `python -m workers <stage>` consumes `licence.<stage>`."""

    CHECKS = "licence.checks"
    FEE = "licence.fee"
    CONVERSION = "licence.conversion"
    ISSUANCE = "licence.issuance"
    PORTAL_SYNC = "licence.portal_sync"
    DEAD_LETTER = "licence.dead_letter"

    @classmethod
    def all_stage_queues(cls) -> list[str]:
        return [cls.CHECKS, cls.FEE, cls.CONVERSION, cls.ISSUANCE, cls.PORTAL_SYNC]


# stage name (the Procfile's `python -m workers <stage>`) -> (queue, routing keys bound to it)
STAGE_BINDINGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "checks": (QueueNames.CHECKS, (RoutingKeys.RECEIVED, RoutingKeys.SUPPLEMENTED)),
    "fee": (QueueNames.FEE, (RoutingKeys.ACCEPTED,)),
    "conversion": (QueueNames.CONVERSION, (RoutingKeys.PAID,)),
    "issuance": (QueueNames.ISSUANCE, (RoutingKeys.CONVERTED,)),
    "portal_sync": (QueueNames.PORTAL_SYNC, (RoutingKeys.STATUS_CHANGED,)),
}

events_exchange = Exchange(EXCHANGE_NAME, type="topic", durable=True)
dead_letter_exchange = Exchange(DEAD_LETTER_EXCHANGE_NAME, type="direct", durable=True)


def stage_queues(stage: str) -> list[Queue]:
    queue_name, keys = STAGE_BINDINGS[stage]
    return [Queue(queue_name, exchange=events_exchange, routing_key=key, durable=True) for key in keys]


def all_queues() -> list[Queue]:
    """Declared by the relay before publishing, so no event is dropped before a worker has started."""
    queues = [q for stage in STAGE_BINDINGS for q in stage_queues(stage)]
    queues.append(dead_letter_queue())
    return queues


def dead_letter_queue() -> Queue:
    return Queue(
        QueueNames.DEAD_LETTER, exchange=dead_letter_exchange, routing_key=QueueNames.DEAD_LETTER, durable=True
    )
