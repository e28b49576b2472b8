"""Every exchange, queue and routing-key name in one place (a test checks them against the Procfile).

QUEUE_PREFIX (environment, read once at import so every name here is a constant) is put in front of
the exchange and every queue name. Deployments sharing one broker, and concurrent test runs on the
CI's RabbitMQ, keep apart that way without a virtual host each.
"""

from __future__ import annotations

import os
import re

from kombu import Exchange, Queue

PREFIX_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{0,64}")


def prefix_problem(prefix: str) -> str | None:
    """Why a QUEUE_PREFIX value is unusable, or None (config.py reports it with the other problems)."""
    if PREFIX_PATTERN.fullmatch(prefix):
        return None
    return "QUEUE_PREFIX may hold at most 64 letters, digits and . _ : - characters"


_env_prefix = os.environ.get("QUEUE_PREFIX", "")
# A bad prefix is reported by load_settings at start-up; until then, names stay unprefixed.
QUEUE_PREFIX = _env_prefix if prefix_problem(_env_prefix) is None else ""

EXCHANGE_BASE_NAME = "licence.events"
EXCHANGE_NAME = QUEUE_PREFIX + EXCHANGE_BASE_NAME


class RoutingKeys:
    """Events the workflow publishes; each names what happened, not who should act on it."""

    RECEIVED = "application.received"
    SUPPLEMENTED = "application.supplemented"
    ACCEPTED = "application.accepted"
    PAID = "application.paid"
    CONVERTED = "application.converted"
    STATUS_CHANGED = "application.status_changed"


# stage name (the Procfile's `python -m workers <stage>`) -> (unprefixed queue, routing keys bound to it)
STAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "checks": ("licence.checks", (RoutingKeys.RECEIVED, RoutingKeys.SUPPLEMENTED)),
    "fee": ("licence.fee", (RoutingKeys.ACCEPTED,)),
    "conversion": ("licence.conversion", (RoutingKeys.PAID,)),
    "issuance": ("licence.issuance", (RoutingKeys.CONVERTED,)),
    "portal_sync": ("licence.portal_sync", (RoutingKeys.STATUS_CHANGED,)),
}


class QueueNames:
    """One queue per worker stage; `python -m workers <stage>` consumes `<prefix>licence.<stage>`."""

    CHECKS = QUEUE_PREFIX + STAGES["checks"][0]
    FEE = QUEUE_PREFIX + STAGES["fee"][0]
    CONVERSION = QUEUE_PREFIX + STAGES["conversion"][0]
    ISSUANCE = QUEUE_PREFIX + STAGES["issuance"][0]
    PORTAL_SYNC = QUEUE_PREFIX + STAGES["portal_sync"][0]

    @classmethod
    def all_stage_queues(cls) -> list[str]:
        return [cls.CHECKS, cls.FEE, cls.CONVERSION, cls.ISSUANCE, cls.PORTAL_SYNC]


# stage -> (queue, routing keys), with this process's prefix.
STAGE_BINDINGS: dict[str, tuple[str, tuple[str, ...]]] = {
    stage: (QUEUE_PREFIX + queue, keys) for stage, (queue, keys) in STAGES.items()
}

events_exchange = Exchange(EXCHANGE_NAME, type="topic", durable=True)


def stage_for_routing_key(routing_key: str) -> str | None:
    """The stage whose queue an event goes to (each routing key is bound to exactly one queue)."""
    for stage, (_queue, keys) in STAGES.items():
        if routing_key in keys:
            return stage
    return None


def queue_name(stage: str, prefix: str = QUEUE_PREFIX) -> str:
    return prefix + STAGES[stage][0]


def stage_queues(stage: str, prefix: str = QUEUE_PREFIX) -> list[Queue]:
    exchange = events_exchange if prefix == QUEUE_PREFIX else Exchange(prefix + EXCHANGE_BASE_NAME,
                                                                       type="topic", durable=True)
    _queue, keys = STAGES[stage]
    return [Queue(queue_name(stage, prefix), exchange=exchange, routing_key=key, durable=True) for key in keys]


def all_queues(prefix: str = QUEUE_PREFIX) -> list[Queue]:
    """Declared by the relay before publishing, so no event is dropped before a worker has started."""
    return [q for stage in STAGES for q in stage_queues(stage, prefix)]
