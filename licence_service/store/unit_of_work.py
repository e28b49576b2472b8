"""The unit of work: one database transaction around each handler (Cosmic Python, chapter 6)."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from licence_service.store import deliveries, models, portal_sync_items, repositories


class UnitOfWork:
    """`with uow:` opens a session; `uow.commit()` commits; leaving without commit rolls back."""

    session: Session

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory

    def __enter__(self) -> UnitOfWork:
        self.session = self._session_factory()
        # Rows only ever inserted (history, DongBoHoSoMC items, outbox, processed events, payments,
        # issued cards and classes) and the Deferred statements before them, in the order they were
        # appended: written at commit (or write_appended), one execution per table or statement for
        # all of them, instead of through the ORM's flush (see `append`).
        self.appended: list[models.Base | repositories.Deferred] = []
        # The next DongBoHoSoMC item's seq of applications a batch asked for at once, after any item
        # already written in this transaction (write_appended keeps it so); items still appended
        # come after it (transitions._next_sync_seq counts those).
        self.next_sync_seqs: dict[str, int] = {}
        self.applications = repositories.ApplicationRepository(self.session)
        self.register = repositories.RegisterRepository(self.session, append=self.append)
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

    def append(self, row: models.Base | repositories.Deferred) -> None:
        """Insert `row` at commit (or run it, a Deferred statement). For rows nothing changes or
        reads back in the same transaction: the ORM's flush cost a stage batch as much as its own
        work, a flush per event (issue 8). The object stays out of the session (no id is filled in).

        At commit, rows of one table go in one INSERT and a Deferred statement's executions in one
        call, tables and statements in the order each first appears; so whatever must come before
        something else of the same transaction (a DELETE before the rows replacing those it
        deletes) must be appended first, in every event of a batch."""
        self.appended.append(row)

    def write_appended(self) -> None:
        """Write what is appended now, in the transaction (or savepoint) open; commit does it too."""
        if not self.appended:
            return
        # What the ORM holds first: an appended row may refer to a new application or card.
        self.session.flush()
        groups: dict[Any, list[Any]] = {}
        for item in self.appended:
            key = item.statement if isinstance(item, repositories.Deferred) else type(item)
            groups.setdefault(key, []).append(item)
        connection = self.session.connection()
        for key, items in groups.items():
            if isinstance(items[0], repositories.Deferred):
                params = [d.params for d in items]
                connection.execute(key, params if len(params) > 1 else params[0])
            else:
                repositories.insert_rows(self.session, items)
        for item in self.appended:
            if isinstance(item, models.PortalSyncItem):
                # Written: the next item of its application comes after it (transitions._next_sync_seq).
                self.next_sync_seqs[item.application_id] = max(self.next_sync_seqs.get(item.application_id, 0),
                                                               item.seq + 1)
        self.appended.clear()

    def commit(self) -> None:
        self.write_appended()
        self.session.commit()

    def rollback(self) -> None:
        self.appended.clear()
        self.session.rollback()
