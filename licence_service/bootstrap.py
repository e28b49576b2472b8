"""Composition root: builds the engine, session factory and adapters once per process."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from licence_service.config import Settings, load_settings
from licence_service.embedded_redis import ensure_redis
from licence_service.store.database import make_engine, make_read_session_factory, make_session_factory
from licence_service.store.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from flask import Flask


@dataclass
class Services:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    extras: dict[str, object] = field(default_factory=dict)
    _read_session_factory: sessionmaker[Session] | None = field(default=None, init=False, repr=False)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory)

    @property
    def read_session_factory(self) -> sessionmaker[Session]:
        """Sessions that only read: on SQLite they do not queue for the writer lock
        (licence_service.store.database.read_only_engine)."""
        if self._read_session_factory is None:
            self._read_session_factory = make_read_session_factory(self.engine)
        return self._read_session_factory

    def read_uow(self) -> UnitOfWork:
        """A unit of work for reading only; never commit through it."""
        return UnitOfWork(self.read_session_factory)

    @property
    def broker_url(self) -> str:
        # The embedded Redis is started on first need, so commands that never touch the broker
        # (db upgrade, tokens issue) do not start a server.
        if not (self.settings.redis_url or self.settings.broker_url):
            self.settings = with_redis(self.settings)
        return self.settings.effective_broker_url


def with_redis(settings: Settings) -> Settings:
    """Fill in the embedded Redis when no REDIS_URL is configured (the embedded default)."""
    if settings.redis_url or settings.broker_url:
        return settings
    url = ensure_redis(settings.var_dir, settings.embedded_redis_port)
    return settings.with_overrides(redis_url=url)


def build_services(settings: Settings | None = None) -> Services:
    settings = settings or load_settings()
    engine = make_engine(settings.database_url)
    return Services(settings=settings, engine=engine, session_factory=make_session_factory(engine))


def services_for(app: Flask) -> Services:
    return app.extensions["licence_service"]
