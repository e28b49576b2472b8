"""The portal_sync stage: pushes DongBoHoSoMC calls on every status change, and re-sends due
retries every few seconds even when no new event arrives."""

from __future__ import annotations

from licence_service.bootstrap import Services
from licence_service.messaging.consumer import StageWorker
from licence_service.registers.portal import PortalClient
from licence_service.services.portal_sync import sync_application
from licence_service.store import models


def worker(services: Services) -> StageWorker:
    client = PortalClient(services.settings)

    def sync(application_id: str) -> None:
        sync_application(application_id, uow_factory=services.uow, client=client, settings=services.settings)

    def retry_due() -> None:
        with services.uow() as uow:
            due = uow.applications.applications_with_due_sync(models.utcnow())
        for application_id in due:
            sync(application_id)

    return StageWorker("portal_sync", lambda event: sync(event.application_id), prefetch=20,
                       on_idle=retry_due, idle_seconds=1.0)
