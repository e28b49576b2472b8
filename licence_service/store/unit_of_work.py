"""The unit of work: one database transaction around each handler (Cosmic Python, chapter 6)."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.orm import Session, sessionmaker

from licence_service.store import deliveries, models, portal_sync_items, repositories


class UnitOfWork:
    """`with uow:` opens a session; `uow.commit()` commits; leaving without commit rolls back."""

    session: Session

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory

    def __enter__(self) -> UnitOfWork:
        self.session = self._session_factory()
        # Rows only ever inserted (history, DongBoHoSoMC items, outbox, processed events, payments),
        # in the order they were appended: written at commit, one INSERT per table for all of them,
        # instead of through the ORM's flush (see `append`).
        self.appended: list[models.Base] = []
        # The next DongBoHoSoMC item's seq of applications a batch asked for at once, before any
        # item of this transaction (transitions._next_sync_seq counts those).
        self.next_sync_seqs: dict[str, int] = {}
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

    def append(self, row: models.Base) -> None:
        """Insert `row` at commit. For rows nothing changes or reads back in the same transaction:
        the ORM's flush cost a stage batch as much as its own work, a flush per event (issue 8).
        The object stays out of the session (no id is filled in)."""
        self.appended.append(row)

    def commit(self) -> None:
        if self.appended:
            # What the ORM holds first: an appended row may refer to a new application or card.
            self.session.flush()
            by_type: dict[type[models.Base], list[models.Base]] = {}
            for row in self.appended:
                by_type.setdefault(type(row), []).append(row)
            for rows in by_type.values():
                repositories.insert_rows(self.session, rows)
            self.appended.clear()
        self.session.commit()

    def rollback(self) -> None:
        self.appended.clear()
        self.session.rollback()
