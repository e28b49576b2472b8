"""The unit of work: one database transaction around each handler (Cosmic Python, chapter 6)."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.orm import Session, sessionmaker

from licence_service.store import deliveries, portal_sync_items, repositories


class UnitOfWork:
    """`with uow:` opens a session; `uow.commit()` commits; leaving without commit rolls back."""

    session: Session

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory

    def __enter__(self) -> UnitOfWork:
        self.session = self._session_factory()
        self.applications = repositories.ApplicationRepository(self.session)
        self.register = repositories.RegisterRepository(self.session)
        self.outbox = repositories.OutboxRepository(self.session)
        self.processed = repositories.ProcessedEventRepository(self.session)
        self.sandbox = repositories.SandboxRepository(self.session)
        self.portal_sync = portal_sync_items.PortalSyncRepository(self.session)
        self.deliveries = deliveries.DeliveryRepository(self.session)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                # A read (or an already committed write): keep the loaded objects usable after the
                # block, since callers render them. Rolling back first would expire them.
                self.session.expunge_all()
            self.session.rollback()
        finally:
            self.session.close()

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()
