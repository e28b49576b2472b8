"""SQLAlchemy tables: the workflow (applications, history, outbox, ...) and the national register.

One current-state row per application plus an append-only history row per status change (the MOSIP
pattern); the national register keeps every card it ever printed, marking old ones `replaced`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Explicit constraint names so Alembic migrations are identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BigInteger autoincrement primary keys are plain INTEGER on SQLite (rowid) and BIGSERIAL elsewhere.
BigId = BigInteger().with_variant(Integer, "sqlite")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class TZDateTime(TypeDecorator):
    """Aware datetimes everywhere, stored in UTC; SQLite keeps no offset, so re-attach UTC on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored; every time in this service carries an offset")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


# --------------------------------------------------------------------------------------------------
# Workflow


class Application(Base):
    __tablename__ = "applications"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    portal_dossier_id: Mapped[str] = mapped_column(String(50), unique=True)
    body_sha256: Mapped[str] = mapped_column(String(64))
    procedure: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32), index=True)
    portal_status: Mapped[int] = mapped_column(Integer)
    regime: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[dt.datetime] = mapped_column(TZDateTime())
    accepted_at: Mapped[dt.datetime | None] = mapped_column(TZDateTime())
    appointment_date: Mapped[dt.date | None] = mapped_column(Date)
    citizen_id: Mapped[str] = mapped_column(String(12), index=True)
    licence_number: Mapped[str] = mapped_column(String(12), index=True)
    applicant: Mapped[dict[str, Any]] = mapped_column(JSON)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)  # requested classes, health cert, delivery
    # The key of the photo in `photos` (indexed: the photo purge looks applications up by it).
    photo_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    fee_amount: Mapped[int | None] = mapped_column(Integer)
    fee_currency: Mapped[str] = mapped_column(String(3), default="VND")
    fee_paid: Mapped[bool] = mapped_column(Boolean, default=False)
    refusal_reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The national-model result of the conversion stage, written into the register by issuance.
    converted: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    issued_card_serial: Mapped[str | None] = mapped_column(String(16))
    issued_permit_number: Mapped[str | None] = mapped_column(String(16))
    portal_acked_status: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(TZDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(TZDateTime(), default=utcnow, onupdate=utcnow, index=True)

    history: Mapped[list[ApplicationHistory]] = relationship(
        back_populates="application", order_by="ApplicationHistory.id", lazy="selectin"
    )


class ApplicationHistory(Base):
    """Append-only: one row per status change (and per stage outcome worth keeping)."""

    __tablename__ = "application_history"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), index=True)
    status: Mapped[str] = mapped_column(String(32))
    portal_status: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column(TZDateTime(), default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str | None] = mapped_column(String(36))

    application: Mapped[Application] = relationship(back_populates="history")


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), index=True)
    transaction_id: Mapped[str] = mapped_column(String(64), unique=True)
    amount: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    paid_at: Mapped[dt.datetime] = mapped_column(TZDateTime())
    recorded_at: Mapped[dt.datetime] = mapped_column(TZDateTime(), default=utcnow)


class OutboxMessage(Base):
    """Events written in the same transaction as the state change; the relay publishes them."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    routing_key: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(TZDateTime(), default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(TZDateTime())

    __table_args__ = (Index("ix_outbox_unsent", "sent_at", "id"),)


class ProcessedEvent(Base):
    """Which handler has already applied which event: the idempotency record."""

    __tablename__ = "processed_events"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    handler: Mapped[str] = mapped_column(String(32), primary_key=True)
    processed_at: Mapped[dt.datetime] = mapped_column(TZDateTime(), default=utcnow)


class PortalSyncItem(Base):
    """One DongBoHoSoMC call owed to the portal, in per-application order (seq)."""

    __tablename__ = "portal_sync_items"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # No index of its own: the unique (application_id, seq) index leads with it (migration 0006).
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"))
    seq: Mapped[int] = mapped_column(Integer)
    portal_status: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sent | failed | skipped
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(TZDateTime(), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    # The retry horizon (PORTAL.md §2: at least 24 hours) counts from the first attempt, not from
    # creation: an item may wait behind an earlier one of its application for a long time.
    first_attempt_at: Mapped[dt.datetime | None] = mapped_column(TZDateTime())
    # A worker's lease on this (its application's next) call while sending it: no other worker
    # sends it, or anything after it, until the lease is released or has expired.
    claim_token: Mapped[str | None] = mapped_column(String(36))
    claimed_until: Mapped[dt.datetime | None] = mapped_column(TZDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(TZDateTime(), default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(TZDateTime())

    __table_args__ = (
        UniqueConstraint("application_id", "seq", name="uq_portal_sync_items_application_seq"),
        Index("ix_portal_sync_items_due", "state", "next_attempt_at"),
    )


# --------------------------------------------------------------------------------------------------
# National register (NATIONAL-MODEL.md)


# The foreign keys of the tables the legacy import fills (people → licences → classes, cards) are
# checked at the commit. Declared so, not only switched so by `PRAGMA defer_foreign_keys`: SQLite
# decides when it compiles a statement whether a many-row INSERT into a table with an immediate
# foreign key might have to undo its own part, and if so keeps a statement journal — a copy of
# every existing page the statement changes. For the million-row import (issue 5) that journal was
# 2.9 GB of writes to temporary files and 1-2 s of the writer's system time (bench/README.md,
# 2026-12-04, evening). A missing parent still fails the transaction, at its commit.
REGISTER_CHILD_KEY: dict[str, Any] = {"deferrable": True, "initially": "DEFERRED"}


class Person(Base):
    __tablename__ = "people"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    citizen_id: Mapped[str | None] = mapped_column(String(12), unique=True)
    legacy_id_number: Mapped[str | None] = mapped_column(String(9))
    full_name: Mapped[str] = mapped_column(String(200))
    date_of_birth: Mapped[dt.date | None] = mapped_column(Date)
    birth_year: Mapped[int | None] = mapped_column(Integer)  # legacy rows with only a year (flagged)
    sex: Mapped[str] = mapped_column(String(6))
    nationality: Mapped[str] = mapped_column(String(2), default="VN")
    province_code: Mapped[str | None] = mapped_column(String(2))
    commune_code: Mapped[str | None] = mapped_column(String(5))
    residence_detail: Mapped[str | None] = mapped_column(Text)

    # Partial: most people have a citizen ID and no CMND on record, and an index entry for each of
    # their NULLs only cost every insert (the legacy import's, issue 5) for look-ups that never
    # ask for NULL (`legacy_id_number IN (...)` implies NOT NULL, so the index still serves it).
    __table_args__ = (
        Index("ix_people_legacy_id_number", "legacy_id_number",
              sqlite_where=text("legacy_id_number IS NOT NULL"),
              postgresql_where=text("legacy_id_number IS NOT NULL")),
    )


class Licence(Base):
    __tablename__ = "licences"

    number: Mapped[str] = mapped_column(String(12), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", **REGISTER_CHILD_KEY), index=True)
    regime: Mapped[str] = mapped_column(String(16))
    issued_on: Mapped[dt.date | None] = mapped_column(Date)
    issuing_authority: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="valid")
    points: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(TZDateTime(), default=utcnow, onupdate=utcnow)

    holder: Mapped[Person] = relationship(lazy="joined")
    classes: Mapped[list[LicenceClass]] = relationship(
        order_by="LicenceClass.id", lazy="selectin", cascade="all, delete-orphan"
    )
    cards: Mapped[list[Card]] = relationship(order_by="Card.issued_on", lazy="selectin")


class LicenceClass(Base):
    __tablename__ = "licence_classes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # No index of its own: the unique (licence_number, code) index serves look-ups by licence
    # number, and a second index only doubled the cost of every class the legacy import inserts.
    licence_number: Mapped[str] = mapped_column(ForeignKey("licences.number", **REGISTER_CHILD_KEY))
    code: Mapped[str] = mapped_column(String(8))
    passed_on: Mapped[dt.date | None] = mapped_column(Date)
    issued_on: Mapped[dt.date | None] = mapped_column(Date)
    valid_until: Mapped[dt.date | None] = mapped_column(Date)
    restrictions: Mapped[list[str]] = mapped_column(JSON, default=list)

    __table_args__ = (UniqueConstraint("licence_number", "code", name="uq_licence_classes_licence_code"),)


class Card(Base):
    """A printed card (số phôi). `application_id` is unique: an application issues at most one card."""

    __tablename__ = "cards"

    serial: Mapped[str] = mapped_column(String(16), primary_key=True)
    licence_number: Mapped[str] = mapped_column(ForeignKey("licences.number", **REGISTER_CHILD_KEY), index=True)
    issued_on: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="valid")  # valid | replaced
    application_id: Mapped[str | None] = mapped_column(String(36))
    printed: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    # Unique where set (a partial index): the cards of the legacy register have no application,
    # and indexing their NULLs only slowed the import of millions of them.
    __table_args__ = (
        Index("uq_cards_application_id", "application_id", unique=True,
              sqlite_where=text("application_id IS NOT NULL"),
              postgresql_where=text("application_id IS NOT NULL")),
    )


class InternationalPermit(Base):
    __tablename__ = "international_permits"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(16), index=True)
    licence_number: Mapped[str] = mapped_column(ForeignKey("licences.number"), index=True)
    classes: Mapped[list[str]] = mapped_column(JSON)
    issued_on: Mapped[dt.date] = mapped_column(Date)
    valid_until: Mapped[dt.date] = mapped_column(Date)
    application_id: Mapped[str] = mapped_column(String(36), unique=True)


# --------------------------------------------------------------------------------------------------
# Sandbox registers (other ministries' systems, for development, tests and demos)


class SandboxPopulationRecord(Base):
    __tablename__ = "sandbox_population"

    citizen_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    full_name: Mapped[str] = mapped_column(String(200))
    date_of_birth: Mapped[dt.date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(6))


class SandboxHealthCertificate(Base):
    __tablename__ = "sandbox_health_certificates"

    number: Mapped[str] = mapped_column(String(32), primary_key=True)
    citizen_id: Mapped[str] = mapped_column(String(12), index=True)
    issued_on: Mapped[dt.date] = mapped_column(Date)
    facility_code: Mapped[str] = mapped_column(String(32))
    fit_for: Mapped[list[str]] = mapped_column(JSON)


class LicenceHistory(Base):
    """Append-only record of every change to a licence: issuance by this service, legacy imports."""

    __tablename__ = "licence_history"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    licence_number: Mapped[str] = mapped_column(String(12), index=True)
    at: Mapped[dt.datetime] = mapped_column(TZDateTime(), default=utcnow)
    source: Mapped[str] = mapped_column(String(64))  # e.g. "legacy-import:<file>" or "application:<id>"
    change: Mapped[dict[str, Any]] = mapped_column(JSON)


# --------------------------------------------------------------------------------------------------
# Delivery guarantees (licence_service.messaging): parked retries, dead letters, sweeper re-drives.
# The database keeps them rather than the broker, so they survive a broker that loses its data and
# work the same on Redis and RabbitMQ.


class ScheduledRetry(Base):
    """A message whose handler failed with a retryable error, waiting out its backoff; the relay
    publishes it again to its stage's queue when due. The stage's other messages go on meanwhile."""

    __tablename__ = "scheduled_retries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    stage: Mapped[str] = mapped_column(String(32))
    application_id: Mapped[str | None] = mapped_column(String(36), index=True)
    event_id: Mapped[str | None] = mapped_column(String(36))
    body: Mapped[Any] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer)  # failed attempts so far
    due_at: Mapped[dt.datetime] = mapped_column(TZDateTime(), index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(TZDateTime(), default=utcnow)


class DeadLetter(Base):
    """A message given up on (retry limit reached, or a non-retryable error), with its error, for an
    operator to list and replay (`flask dlq`). Replaying keeps the row, marked `replayed_at`."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    stage: Mapped[str] = mapped_column(String(32))
    application_id: Mapped[str | None] = mapped_column(String(36), index=True)
    event_id: Mapped[str | None] = mapped_column(String(36))
    body: Mapped[Any] = mapped_column(JSON)
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(TZDateTime(), default=utcnow)
    replayed_at: Mapped[dt.datetime | None] = mapped_column(TZDateTime())


class StuckRedrive(Base):
    """The sweeper's last re-drive of a stuck application, so it re-drives at most once per grace
    period however often it runs."""

    __tablename__ = "stuck_redrives"

    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(32))
    routing_key: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(36))
    redrives: Mapped[int] = mapped_column(Integer, default=0)
    last_at: Mapped[dt.datetime] = mapped_column(TZDateTime())


# --------------------------------------------------------------------------------------------------
# Personal data kept only as long as needed (decree 13/2023/NĐ-CP; SECURITY.md)


class Photo(Base):
    """A submitted photo, stored once however many applications carry it (content-addressed: the key
    is the SHA-256 of its bytes, which applications.photo_sha256 refers to). `purge_after` is set
    once every application carrying it is settled, and `flask photos purge` deletes it then."""

    __tablename__ = "photos"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(32))
    content: Mapped[bytes] = mapped_column("bytes", LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(TZDateTime(), default=utcnow)
    purge_after: Mapped[dt.datetime | None] = mapped_column(TZDateTime(), index=True)
