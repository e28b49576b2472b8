"""The checks stage: consumes its queue and runs licence_service.services.stages.checks (several waiting
messages at a time in one transaction: checks_batch)."""

from __future__ import annotations

from licence_service.bootstrap import Services
from licence_service.messaging.consumer import StageWorker
from licence_service.services import stages
from workers.context import stage_context


def worker(services: Services) -> StageWorker:
    ctx = stage_context(services)
    return StageWorker("checks", lambda event: stages.checks(ctx, event),
                       handle_batch=lambda events: stages.checks_batch(ctx, events))
