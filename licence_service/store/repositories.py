"""Repositories: the only place that knows how rows are found. Handlers never write raw queries."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, delete, exists, func, insert, inspect, select, update
from sqlalchemy.orm import Session, lazyload, load_only
from sqlalchemy.sql.dml import Delete, Insert, Update

from licence_service.store import models


@functools.cache
def _plain_insert(entity: type[models.Base]) -> tuple[Insert, tuple[tuple[str, str], ...]]:
    """An INSERT into the entity's table, made once (SQLAlchemy memoises a statement's cache key on
    the statement), and its (attribute, column) names."""
    names = tuple((attr.key, attr.columns[0].key) for attr in inspect(entity).column_attrs)
    return insert(entity.__table__), names


def column_values(obj: models.Base) -> dict[str, Any]:
    """The column values set on a mapped object, by column name."""
    state = obj.__dict__
    return {column: state[attr] for attr, column in _plain_insert(type(obj))[1] if attr in state}


@functools.cache
def _get_many_stmt(with_history: bool) -> Select[tuple[models.Application]]:
    """Made once (see _plain_insert): a worker loading applications per call skips building it."""
    stmt = select(models.Application).where(models.Application.id.in_(bindparam("ids", expanding=True)))
    return stmt if with_history else stmt.options(lazyload(models.Application.history))


@functools.cache
def _status_stmt() -> Select[tuple[models.Application]]:
    a = models.Application
    return (select(a).where(a.id == bindparam("id"))
            .options(load_only(a.id, a.status, a.portal_status, a.updated_at, a.fee_amount, a.fee_currency,
                               a.fee_paid), lazyload(a.history)))


# What a DongBoHoSoMC entry shows of an application (registers.portal.payload_entry), and whether
# the portal has acknowledged any of its statuses yet.
ENTRY_COLUMNS = ("id", "portal_dossier_id", "procedure", "channel", "received_at", "appointment_date", "applicant",
                 "fee_amount", "portal_acked_status")


@functools.cache
def _for_entries_stmt() -> Select[tuple[models.Application]]:
    a = models.Application
    return (select(a).where(a.id.in_(bindparam("ids", expanding=True)))
            .options(load_only(*(getattr(a, c) for c in ENTRY_COLUMNS), raiseload=True), lazyload(a.history)))


@functools.cache
def _update_if_unchanged_stmt(columns: tuple[str, ...]) -> Update:
    table = models.Application.__table__
    return (update(table)
            .where(table.c.id == bindparam("_id"), table.c.status == bindparam("_status"),
                   table.c.updated_at == bindparam("_updated_at"))
            .values({name: bindparam(name) for name in columns}))


@functools.cache
def _payment_by_transaction_stmt() -> Select[tuple[models.Payment]]:
    return select(models.Payment).where(models.Payment.transaction_id == bindparam("transaction_id"))


@functools.cache
def _open_for_licences_stmt() -> Select[tuple[str, str]]:
    a = models.Application
    return select(a.id, a.licence_number).where(a.licence_number.in_(bindparam("numbers", expanding=True)),
                                                a.status.in_(bindparam("statuses", expanding=True)))


@functools.cache
def _lock_many_stmt() -> Select[tuple[models.Application]]:
    # ORDER BY before FOR UPDATE: PostgreSQL locks rows as the sorted rows come out, so two batches
    # lock their common applications in the same order and never deadlock over them.
    return (_get_many_stmt(with_history=False).order_by(models.Application.id).with_for_update())


@functools.cache
def _max_seqs_stmt() -> Select[tuple[str, int]]:
    item = models.PortalSyncItem
    return (select(item.application_id, func.max(item.seq))
            .where(item.application_id.in_(bindparam("ids", expanding=True))).group_by(item.application_id))


@functools.cache
def _licences_stmt() -> Select[tuple[models.Licence]]:
    # The stages never read a licence's cards (issuance replaces them with one UPDATE).
    return (select(models.Licence).where(models.Licence.number.in_(bindparam("numbers", expanding=True)))
            .options(lazyload(models.Licence.cards)))


@functools.cache
def _lock_licences_stmt() -> Select[tuple[str]]:
    number = models.Licence.number
    return (select(number).where(number.in_(bindparam("numbers", expanding=True))).order_by(number)
            .with_for_update())


@dataclass(frozen=True)
class Deferred:
    """An UPDATE or DELETE to run at commit among the unit of work's appended rows (in the order
    appended, one execution for all with the same statement), instead of at once: issuance ran
    seven statements and a flush per licence (issue 8). `statement` is made once, so that it groups."""

    statement: Update | Delete
    params: dict[str, Any]


@functools.cache
def _replace_cards_stmt() -> Update:
    table = models.Card.__table__
    return (update(table).where(table.c.licence_number == bindparam("number"), table.c.status == "valid")
            .values(status="replaced"))


@functools.cache
def _delete_classes_stmt() -> Delete:
    table = models.LicenceClass.__table__
    return delete(table).where(table.c.licence_number == bindparam("number"))


@dataclass(frozen=True)
class PreparedInsert:
    """An INSERT's SQL and its rows' parameters, made ready for the driver (prepare_insert)."""

    sql: str
    params: list[tuple[Any, ...]]

    def execute(self, session: Session) -> None:
        # The session's connection, in its transaction: the driver's execute and nothing more.
        session.connection().exec_driver_sql(self.sql, self.params if len(self.params) > 1 else self.params[0])


@functools.lru_cache(maxsize=256)  # per engine's dialect: bounded, as tests make many engines
def _insert_sql(table: Any, keys: tuple[str, ...], dialect: Any) -> tuple[str, tuple[str, ...]]:
    compiled = insert(table).compile(dialect=dialect, column_keys=list(keys))
    return str(compiled), tuple(compiled.positiontup or ())


@functools.lru_cache(maxsize=1024)
def _bind_processor(column: Any, dialect: Any) -> Callable[[Any], Any] | None:
    # The dialect's own form of the type (SQLite's DATETIME, say), as Core's execution uses it.
    return column.type.dialect_impl(dialect).bind_processor(dialect)


_UNPREPARED = object()


def _default_of(column: Any) -> tuple[bool, Any]:
    """What the INSERT gives a column its row leaves out: (True, value) for a Python-side default,
    (False, None) for one the database fills (autoincrement, server default, or NULL), and
    (False, _UNPREPARED) for a default only Core's execution can work out (a SQL expression)."""
    default = column.default
    if default is None:
        return False, None
    if default.is_scalar:
        return True, default.arg
    if default.is_callable:
        return True, default.arg(None)  # SQLAlchemy wraps a callable taking no context to take one
    return False, _UNPREPARED


def prepare_insert(dialect: Any, rows: Sequence[models.Base]) -> PreparedInsert | None:
    """The INSERT of these rows (of one table) with every bound value already converted for the
    driver — the JSON columns serialised, the times in UTC, the Python-side defaults filled in — so
    that what is left for the transaction is the driver's execute: a submit on SQLite spent most of
    its time under the writer lock in SQLAlchemy's execution of its INSERTs (issue 8). Only for a
    positional driver (SQLite's); None when it cannot be (insert_rows then goes through Core): rows
    that leave out different columns, or a default only Core can work out."""
    if not rows or not dialect.positional:
        return None
    table = type(rows[0]).__table__
    values = []
    for row in rows:
        given = column_values(row)
        for column in table.columns:
            if column.key not in given:
                fill, value = _default_of(column)
                if value is _UNPREPARED:
                    return None
                if fill:
                    given[column.key] = value
        values.append(given)
    keys = tuple(values[0])
    if any(tuple(v) != keys for v in values):
        return None
    sql, order = _insert_sql(table, keys, dialect)
    processors = [_bind_processor(table.c[key], dialect) for key in order]
    return PreparedInsert(sql, [tuple(p(v[k]) if p else v[k] for k, p in zip(order, processors, strict=True))
                                for v in values])


def insert_rows(session: Session, rows: Sequence[models.Base], ready: PreparedInsert | None = None) -> None:
    """INSERT rows of one table with one statement, in the session's transaction, without the ORM's
    unit of work: the objects are read for their column values only and stay out of the session.
    Where it can (prepare_insert) as the driver's execute of values made ready — `ready`, when the
    caller made them before the transaction began — and otherwise through Core."""
    if not rows:
        return
    ready = ready or prepare_insert(session.get_bind().dialect, rows)
    if ready is not None:
        ready.execute(session)
        return
    values = [column_values(row) for row in rows]
    # The session's connection, in its transaction; Core needs no more.
    session.connection().execute(_plain_insert(type(rows[0]))[0], values if len(values) > 1 else values[0])


class ApplicationRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, application: models.Application) -> None:
        self.session.add(application)

    def insert_new(self, application: models.Application, *dependents: Sequence[models.Base]) -> None:
        """INSERT a new application, then each list of rows referring to it (one statement per
        list, all of one table), without the ORM's unit of work: the objects are only read for their
        column values (the columns' defaults fill in the rest) and stay out of the session."""
        tables = [rows for rows in ([application], *dependents) if rows]
        # Made ready before the first statement begins the transaction (and, on SQLite, takes the
        # writer lock): prepare_insert.
        prepared = [prepare_insert(self.session.get_bind().dialect, rows) for rows in tables]
        for rows, ready in zip(tables, prepared, strict=True):
            insert_rows(self.session, rows, ready)

    def get(self, application_id: str, *, for_update: bool = False,
            with_history: bool = True) -> models.Application | None:
        """`with_history=False` for a worker that does not read the history: it is then loaded only
        if touched, instead of with every application (a query per load, growing with each step)."""
        stmt = select(models.Application).where(models.Application.id == application_id)
        if not with_history:
            stmt = stmt.options(lazyload(models.Application.history))
        if for_update:
            # PostgreSQL: serialise handlers of one application; SQLite's BEGIN IMMEDIATE already does.
            stmt = stmt.with_for_update()
        return self.session.scalars(stmt).one_or_none()

    def get_status(self, application_id: str) -> models.Application | None:
        """An application with its status, portal status, last change and fee columns loaded and no
        others (for a payment, which needs no more: reading the JSON columns was a sixth of it). Any
        other column read from it once it has left its transaction raises."""
        return self.session.scalars(_status_stmt(), {"id": application_id}).one_or_none()

    def lock_many(self, application_ids: Iterable[str]) -> dict[str, models.Application]:
        """Several applications, without their history, locked in the order of their ids (on
        PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers), by id."""
        ids = sorted(set(application_ids))
        if not ids:
            return {}
        rows = self.session.scalars(_lock_many_stmt(), {"ids": ids})
        return {application.id: application for application in rows}

    def get_many(self, application_ids: Iterable[str], *, with_history: bool = True) -> dict[str, models.Application]:
        """Several applications in one query, by id (those that exist)."""
        rows = self.session.scalars(_get_many_stmt(with_history), {"ids": list(application_ids)})
        return {application.id: application for application in rows}

    def get_for_entries(self, application_ids: Iterable[str]) -> dict[str, models.Application]:
        """Several applications with only ENTRY_COLUMNS loaded (any other column read from them
        raises), by id: the portal sync builds its calls' entries from them, many times per
        application, and the JSON columns it does not show were most of the cost of loading them."""
        return {a.id: a for a in self.session.scalars(_for_entries_stmt(), {"ids": list(application_ids)})}

    def update_if_unchanged(self, application_id: str, *, status: str, updated_at: dt.datetime,
                            values: dict[str, Any]) -> bool:
        """Set `values` on an application read earlier, only if it is still in `status` and has not
        been changed since `updated_at`: one conditional UPDATE, so the row need not be read again
        in this transaction. False when it has changed (nothing is written)."""
        # The statement made once per set of columns (see _plain_insert); the values bound.
        stmt = _update_if_unchanged_stmt(tuple(sorted(values)))
        params = {**values, "_id": application_id, "_status": status, "_updated_at": updated_at}
        return self.session.connection().execute(stmt, params).rowcount == 1

    def get_by_dossier(self, portal_dossier_id: str) -> models.Application | None:
        stmt = select(models.Application).where(models.Application.portal_dossier_id == portal_dossier_id)
        return self.session.scalars(stmt).one_or_none()

    def open_for_licence(self, licence_number: str, statuses: Iterable[str], exclude_id: str) -> bool:
        stmt = select(
            exists().where(
                models.Application.licence_number == licence_number,
                models.Application.status.in_(list(statuses)),
                models.Application.id != exclude_id,
            )
        )
        return bool(self.session.scalar(stmt))

    def open_for_licences(self, licence_numbers: Iterable[str], statuses: Iterable[str]) -> dict[str, set[str]]:
        """open_for_licence for several licences in one query: the ids of their applications in
        `statuses`, by licence number (licences with none are absent)."""
        numbers = sorted(set(licence_numbers))
        if not numbers:
            return {}
        found: dict[str, set[str]] = {}
        for application_id, number in self.session.execute(_open_for_licences_stmt(), {
                "numbers": numbers, "statuses": sorted(statuses)}):
            found.setdefault(number, set()).add(application_id)
        return found

    def payment_by_transaction(self, transaction_id: str) -> models.Payment | None:
        return self.session.scalars(_payment_by_transaction_stmt(), {"transaction_id": transaction_id}).one_or_none()

    # Portal sync items, kept in per-application order by seq.
    def next_sync_seq(self, application_id: str) -> int:
        return self.next_sync_seqs([application_id])[application_id]

    def next_sync_seqs(self, application_ids: Iterable[str]) -> dict[str, int]:
        """next_sync_seq for several applications, with one query."""
        ids = list(set(application_ids))
        found = {a: seq for a, seq in self.session.execute(_max_seqs_stmt(), {"ids": ids})} if ids else {}
        return {a: int(found.get(a) or 0) + 1 for a in ids}

    # Sending them, in order and under a lease: store.portal_sync_items.PortalSyncRepository.


class RegisterRepository:
    """The national licence register (NATIONAL-MODEL.md)."""

    def __init__(self, session: Session, append: Callable[[Any], None]) -> None:
        self.session = session
        # The unit of work's `append`: rows and Deferred statements written at its commit.
        self._append = append
        # Locked by lock_licences, outside any savepoint: held until the transaction ends.
        self._locked: set[str] = set()

    def licence(self, number: str) -> models.Licence | None:
        return self.session.get(models.Licence, number)

    def load_licences(self, numbers: Iterable[str]) -> dict[str, models.Licence]:
        """Several licences with their holders and classes, with a query each for all of them (a
        licence alone costs three), by number. While the caller keeps them, `licence()` finds them
        in the session without a query (the session holds its objects only weakly)."""
        ordered = sorted(set(numbers))
        if not ordered:
            return {}
        return {row.number: row for row in self.session.scalars(_licences_stmt(), {"numbers": ordered})}

    def lock_licence(self, number: str) -> bool:
        """Hold the licence's row lock until the transaction ends (PostgreSQL `FOR UPDATE`; SQLite's
        BEGIN IMMEDIATE already holds the database's write lock). False when there is no such
        licence, so nothing to lock.

        Only the key column is selected: the Licence entity eager-joins its holder with an outer
        join, which PostgreSQL refuses to lock."""
        if number in self._locked:
            return True
        stmt = select(models.Licence.number).where(models.Licence.number == number).with_for_update()
        return self.session.scalar(stmt) is not None

    def lock_licences(self, numbers: Iterable[str]) -> None:
        """lock_licence for several licences, in the order of their numbers (so two transactions
        locking common licences cannot deadlock over them); lock_licence then has nothing to do for
        them. Call it outside savepoints: rolling one back would release the locks taken in it."""
        ordered = sorted(set(numbers))
        if ordered:
            self._locked.update(self.session.scalars(_lock_licences_stmt(), {"numbers": ordered}))

    def person_by_citizen_id(self, citizen_id: str) -> models.Person | None:
        stmt = select(models.Person).where(models.Person.citizen_id == citizen_id)
        return self.session.scalars(stmt).one_or_none()

    def add(self, obj: object) -> None:
        self.session.add(obj)

    def card_for_application(self, application_id: str) -> models.Card | None:
        stmt = select(models.Card).where(models.Card.application_id == application_id)
        return self.session.scalars(stmt).one_or_none()

    def permit_for_application(self, application_id: str) -> models.InternationalPermit | None:
        stmt = select(models.InternationalPermit).where(models.InternationalPermit.application_id == application_id)
        return self.session.scalars(stmt).one_or_none()

    def replace_cards(self, licence_number: str) -> None:
        """Mark the licence's valid cards replaced, at commit, before the cards appended after this
        call are written (so a new card appended next stays valid)."""
        self._append(Deferred(_replace_cards_stmt(), {"number": licence_number}))

    def replace_classes(self, licence_number: str, classes: Sequence[models.LicenceClass]) -> None:
        """Replace the licence's classes with `classes` at commit: one DELETE, then the new rows.
        The licence's loaded `classes` collection is left as it was read (its rows are not changed
        through the ORM): the transaction must not read it again."""
        self._append(Deferred(_delete_classes_stmt(), {"number": licence_number}))
        for row in classes:
            self._append(row)

    def append(self, row: models.Base) -> None:
        """Insert `row` at commit, with the unit of work's other appended rows (UnitOfWork.append)."""
        self._append(row)


class OutboxRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def unsent(self, limit: int) -> Sequence[models.OutboxMessage]:
        stmt = (
            select(models.OutboxMessage)
            .where(models.OutboxMessage.sent_at.is_(None))
            .order_by(models.OutboxMessage.id)
            .limit(limit)
        )
        return self.session.scalars(stmt).all()

    def mark_sent(self, ids: Sequence[int], at: dt.datetime) -> None:
        self.session.execute(
            update(models.OutboxMessage).where(models.OutboxMessage.id.in_(ids)).values(sent_at=at)
        )


class ProcessedEventRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def seen(self, event_id: str, handler: str) -> bool:
        return self.session.get(models.ProcessedEvent, (event_id, handler)) is not None

    def seen_many(self, event_ids: Iterable[str], handler: str) -> set[str]:
        """Which of these events this handler has already processed."""
        ids = list(set(event_ids))
        if not ids:
            return set()
        stmt = select(models.ProcessedEvent.event_id).where(
            models.ProcessedEvent.handler == handler, models.ProcessedEvent.event_id.in_(ids))
        return set(self.session.scalars(stmt))


class SandboxRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def population(self, citizen_id: str) -> models.SandboxPopulationRecord | None:
        return self.session.get(models.SandboxPopulationRecord, citizen_id)

    def health_certificate(self, number: str) -> models.SandboxHealthCertificate | None:
        return self.session.get(models.SandboxHealthCertificate, number)

    def merge(self, obj: object) -> None:
        self.session.merge(obj)
