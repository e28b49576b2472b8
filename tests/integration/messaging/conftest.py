"""Fixtures for the delivery-guarantee tests: the service on SQLite and PostgreSQL with the real
bundled Redis, applications submitted through the API, and stage handlers driven by hand from the
events the outbox holds."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
from sqlalchemy import func, select

from licence_service.app import create_app
from licence_service.bootstrap import Services, build_services
from licence_service.embedded_redis import start_redis_server
from licence_service.messaging.envelope import Event
from licence_service.services import stages
from licence_service.services.stages import StageContext
from licence_service.store import models
from tests.conftest import COLLECTION_TOKEN_TTL, make_settings, token_for
from tests.support import delivery
from tests.support.servers import free_port
from workers.context import stage_context

HEADERS = {"Authorization": "Bearer " + token_for("applications:submit", "applications:read",
                                                  ttl_seconds=COLLECTION_TOKEN_TTL)}


@dataclass
class Service:
    """The service in this test process: API client, services, a stage context for the handlers."""

    services: Services
    ctx: StageContext
    client: Any
    tmp_path: Path

    @property
    def uow(self) -> Any:
        return self.services.uow

    @property
    def db(self) -> Any:
        return self.services.session_factory

    def submit(self, citizen: delivery.Citizen) -> str:
        return self.submit_body(citizen.body())

    def submit_body(self, body: dict[str, Any]) -> str:
        response = self.client.post("/api/v1/applications", json=body, headers=HEADERS)
        assert response.status_code == 202, response.get_data(as_text=True)
        return response.get_json()["id"]

    def pay(self, application_id: str, transaction: str | None = None) -> None:
        response = self.client.post(f"/api/v1/applications/{application_id}/payments", headers=HEADERS, json={
            "transaction_id": transaction or f"PAY-{application_id}", "amount": delivery.FEE, "currency": "VND",
            "paid_at": models.utcnow().isoformat()})
        assert response.status_code == 202, response.get_data(as_text=True)

    def application(self, application_id: str) -> models.Application:
        with self.uow() as uow:
            application = uow.applications.get(application_id)
            assert application is not None
            return application

    def snapshot(self, application_id: str) -> dict[str, object]:
        """Everything a stage handler could change about an application."""
        def n(model: Any, *where: Any) -> int:
            return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)

        with self.db() as s:
            application = s.get(models.Application, application_id)
            return {
                "status": application.status,
                "converted": application.converted,
                "card": application.issued_card_serial,
                "history": n(models.ApplicationHistory, models.ApplicationHistory.application_id == application_id),
                "outbox": n(models.OutboxMessage),
                "sync_items": n(models.PortalSyncItem, models.PortalSyncItem.application_id == application_id),
                "cards": n(models.Card, models.Card.application_id == application_id),
                "licence_history": n(models.LicenceHistory),
            }

    def status(self, application_id: str) -> str:
        return self.application(application_id).status

    def events(self, application_id: str, routing_key: str) -> list[Event]:
        """The events the outbox holds for one application and routing key, oldest first."""
        with self.db() as s:
            rows = s.scalars(select(models.OutboxMessage).where(models.OutboxMessage.routing_key == routing_key)
                             .order_by(models.OutboxMessage.id)).all()
        return [Event.from_dict(r.payload) for r in rows if r.payload.get("application_id") == application_id]

    def event(self, application_id: str, routing_key: str) -> Event:
        found = self.events(application_id, routing_key)
        assert len(found) == 1, f"{len(found)} {routing_key} events for {application_id}"
        return found[0]

    def drive_to(self, application_id: str, status: str) -> None:
        """Run the stage handlers in this process, from the outbox's events, until `status`
        ("accepted", "awaiting_payment", "processing" (paid), "converted" or "issued")."""
        from licence_service.messaging.names import RoutingKeys as K

        steps = [("accepted", K.RECEIVED, stages.checks), ("awaiting_payment", K.ACCEPTED, stages.fee),
                 ("processing", None, None), ("converted", K.PAID, stages.conversion),
                 ("issued", K.CONVERTED, stages.issuance)]
        for reached, key, handler in steps:
            if key is None:
                self.pay(application_id)
            else:
                assert handler(self.ctx, self.event(application_id, key)) is True
            if reached == status:
                return


@pytest.fixture
def service(tmp_path: Path, any_database_url: str, redis_url: str) -> Iterator[Service]:
    """On SQLite and PostgreSQL: what concerns delivery must hold on both."""
    yield from _service(tmp_path, any_database_url, redis_url)


@pytest.fixture
def sqlite_service(tmp_path: Path, database_url: str, redis_url: str) -> Iterator[Service]:
    yield from _service(tmp_path, database_url, redis_url)


def _service(tmp_path: Path, database_url: str, redis_url: str, **overrides: Any) -> Iterator[Service]:
    settings = make_settings(tmp_path, database_url, redis_url, **overrides)
    services = build_services(settings)
    app = create_app(services=services)
    app.config["TESTING"] = True
    try:
        yield Service(services, stage_context(services), app.test_client(), tmp_path)
    finally:
        services.engine.dispose()


class RestartableRedis:
    """A bundled redis-server of this test's own, stopped and started again on the same port (with its
    data when `appendonly`, empty otherwise)."""

    def __init__(self, data_dir: Path, *, appendonly: bool) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.appendonly = appendonly
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis_lib.Redis:
        return redis_lib.Redis.from_url(self.url)

    def start(self) -> RestartableRedis:
        self.proc = start_redis_server(self.port, self.data_dir, daemonize=False, appendonly=self.appendonly)
        if self.appendonly:
            # Every write on disk before it is acknowledged, so a restart keeps the last message too.
            self.client().config_set("appendfsync", "always")
        return self

    def kill(self) -> None:
        """SIGKILL: no chance to save anything (with appendonly off, it comes back empty)."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def terminate(self) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RestartableRedis]:
    server = RestartableRedis(tmp_path / "redis", appendonly=False).start()
    yield server
    server.stop()


@pytest.fixture
def persistent_redis(tmp_path: Path) -> Iterator[RestartableRedis]:
    server = RestartableRedis(tmp_path / "redis-aof", appendonly=True).start()
    yield server
    server.stop()
