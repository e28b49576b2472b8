"""What every worker process builds once at start: configuration, database, registers."""

from __future__ import annotations

from licence_service.bootstrap import Services, build_services
from licence_service.registers.citizens import SandboxHealthCertificateRegister, SandboxPopulationRegister
from licence_service.services.stages import StageContext


def stage_context(services: Services) -> StageContext:
    return StageContext(
        settings=services.settings,
        uow_factory=services.uow,
        # Lookups only read: on SQLite they do not queue for the writer lock.
        population=SandboxPopulationRegister(services.read_session_factory),
        health_certificates=SandboxHealthCertificateRegister(services.read_session_factory),
        read_uow_factory=services.read_uow,
    )


def default_services() -> Services:
    return build_services()
