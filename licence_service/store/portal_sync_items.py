"""The DongBoHoSoMC calls owed to the portal (portal_sync_items): finding an application's next call,
leasing it to one sender, and what an operator needs to see."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, Update, and_, bindparam, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import BindParameter

from licence_service.store import models

Item = models.PortalSyncItem


def _is_head() -> ColumnElement[bool]:
    """True for a pending item with no earlier pending item of its application: the only one of an
    application that may be sent now (per-application order, PORTAL.md §2)."""
    earlier = aliased(Item)
    return ~exists().where(earlier.application_id == Item.application_id, earlier.state == "pending",
                           earlier.seq < Item.seq)


def _unclaimed(now: dt.datetime | BindParameter[dt.datetime]) -> ColumnElement[bool]:
    return or_(Item.claimed_until.is_(None), Item.claimed_until <= now)


# The statements the sender runs for every call, made once with bound parameters: building one
# (an aliased entity, the expressions, its cache key) costs more CPU than running it. SQLAlchemy
# memoises a statement's cache key on the statement, so a reused one also skips that.


@functools.cache
def _heads_stmt() -> Select[tuple[models.PortalSyncItem]]:
    # `state || ''`, not `state`: an expression no index answers. Given `state = 'pending'`,
    # SQLite's planner (no statistics) walked ix_portal_sync_items_due over every pending item of
    # every application — the whole backlog, on every call, once under the writer lock — instead of
    # looking up these few applications by the (application_id, seq) index: 1.16 against 0.11 ms
    # for 20 applications with 6,000 items pending (bench/README.md, 2026-12-04).
    pending = Item.state.concat("") == "pending"
    return (select(Item).where(Item.application_id.in_(bindparam("ids", expanding=True)), pending, _is_head())
            .order_by(Item.id))


@functools.cache
def _claim_stmt() -> Update:
    now = bindparam("now")
    return (
        update(Item)
        .where(Item.id.in_(bindparam("item_ids", expanding=True)), Item.state == "pending", _unclaimed(now))
        .values(claim_token=bindparam("token"), claimed_until=bindparam("until"),
                first_attempt_at=func.coalesce(Item.first_attempt_at, now))
        .returning(Item.id)
        .execution_options(synchronize_session=False)
    )


@functools.cache
def _lock_stmt() -> Select[tuple[int]]:
    return select(Item.id).where(Item.id.in_(bindparam("item_ids", expanding=True))).order_by(Item.id).with_for_update()


@functools.cache
def _acknowledged_stmt() -> Update:
    # On the table, not the entity: the ORM's bulk-UPDATE path cost more than the statement.
    table = models.Application.__table__
    return update(table).where(table.c.id == bindparam("application_id")).values(
        portal_acked_status=bindparam("acked_status"))


@functools.cache
def _tokens_stmt() -> Select[tuple[int, str | None]]:
    # In id order, so that two transactions locking overlapping rows (PostgreSQL) cannot deadlock.
    return (select(Item.id, Item.claim_token).where(Item.id.in_(bindparam("ids", expanding=True)))
            .order_by(Item.id).with_for_update())


# The columns a call's outcome sets (record_outcomes); the lease is released with them.
OUTCOME_COLUMNS = ("state", "attempts", "next_attempt_at", "last_error", "sent_at")


@functools.cache
def _outcome_stmt() -> Update:
    table = Item.__table__
    return update(table).where(table.c.id == bindparam("_id")).values(
        claim_token=None, claimed_until=None, **{c: bindparam(f"_{c}") for c in OUTCOME_COLUMNS})


class PortalSyncRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def heads(self, application_ids: Collection[str]) -> Sequence[models.PortalSyncItem]:
        """The oldest pending call of each of these applications that has one (which must be delivered
        before any later one of its application), in item order."""
        return self.session.scalars(_heads_stmt(), {"ids": list(application_ids)}).all()

    def claim(self, item_ids: Collection[int], token: str, *, now: dt.datetime, until: dt.datetime) -> set[int]:
        """Lease pending calls to one sender (under one token); the ids of those it won. One
        conditional UPDATE for all (an UPDATE per call was a third of the sender's statements), so
        of two workers racing for a call exactly one wins it: on PostgreSQL the rows are first locked
        in id order (two senders locking overlapping calls in different orders would deadlock) and
        the loser's UPDATE, once the winner has committed, finds the condition false; on SQLite
        BEGIN IMMEDIATE already serialises them."""
        ids = sorted(set(item_ids))
        if not ids:
            return set()
        if self.session.get_bind().dialect.name != "sqlite":
            self.session.execute(_lock_stmt(), {"item_ids": ids})
        params = {"item_ids": ids, "token": token, "now": now, "until": until}
        return set(self.session.execute(_claim_stmt(), params).scalars())

    def renew(self, item_id: int, token: str, *, until: dt.datetime) -> bool:
        """Extend a lease this sender still holds. The token is enough to know it does, even past the
        lease's end: another sender taking the call over would have replaced it (claim)."""
        stmt = (
            update(Item)
            .where(Item.id == item_id, Item.state == "pending", Item.claim_token == token)
            .values(claimed_until=until)
            .execution_options(synchronize_session=False)
        )
        return self.session.execute(stmt).rowcount == 1

    def acknowledged_many(self, statuses: Sequence[tuple[str, int]]) -> None:
        """The portal has acknowledged these (application id, portal status) pairs: one UPDATE of
        each application, in the order given, sent as one statement; the applications need not be
        loaded."""
        if statuses:
            self.session.connection().execute(
                _acknowledged_stmt(), [{"application_id": a, "acked_status": s} for a, s in statuses])

    def tokens(self, item_ids: Collection[int]) -> dict[int, str | None]:
        """The lease token each of these items holds now, by id; the rows locked in id order
        (PostgreSQL) until the transaction ends."""
        if not item_ids:
            return {}
        return {row.id: row.claim_token for row in self.session.execute(_tokens_stmt(), {"ids": sorted(set(item_ids))})}

    def record_outcomes(self, outcomes: Sequence[tuple[int, dict[str, Any]]]) -> None:
        """Set each item's OUTCOME_COLUMNS to the values given and release its lease: one UPDATE
        statement for all, in the order given (callers give id order, as tokens locks them)."""
        if outcomes:
            self.session.connection().execute(
                _outcome_stmt(), [{"_id": item_id, **{f"_{c}": values[c] for c in OUTCOME_COLUMNS}}
                                  for item_id, values in outcomes])

    def applications_due(self, now: dt.datetime, limit: int = 100) -> Sequence[str]:
        """Applications whose next call is due and not leased, longest waiting first. Only heads count,
        so applications stuck behind a failing call never crowd out the others."""
        stmt = (
            select(Item.application_id)
            .where(Item.state == "pending", Item.next_attempt_at <= now, _unclaimed(now), _is_head())
            .order_by(Item.next_attempt_at)
            .limit(limit)
        )
        return self.session.scalars(stmt).all()

    def for_application(self, application_id: str) -> Sequence[models.PortalSyncItem]:
        stmt = select(Item).where(Item.application_id == application_id).order_by(Item.seq)
        return self.session.scalars(stmt).all()

    def failing(self, limit: int = 1000) -> Sequence[tuple[models.PortalSyncItem, models.Application]]:
        """Calls an operator should look at: given up (failed), or still being retried after at least
        one failed attempt; oldest first."""
        stmt = (
            select(Item, models.Application)
            .join(models.Application, models.Application.id == Item.application_id)
            .where(or_(Item.state == "failed", and_(Item.state == "pending", Item.attempts > 0)))
            .order_by(Item.created_at, Item.application_id, Item.seq)
            .limit(limit)
        )
        return [(item, application) for item, application in self.session.execute(stmt).all()]
