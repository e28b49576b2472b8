"""Fixtures of the hostile-input and personal-data tests (SECURITY.md): apps built from an environment
of the test's choosing (token keys, rate limits), on the real migrated database and the real Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from licence_service.app import create_app
from licence_service.bootstrap import Services, build_services
from licence_service.config import load_settings
from licence_service.store import models
from tests.conftest import TEST_RATE_LIMIT, TOKEN_SECRET

KEY_1 = "first-key-" + "1" * 32
KEY_2 = "second-key-" + "2" * 32


@pytest.fixture
def app_with(tmp_path: Path, database_url: str, redis_url: str) -> Iterator[Callable[..., Flask]]:
    """`app_with(TOKEN_KEYS=..., RATE_LIMIT=...)`: the real app configured by these environment
    variables (on top of the test database and Redis)."""
    built: list[Services] = []

    def make(**env: str) -> Flask:
        base = {"VAR_DIR": str(tmp_path / "var"), "DATABASE_URL": database_url, "REDIS_URL": redis_url,
                "RATE_LIMIT": TEST_RATE_LIMIT}
        if "TOKEN_KEYS" not in env:
            base["TOKEN_SECRET"] = TOKEN_SECRET
        services = build_services(load_settings({**base, **env}))
        built.append(services)
        app = create_app(services=services)
        app.config["TESTING"] = True
        return app

    yield make
    for services in built:
        services.engine.dispose()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def row_counts(services: Any) -> dict[str, int]:
    """Rows of every table a request could write: a refused request must leave all unchanged."""
    tables = (models.Application, models.ApplicationHistory, models.OutboxMessage, models.Payment,
              models.PortalSyncItem, models.Photo)
    with services.session_factory() as s:
        return {t.__tablename__: s.scalar(select(func.count()).select_from(t)) for t in tables}


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status
    return body
