"""R-ELIG-5 under a race: two applications for the same licence checked at the same moment by two
checks handlers (threads, each with its own sessions) — on SQLite and on PostgreSQL exactly one passes
and the other is refused with application_in_progress."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from licence_service.bootstrap import Services, build_services
from licence_service.domain.model import Person
from licence_service.messaging.envelope import Event
from licence_service.messaging.names import RoutingKeys
from licence_service.registers.citizens import SandboxHealthCertificateRegister, SandboxPopulationRegister
from licence_service.services import applications as service
from licence_service.services import stages
from licence_service.store import models
from schemas.applications import ApplicationRequestSchema
from tests.conftest import make_settings
from tests.support.data import application_body, seed_an

# Long enough for the other handler to reach its own R-ELIG-5 query if nothing holds it back.
WINDOW_SECONDS = 0.5


@pytest.fixture
def race_services(tmp_path: Path, any_database_url: str) -> Iterator[Services]:
    services = build_services(make_settings(tmp_path, any_database_url, None))
    yield services
    services.engine.dispose()


class StartingGate(SandboxPopulationRegister):
    """The sandbox population register, answering only once both handlers have asked, so both open
    their checks transactions together."""

    def __init__(self, services: Services, barrier: threading.Barrier) -> None:
        super().__init__(services.session_factory)
        self.barrier = barrier

    def person(self, citizen_id: str) -> Person | None:
        self.barrier.wait(timeout=30)
        return super().person(citizen_id)


def widen_the_window(services: Services) -> None:
    """Pause each handler just after its R-ELIG-5 query, before it writes its verdict: without a lock
    the other handler then runs the same query and also finds no other open application."""

    @event.listens_for(services.engine, "after_cursor_execute")
    def _pause(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "EXISTS" in statement.upper() and "licence_number" in statement:
            time.sleep(WINDOW_SECONDS)


def submit(services: Services, dossier: str) -> str:
    body = application_body(portal_dossier_id=dossier)
    data = ApplicationRequestSchema().load(body)
    return service.submit(services.uow, data, body, client_id="portal").application.id


def test_two_applications_for_one_licence_checked_at_once_exactly_one_passes(race_services):
    services = race_services
    seed_an(services.uow())
    ids = [submit(services, "G01.99-RACE-1"), submit(services, "G01.99-RACE-2")]
    barrier = threading.Barrier(2)
    ctx = stages.StageContext(settings=services.settings, uow_factory=services.uow,
                              population=StartingGate(services, barrier),
                              health_certificates=SandboxHealthCertificateRegister(services.session_factory))
    widen_the_window(services)
    failures: list[BaseException] = []

    def check(application_id: str) -> None:
        try:
            stages.checks(ctx, Event(type=RoutingKeys.RECEIVED, application_id=application_id))
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=check, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures, failures
    assert not any(t.is_alive() for t in threads)

    with services.session_factory() as s:
        outcomes = {a.id: (a.status, a.refusal_reasons) for a in
                    s.scalars(select(models.Application).where(models.Application.id.in_(ids)))}
    assert sorted(outcomes.values()) == [("accepted", []), ("refused", ["application_in_progress"])]
