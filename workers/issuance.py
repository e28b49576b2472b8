"""The issuance stage: consumes its queue and runs licence_service.services.stages.issuance (several waiting
messages at a time in one transaction: issuance_batch)."""

from __future__ import annotations

from licence_service.bootstrap import Services
from licence_service.messaging.consumer import StageWorker
from licence_service.services import stages
from workers.context import stage_context


def worker(services: Services) -> StageWorker:
    ctx = stage_context(services)
    return StageWorker("issuance", lambda event: stages.issuance(ctx, event),
                       handle_batch=lambda events: stages.issuance_batch(ctx, events))
