"""Shared fixtures: real Redis (the bundled redis-server), a migrated database per test (SQLite, or
PostgreSQL when LICENCE_TEST_POSTGRES_URL is set), the Flask app and tokens."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from licence_service.app import create_app
from licence_service.bootstrap import Services, build_services
from licence_service.config import Settings, load_settings
from licence_service.store.migrate import upgrade
from licence_service.tokens import issue_token
from tests.support.servers import PortalStandIn, RedisServer

POSTGRES_URL = os.environ.get("LICENCE_TEST_POSTGRES_URL")
AMQP_URL = os.environ.get("LICENCE_TEST_AMQP_URL")
NO_POSTGRES = ("PostgreSQL variant: set LICENCE_TEST_POSTGRES_URL "
               "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test); .ci/run does")
TOKEN_SECRET = "test-secret-" + "x" * 32
TEST_RATE_LIMIT = "100000/minute"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()  # every test starts with empty queues
    yield redis_server.url
    client.close()


def _postgres_schema_url(base: str) -> Iterator[str]:
    """A fresh schema per test, so tests (and concurrent CI runs) never see each other's rows."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Both stores: for tests whose behaviour must hold on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'licence.db'}"
        upgrade(url)
        yield url
        return
    if not POSTGRES_URL:
        pytest.skip(NO_POSTGRES)
    for url in _postgres_schema_url(POSTGRES_URL):
        upgrade(url)
        yield url


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'licence.db'}"
    upgrade(url)
    return url


def make_settings(tmp_path: Path, database_url: str, redis_url: str | None, **overrides: Any) -> Settings:
    env = {"VAR_DIR": str(tmp_path / "var"), "DATABASE_URL": database_url, "TOKEN_SECRET": TOKEN_SECRET,
           # The limiter runs (on the test Redis) in every test, with a budget no test's polling
           # reaches; tests/integration/security sets real limits.
           "RATE_LIMIT": TEST_RATE_LIMIT}
    if redis_url:
        env["REDIS_URL"] = redis_url
    return load_settings(env).with_overrides(**overrides)


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_url: str) -> Settings:
    return make_settings(tmp_path, database_url, redis_url)


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    svc = build_services(settings)
    yield svc
    svc.engine.dispose()


@pytest.fixture
def app(services: Services) -> Any:
    app = create_app(services=services)
    app.config["TESTING"] = True
    return app


# Tokens made when a module is imported (collection time) must outlive the whole run: on a loaded
# machine the suite has taken over ten minutes to reach them, and the default lifetime's expiry
# then failed tests that have nothing to do with tokens.
COLLECTION_TOKEN_TTL = 6 * 3600


def token_for(*scopes: str, client: str = "portal", secret: str = TOKEN_SECRET, **kwargs: Any) -> str:
    return issue_token(secret, client, list(scopes), issuer="licence-service", audience="licence-service",
                       ttl_seconds=kwargs.get("ttl_seconds", 600), now=kwargs.get("now"))


@pytest.fixture
def portal_headers() -> dict[str, str]:
    token = token_for("applications:submit", "applications:read")
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def portal_stand_in() -> Iterator[PortalStandIn]:
    stand_in = PortalStandIn().start()
    yield stand_in
    stand_in.stop()
