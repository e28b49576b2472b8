"""The writing side of the import: licences into the national register, batch by batch.

For each batch of licences (from `pipeline.py`) in one transaction:

* a licence not in the register is created: its person, the licence (regime `vn-2017`, issuing
  authority `SGTVT-01`), its classes and, when the export names one, its card (status valid);
* a licence in the register whose export rows say something new is updated, and the change is
  appended to `licence_history`; one that says nothing new is left alone (re-importing the same file
  changes nothing). A created licence gets no history row: history records changes to what the
  register held, and a row per created licence would add a sixth of the first import's writes;
* a licence with an open application (R-ELIG-5's statuses) is not overwritten but reported, and one
  that this service has renewed since (a card issued by an application, or a `vn-2025` licence) is
  kept: the register is newer than the export;
* one citizen ID (or CMND, or card serial) is never given to two licences: a licence claiming one
  that another licence holds — in the register or earlier in the same import — is rejected.

Fields the export leaves empty (citizen ID, CMND, residence, card serial) never erase what the
register knows, and a class the export no longer lists is kept: the import adds and corrects, it
does not delete.

Speed: inserts go through SQLAlchemy Core statements compiled once and executed with executemany
on the driver (`Connection.exec_driver_sql`), with values already in the form the database stores
(ISO dates, JSON text). Passing them through the column types instead costs several microseconds a
row, three times the database's own work on SQLite. Updates are rarer and use ordinary typed Core
statements. When the register is empty at the start (the first, largest conversion), nothing is
looked up: every licence is new, and only the licences the reader flags as perhaps sharing an
identifier with an earlier one of the run (`Batch.suspects`) are checked. On SQLite the reader then
hands the others over already laid out as flat lists of row values (`pipeline.RunClaims.split`),
which go straight into INSERT statements of a hundred rows each (`insert_new_rows`): the writer
does next to no Python work for them.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import Connection, Table, bindparam, func, insert, null, select, update

from licence_service.domain.model import FINAL_STATUSES
from licence_service.legacy.grouping import (
    BIRTH_YEAR,
    CARD_SERIAL,
    CITIZEN_ID,
    CLASSES,
    LEGACY_ID,
    LINES,
    NUMBER,
    PERSON,
    LicenceRecord,
    PersonData,
    Reject,
    view,
)
from licence_service.store import models

__all__ = ["HELD_REASON", "LEGACY_AUTHORITY", "LEGACY_REGIME", "Counts", "RegisterWriter"]

# NATIONAL-MODEL: the export comes from Hà Nội's Department of Transport, whose last cards were
# issued on 2024-12-31, so every imported licence is a vn-2017 licence issued by SGTVT-01.
LEGACY_AUTHORITY = "SGTVT-01"
LEGACY_REGIME = "vn-2017"
# The report's reason for rows of a licence not updated because an application for it is open.
HELD_REASON = "open_application"

_PEOPLE: Table = models.Person.__table__  # type: ignore[assignment]
_LICENCES: Table = models.Licence.__table__  # type: ignore[assignment]
_CLASSES: Table = models.LicenceClass.__table__  # type: ignore[assignment]
_CARDS: Table = models.Card.__table__  # type: ignore[assignment]
_HISTORY: Table = models.LicenceHistory.__table__  # type: ignore[assignment]
_APPLICATIONS: Table = models.Application.__table__  # type: ignore[assignment]

_IN_CHUNK = 500  # values per IN (...) list: well inside every database's parameter limit

# Person columns compared and written, with the PersonData field each one comes from.
_PERSON_FIELDS = (
    ("citizen_id", "citizen_id"),
    ("legacy_id_number", "legacy_id"),
    ("full_name", "full_name"),
    ("date_of_birth", "date_of_birth"),
    ("birth_year", "birth_year"),
    ("sex", "sex"),
    ("nationality", "nationality"),
    ("province_code", "province_code"),
    ("residence_detail", "residence"),
)
# Empty in the export means "not known here", not "none": these never erase a stored value.
_KEEP_WHEN_EMPTY = frozenset({"citizen_id", "legacy_id_number", "province_code", "residence_detail"})
_DATE_COLUMNS = frozenset({"date_of_birth", "issued_on", "passed_on", "valid_until"})

_CLAIM_REASONS = {
    "citizen_id": ("citizen_id_holds_other_licence", "citizen ID {value} already holds licence {other}"),
    "legacy_id": ("legacy_id_holds_other_licence", "CMND {value} already holds licence {other}"),
    "card_serial": ("card_serial_of_other_licence", "card {value} belongs to licence {other}"),
}
# The holder of a citizen ID that is on record for a person without a licence.
_NO_LICENCE = ""


@dataclass
class Counts:
    licences_created: int = 0
    licences_updated: int = 0
    licences_unchanged: int = 0
    licences_held: int = 0  # an open application: not overwritten, reported
    licences_kept_renewed: int = 0  # renewed by this service since the export: kept
    classes_created: int = 0
    classes_updated: int = 0
    classes_unchanged: int = 0
    classes_kept: int = 0  # in the register, no longer in the export: kept
    rows_imported: int = 0  # rows of licences created, updated or unchanged
    year_only_birth_dates: int = 0
    cmnd_only_people: int = 0
    held_licences: list[str] = field(default_factory=list)


class _Existing(NamedTuple):
    person_id: int
    person: dict[str, Any]  # people columns, dates as ISO strings
    issued_on: str | None
    status: str
    points: int | None
    classes: dict[str, tuple[int, str | None, str | None, str | None]]  # code → id, passed, issued, until
    valid_serials: tuple[str, ...]
    serials: frozenset[str]
    renewed_by_service: bool


class _Update(NamedTuple):
    record: LicenceRecord
    existing: _Existing
    person: dict[str, Any]  # changed people columns → new value
    licence: dict[str, Any]  # changed licences columns → new value
    added: list[Any]  # ClassData
    changed: dict[str, dict[str, Any]]  # code → column → new value
    new_serial: str | None
    change: dict[str, Any]  # the licence_history entry


def _iso(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


def _typed(column: str, value: Any) -> Any:
    return dt.date.fromisoformat(value) if column in _DATE_COLUMNS and value is not None else value


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(values), _IN_CHUNK):
        yield values[i : i + _IN_CHUNK]


# Rows per INSERT statement where the driver takes positional "?" parameters (SQLite): a statement
# of many VALUES rows, executed many times, instead of one per row. For the million-row benchmark
# (bench/README.md) that took SQLite's inserts into licences, classes and cards from 8.3 to 7.1 s
# of CPU: the driver's per-execution work (binding, stepping, resetting, the GIL let go and taken
# back around each step) is paid once per hundred rows. People rows, grouped under a unique index
# with the default ABORT, were slower; as INSERT OR FAIL they are faster too (`_flat_statements`).
_ROWS_PER_STATEMENT = 100
_MAX_PARAMETERS = 999  # SQLite's historical default limit on one statement's parameters


class _BulkInsert:
    """One Core INSERT compiled for the connection's dialect, run with the driver's executemany.

    ``grouped``: with positional parameters, rows go ``_ROWS_PER_STATEMENT`` (at most
    ``_MAX_PARAMETERS`` parameters) to a statement; the rest one to a statement, as ever.
    """

    def __init__(self, conn: Connection, table: Table, columns: tuple[str, ...], *, grouped: bool = False) -> None:
        compiled = insert(table).compile(dialect=conn.dialect, column_keys=list(columns))
        self.sql = compiled.string
        self._grouped_sql: str | None = None
        self._flat: tuple[str, int, str] | None = None
        order = compiled.positiontup
        if order is None:  # named parameters (psycopg's pyformat)
            self._convert = lambda rows: [dict(zip(columns, row, strict=True)) for row in rows]
        elif list(order) == list(columns):
            self._convert = lambda rows: rows
            head, values, one = self.sql.rpartition(" VALUES ")
            single_row = f"({', '.join('?' * len(columns))})"
            if grouped and values and conn.dialect.paramstyle == "qmark" and one == single_row:
                self._grouped_sql, self._per_statement, _ = _flat_statements(f"{head} VALUES", one, len(columns))
                or_fail = insert(table).prefix_with("OR FAIL", dialect="sqlite")
                or_fail_head = or_fail.compile(dialect=conn.dialect, column_keys=list(columns)).string.rpartition(
                    " VALUES ")[0]
                self._flat = _flat_statements(f"{or_fail_head} VALUES", one, len(columns))
        else:
            index = [columns.index(name) for name in order]
            self._convert = lambda rows: [tuple(row[i] for i in index) for row in rows]

    def flat(self, conn: Connection, values: list[Any], width: int) -> None:
        """Rows given as one flat list of values, ``width`` to a row (see `pipeline.RunClaims.split`),
        with ``INSERT OR FAIL`` (see `_flat_statements`); SQLite only, for a ``grouped`` insert."""
        if self._flat is None:
            raise TypeError("flat rows go only to a grouped insert on SQLite")
        _execute_flat(conn, *self._flat, values, width)

    def __call__(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if self._grouped_sql is not None:
            # (Grouped only when the rows' order is the statement's: no conversion to make.)
            _execute_flat(conn, self._grouped_sql, self._per_statement, self.sql,
                          list(itertools.chain.from_iterable(rows)), len(rows[0]))
        else:
            conn.exec_driver_sql(self.sql, self._convert(rows))


def _flat_statements(head: str, row: str, width: int) -> tuple[str, int, str]:
    """``head`` (``INSERT … VALUES``) with the values ``row`` of ``width`` parameters as many times
    as fit (`_ROWS_PER_STATEMENT`, `_MAX_PARAMETERS`), the rows that takes, and ``head`` with one.

    The flat rows' inserts (`insert_new_rows`) are ``INSERT OR FAIL``. Why: a statement that
    writes many rows and may stop half-way on a constraint (ABORT, the default) makes SQLite keep a
    statement journal — a copy of every page it changes — to undo its own part; FAIL stops without
    undoing, so no journal. Nothing is lost by it: a failed statement fails the import, whose open
    transaction is rolled back whole. (An immediate foreign key needs the journal too, whatever
    `PRAGMA defer_foreign_keys` says, so the register's keys are declared deferred:
    `models.REGISTER_CHILD_KEY`.) With the million-row benchmark's rows, people go in 100 to a
    statement too (they did not, as the journal ate the gain) and the writer's CPU fell by about
    7 % (bench/README.md, 2026-12-04).
    """
    per_statement = min(_ROWS_PER_STATEMENT, _MAX_PARAMETERS // width)
    return f"{head} {', '.join([row] * per_statement)}", per_statement, f"{head} {row}"


def _execute_flat(conn: Connection, grouped_sql: str | None, per_statement: int, single_sql: str,
                  values: list[Any], width: int) -> None:
    """Insert rows given as a flat list of values, ``width`` to a row: as many whole statements of
    ``per_statement`` rows as there are, then the rest one row to a statement."""
    rows = len(values) // width
    whole = rows - rows % per_statement if grouped_sql is not None and per_statement else 0
    if whole:
        # zip over one iterator, taken as many at a time as a statement has parameters, cuts the
        # flat run of values into each statement's parameters at C speed.
        grouped = iter(values[: whole * width])
        conn.exec_driver_sql(grouped_sql, list(zip(*[grouped] * (per_statement * width), strict=False)))
    if whole < rows:
        rest = iter(values[whole * width :])
        conn.exec_driver_sql(single_sql, list(zip(*[rest] * width, strict=False)))


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _stored(conn: Connection, column: Any, value: Any) -> Any:
    """``value`` as the column's type would bind it (for the few typed constants, e.g. now)."""
    process = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return process(value) if process is not None else value


class RegisterWriter:
    """Applies batches of `LicenceRecord`s to the register over one connection."""

    def __init__(
        self,
        conn: Connection,
        *,
        source: str,
        dry_run: bool = False,
        now: dt.datetime | None = None,
    ) -> None:
        self.conn = conn
        self.dry_run = dry_run
        self.source = source[:64]
        self.counts = Counts()
        self.now = now or dt.datetime.now(dt.UTC)
        self._now_stored = _stored(conn, _LICENCES.c.updated_at, self.now)
        self._dialect = conn.dialect.name
        # A dry run writes nothing, so the identifiers its licences claim are kept aside, on disk
        # (memory stays flat), for the checks of later licences.
        self._ledger = _DryRunLedger() if dry_run else None
        with conn.begin():
            self._register_was_empty = all(
                conn.execute(select(1).select_from(t).limit(1)).first() is None
                for t in (_PEOPLE, _LICENCES, _CARDS)
            )
        self._people = _BulkInsert(conn, _PEOPLE, (
            "id", "citizen_id", "legacy_id_number", "full_name", "date_of_birth", "birth_year", "sex",
            "nationality", "province_code", "residence_detail",
        ))
        self._licences = _BulkInsert(conn, _LICENCES, (
            "number", "person_id", "regime", "issued_on", "issuing_authority", "status", "points", "updated_at",
        ), grouped=True)
        self._classes = _BulkInsert(conn, _CLASSES, (
            "licence_number", "code", "passed_on", "issued_on", "valid_until", "restrictions",
        ), grouped=True)
        self._cards = _BulkInsert(conn, _CARDS, ("serial", "licence_number", "issued_on", "status"), grouped=True)
        # The rows layout (`pipeline.RunClaims.split`): on SQLite, into a register that held
        # nothing before the run, in a real run. People go in without ids, so SQLite numbers them
        # on from the largest (it holds the write lock): the k-th of a batch gets that largest + k,
        # which is the person id its licence row is given, in SQL.
        self.takes_rows = self._dialect == "sqlite" and self._register_was_empty and not dry_run
        if self.takes_rows:
            columns = [name for name, _ in _PERSON_FIELDS]
            self._people_flat = _flat_statements(f"INSERT OR FAIL INTO people ({', '.join(columns)}) VALUES",
                                                 f"({', '.join('?' * len(columns))})", len(columns))
            self._licence_head = ("INSERT OR FAIL INTO licences (number, person_id, regime, issued_on, "
                                  "issuing_authority, status, points, updated_at) VALUES")
            self._licence_values = (f"(?, ? + {{base}}, {_sql_literal(LEGACY_REGIME)}, ?, "
                                    f"{_sql_literal(LEGACY_AUTHORITY)}, ?, ?, {_sql_literal(str(self._now_stored))})")
            self._cards_flat = _flat_statements(
                "INSERT OR FAIL INTO cards (serial, licence_number, issued_on, status) VALUES",
                f"(?, ?, ?, {_sql_literal('valid')})", 3)
        self._history = _BulkInsert(conn, _HISTORY, ("licence_number", "at", "source", "change"))

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()

    # -- one batch -------------------------------------------------------------------------------

    def apply(self, records: Sequence[tuple[Any, ...]], suspects: Sequence[int] | None = None) -> list[Reject]:
        """Write one batch of records (`LicenceRecord` layout) in the connection's open
        transaction (the caller decides when to commit); return the rows it rejects or holds
        back, with their reasons.

        ``suspects``: the positions of the records that may claim an identifier an earlier record
        of the run claimed (`pipeline.RunClaims`); None: any may.
        """
        out: list[Reject] = []
        if not records:
            return out
        if self._register_was_empty and suspects is not None:
            # Nothing was on record before this run: every licence is new, and its identifiers can
            # only clash with what the run itself wrote, which the reader has flagged. The rest go
            # in unchecked, first, so that the checks of the flagged ones see them. (Should the
            # service register a person with one of their citizen IDs meanwhile, the unique
            # constraint stops the batch and the import; run again, it checks everything.)
            if not suspects:
                self._create(records, {})
                return out
            flagged = set(suspects)
            self._create([r for i, r in enumerate(records) if i not in flagged], {})
            new, _, reuse = self._check_claims([records[i] for i in suspects], [], out)
            self._create(new, reuse)
            return out
        existing = self._load_existing([r[NUMBER] for r in records])
        new: list[tuple[Any, ...]] = []
        updates: list[_Update] = []
        for record in records:
            found = existing.get(record[NUMBER])
            if found is None:
                new.append(record)
            elif found.renewed_by_service:
                self.counts.licences_kept_renewed += 1
            else:
                named = view(record)
                plan = _plan_update(named, found)
                if plan is None:
                    self._count_imported([record], unchanged=len(named.classes), kept=_kept(named, found))
                    self.counts.licences_unchanged += 1
                else:
                    updates.append(plan)
        updates = self._hold_open_applications(updates, out)
        new, updates, reuse = self._check_claims(new, updates, out)
        self._create(new, reuse)
        if not self.dry_run:
            self._write_updates(updates)
        for plan in updates:
            self._count_imported(
                [plan.record],
                created=len(plan.added),
                updated=len(plan.changed),
                unchanged=len(plan.record.classes) - len(plan.added) - len(plan.changed),
                kept=_kept(plan.record, plan.existing),
            )
            self.counts.licences_updated += 1
        return out

    def insert_new_rows(self, rows: tuple[Any, ...]) -> None:
        """Insert licences laid out as `pipeline.RunClaims.split` (``takes_rows`` must be true): a
        batch's licences that no earlier licence of the run may have claimed an identifier of, in
        the connection's open transaction, before the batch's flagged ones (`apply`)."""
        people, licences, classes, cards, (n, n_classes, n_rows, year_only, cmnd_only) = rows
        if n:
            conn = self.conn
            base = conn.execute(select(func.max(_PEOPLE.c.id))).scalar_one() or 0
            _execute_flat(conn, *self._people_flat, people, len(_PERSON_FIELDS))
            if conn.execute(select(func.max(_PEOPLE.c.id))).scalar_one() != base + n:
                raise RuntimeError("people ids were not numbered on from the largest: the licences would not match")
            _execute_flat(conn, *_flat_statements(self._licence_head, self._licence_values.format(base=int(base)), 5),
                          licences, 5)
            self._classes.flat(conn, classes, 6)
            _execute_flat(conn, *self._cards_flat, cards, 3)
        c = self.counts
        c.licences_created += n
        c.classes_created += n_classes
        c.rows_imported += n_rows
        c.year_only_birth_dates += year_only
        c.cmnd_only_people += cmnd_only

    def _create(self, new: list[tuple[Any, ...]], reuse: dict[str, int]) -> None:
        if self._ledger is not None:
            claims: dict[str, list[tuple[str, str]]] = {kind: [] for kind in _CLAIM_REASONS}
            for r in new:
                _add_claims(claims, r[NUMBER], r[PERSON][CITIZEN_ID], r[PERSON][LEGACY_ID], r[CARD_SERIAL])
            self._ledger.add([(kind, v, n) for kind, pairs in claims.items() for v, n in pairs])
        else:
            self._insert_new(new, reuse)
        self._count_imported(new, created=sum(len(r[CLASSES]) for r in new))
        self.counts.licences_created += len(new)

    def _count_imported(self, records: Sequence[tuple[Any, ...]], *, created: int = 0, updated: int = 0,
                        unchanged: int = 0, kept: int = 0) -> None:
        c = self.counts
        c.classes_created += created
        c.classes_updated += updated
        c.classes_unchanged += unchanged
        c.classes_kept += kept
        c.rows_imported += sum(len(r[LINES]) for r in records)
        c.year_only_birth_dates += sum(1 for r in records if r[PERSON][BIRTH_YEAR] is not None)
        c.cmnd_only_people += sum(1 for r in records if r[PERSON][CITIZEN_ID] is None)

    # -- reading the register ----------------------------------------------------------------------

    def _load_existing(self, numbers: list[str]) -> dict[str, _Existing]:
        conn = self.conn
        heads: dict[str, tuple[Any, ...]] = {}
        person_columns = [_PEOPLE.c[name] for name, _ in _PERSON_FIELDS]
        for chunk in _chunks(numbers):
            rows = conn.execute(
                select(_LICENCES.c.number, _LICENCES.c.person_id, _LICENCES.c.regime, _LICENCES.c.issued_on,
                       _LICENCES.c.status, _LICENCES.c.points, *person_columns)
                .select_from(_LICENCES.join(_PEOPLE, _PEOPLE.c.id == _LICENCES.c.person_id))
                .where(_LICENCES.c.number.in_(chunk))
            )
            for row in rows:
                heads[row[0]] = tuple(row)
        if not heads:
            return {}
        found = list(heads)
        classes: dict[str, dict[str, tuple[int, str | None, str | None, str | None]]] = {n: {} for n in found}
        cards: dict[str, list[tuple[str, str, str | None]]] = {n: [] for n in found}
        for chunk in _chunks(found):
            for number, class_id, code, passed, issued, until in conn.execute(
                select(_CLASSES.c.licence_number, _CLASSES.c.id, _CLASSES.c.code, _CLASSES.c.passed_on,
                       _CLASSES.c.issued_on, _CLASSES.c.valid_until).where(_CLASSES.c.licence_number.in_(chunk))
            ):
                classes[number][code] = (class_id, _iso(passed), _iso(issued), _iso(until))
            for number, serial, status, application_id in conn.execute(
                select(_CARDS.c.licence_number, _CARDS.c.serial, _CARDS.c.status, _CARDS.c.application_id)
                .where(_CARDS.c.licence_number.in_(chunk))
            ):
                cards[number].append((serial, status, application_id))
        out = {}
        for number, head in heads.items():
            _, person_id, regime, issued_on, status, points, *person_values = head
            person = {
                name: _iso(value) if name in _DATE_COLUMNS else value
                for (name, _), value in zip(_PERSON_FIELDS, person_values, strict=True)
            }
            out[number] = _Existing(
                person_id=person_id,
                person=person,
                issued_on=_iso(issued_on),
                status=status,
                points=points,
                classes=classes[number],
                valid_serials=tuple(sorted(s for s, st, _ in cards[number] if st == "valid")),
                serials=frozenset(s for s, _, _ in cards[number]),
                # A card issued through an application, or a licence no longer of the legacy
                # regime, means this service renewed it after the export was taken.
                renewed_by_service=regime != LEGACY_REGIME or any(a is not None for _, _, a in cards[number]),
            )
        return out

    def _hold_open_applications(self, updates: list[_Update], out: list[Reject]) -> list[_Update]:
        """R-ELIG-5: a licence with an open application is not overwritten under it; reported."""
        if not updates:
            return updates
        open_numbers: set[str] = set()
        for chunk in _chunks([u.record.number for u in updates]):
            open_numbers.update(self.conn.scalars(
                select(_APPLICATIONS.c.licence_number).where(
                    _APPLICATIONS.c.licence_number.in_(chunk),
                    _APPLICATIONS.c.status.not_in(sorted(FINAL_STATUSES)),
                )
            ))
        kept = []
        for plan in updates:
            if plan.record.number not in open_numbers:
                kept.append(plan)
                continue
            self.counts.licences_held += 1
            if len(self.counts.held_licences) < 20:
                self.counts.held_licences.append(plan.record.number)
            reason = ((HELD_REASON, "an application for this licence is open: not updated, import again later"),)
            out.extend(Reject(line, plan.record.number, reason) for line in plan.record.lines)
        return kept

    # -- one identifier, one licence -----------------------------------------------------------------

    def _check_claims(
        self, new: list[tuple[Any, ...]], updates: list[_Update], out: list[Reject]
    ) -> tuple[list[tuple[Any, ...]], list[_Update], dict[str, int]]:
        """Reject licences claiming a citizen ID, CMND or card serial another licence holds.

        Within a batch the first claimant (batches are in licence-number order) keeps the value.
        Returns the surviving new licences and updates, and the people on record without a licence
        whose citizen ID a new licence claims (their row is reused: licence number → person id).
        """
        claims: dict[str, list[tuple[str, str]]] = {kind: [] for kind in _CLAIM_REASONS}
        for r in new:
            _add_claims(claims, r[NUMBER], r[PERSON][CITIZEN_ID], r[PERSON][LEGACY_ID], r[CARD_SERIAL])
        for u in updates:
            _add_claims(claims, u.record.number, u.person.get("citizen_id"), u.person.get("legacy_id_number"),
                        u.new_serial)
        refused: dict[str, tuple[str, str]] = {}
        reuse: dict[str, int] = {}
        updating = {u.record.number for u in updates}
        for kind, pairs in claims.items():
            code, detail = _CLAIM_REASONS[kind]
            first: dict[str, str] = {}
            unique: list[tuple[str, str]] = []
            for value, number in pairs:
                other = first.setdefault(value, number)
                if other != number:
                    refused.setdefault(number, (code, detail.format(value=value, other=other)))
                else:
                    unique.append((value, number))
            if not unique:
                continue
            holders = self._holders(kind, unique)
            for value, number in unique:
                others = [h for h in holders.get(value, ()) if h[0] != number]
                if not others:
                    continue
                other, person_id = others[0]
                if other == _NO_LICENCE and number not in updating and person_id is not None:
                    reuse[number] = person_id  # on record without a licence: the person is theirs
                elif other == _NO_LICENCE:
                    refused.setdefault(number, (code, f"citizen ID {value} is on record for another person"))
                else:
                    refused.setdefault(number, (code, detail.format(value=value, other=other)))
        if refused:
            for record in [*new, *(u.record for u in updates)]:
                number = record[NUMBER]
                if number in refused:
                    out.extend(Reject(line, number, (refused[number],)) for line in record[LINES])
            new = [r for r in new if r[NUMBER] not in refused]
            updates = [u for u in updates if u.record.number not in refused]
        if self._ledger is not None:
            # New licences enter the ledger when "created" (_create); updated ones here.
            changed = {u.record.number for u in updates}
            self._ledger.add([(k, v, n) for k, pairs in claims.items() for v, n in pairs
                              if n in changed and n not in refused])
        return new, updates, reuse

    def _holders(self, kind: str, claims: list[tuple[str, str]]) -> dict[str, list[tuple[str, int | None]]]:
        """Who already holds each value: [(licence number, or _NO_LICENCE, person id)].

        In a real run the register holds this run's claims too. A dry run wrote nothing, so it asks
        its ledger about them, and the register only about what was there before the run.
        """
        values = sorted({v for v, _ in claims})
        holders: dict[str, list[tuple[str, int | None]]] = {}
        if self._ledger is not None:
            for value, number in self._ledger.holders(kind, values):
                holders.setdefault(value, []).append((number, None))
        if self._ledger is None or not self._register_was_empty:
            for chunk in _chunks(values):
                for value, number, person_id in self.conn.execute(_holder_query(kind, chunk)):
                    holders.setdefault(value, []).append((number or _NO_LICENCE, person_id))
        return holders

    # -- writing -----------------------------------------------------------------------------------

    def _new_person_ids(self, n: int) -> list[int]:
        if n == 0:
            return []
        if self._dialect == "postgresql":
            # Ids from the column's own sequence, so the application's inserts never collide.
            sequence = func.pg_get_serial_sequence(_PEOPLE.name, "id")
            return list(self.conn.scalars(select(func.nextval(sequence)).select_from(func.generate_series(1, n))))
        # SQLite: the batch's transaction holds the write lock (BEGIN IMMEDIATE), so no one else
        # can take these ids between the read and the insert.
        start = self.conn.execute(select(func.max(_PEOPLE.c.id))).scalar_one() or 0
        return list(range(start + 1, start + 1 + n))

    def _insert_new(self, new: list[tuple[Any, ...]], reuse: dict[str, int]) -> None:
        if not new:
            return
        now = self._now_stored
        ids = iter(self._new_person_ids(sum(1 for r in new if r[NUMBER] not in reuse)))
        people, licences, classes, cards = [], [], [], []
        reused_people: list[tuple[int, PersonData]] = []
        # Records are laid out as the rows they become (see LicenceRecord), so this loop, run for
        # every licence of the first import, mostly just hands tuples over.
        for number, _lines, person, issued_on, status, points, serial, licence_classes, *_ in new:
            person_id = reuse.get(number)
            if person_id is None:
                person_id = next(ids)
                people.append((person_id, *person))
            else:
                reused_people.append((person_id, PersonData._make(person)))
            licences.append((number, person_id, LEGACY_REGIME, issued_on, LEGACY_AUTHORITY, status, points, now))
            classes.extend(licence_classes)
            if serial is not None:
                cards.append((serial, number, issued_on, "valid"))
        conn = self.conn
        self._people(conn, people)
        for person_id, p in reused_people:
            conn.execute(update(_PEOPLE).where(_PEOPLE.c.id == person_id).values(
                {name: _typed(name, getattr(p, attr)) for name, attr in _PERSON_FIELDS
                 if getattr(p, attr) is not None or name not in _KEEP_WHEN_EMPTY}
            ))
        self._licences(conn, licences)
        self._classes(conn, classes)
        self._cards(conn, cards)

    def _write_updates(self, updates: list[_Update]) -> None:
        if not updates:
            return
        conn = self.conn
        _update_rows(conn, _PEOPLE, _PEOPLE.c.id, [(u.existing.person_id, u.person) for u in updates if u.person])
        _update_rows(conn, _LICENCES, _LICENCES.c.number,
                     [(u.record.number, {**u.licence, "updated_at": self.now}) for u in updates])
        _update_rows(conn, _CLASSES, _CLASSES.c.id, [
            (u.existing.classes[code][0], columns) for u in updates for code, columns in u.changed.items()
        ])
        self._classes(conn, [tuple(c) for u in updates for c in u.added])
        for u in updates:
            if u.new_serial is None:
                continue
            # The legacy system issued a new card: the one on record is replaced, never deleted.
            conn.execute(update(_CARDS).where(
                _CARDS.c.licence_number == u.record.number, _CARDS.c.status == "valid", _CARDS.c.serial != u.new_serial,
            ).values(status="replaced"))
            if u.new_serial in u.existing.serials:
                conn.execute(update(_CARDS).where(_CARDS.c.serial == u.new_serial).values(status="valid"))
            else:
                self._cards(conn, [(u.new_serial, u.record.number, u.record.issued_on, "valid")])
        self._history(conn, [
            (u.record.number, self._now_stored, self.source, json.dumps(u.change)) for u in updates
        ])


def _holder_query(kind: str, values: Sequence[str]) -> Any:
    if kind == "card_serial":
        return select(_CARDS.c.serial, _CARDS.c.licence_number, null()).where(_CARDS.c.serial.in_(values))
    if kind == "legacy_id":
        # A CMND identifies a person: it conflicts only when that person holds another licence.
        return select(_PEOPLE.c.legacy_id_number, _LICENCES.c.number, _PEOPLE.c.id)\
            .select_from(_PEOPLE.join(_LICENCES, _LICENCES.c.person_id == _PEOPLE.c.id))\
            .where(_PEOPLE.c.legacy_id_number.in_(values))
    # A citizen ID on record for a person without a licence (outer join) is reused, not refused.
    return select(_PEOPLE.c.citizen_id, _LICENCES.c.number, _PEOPLE.c.id)\
        .select_from(_PEOPLE.outerjoin(_LICENCES, _LICENCES.c.person_id == _PEOPLE.c.id))\
        .where(_PEOPLE.c.citizen_id.in_(values))


def _add_claims(
    claims: dict[str, list[tuple[str, str]]], number: str, citizen_id: str | None, legacy_id: str | None,
    serial: str | None,
) -> None:
    if citizen_id:
        claims["citizen_id"].append((citizen_id, number))
    if legacy_id:
        claims["legacy_id"].append((legacy_id, number))
    if serial:
        claims["card_serial"].append((serial, number))


def _kept(record: LicenceRecord, existing: _Existing) -> int:
    codes = {c.code for c in record.classes}
    return sum(1 for code in existing.classes if code not in codes)


def _plan_update(record: LicenceRecord, existing: _Existing) -> _Update | None:
    """What an export's licence changes in the register's licence; None when nothing."""
    target = {name: getattr(record.person, attr) for name, attr in _PERSON_FIELDS}
    stored = existing.person
    for name in _KEEP_WHEN_EMPTY:
        if target[name] is None:
            target[name] = stored[name]
    if target["date_of_birth"] is None and stored["date_of_birth"] is not None \
            and int(stored["date_of_birth"][:4]) == target["birth_year"]:
        # A year-only date that agrees with the full date on record says less, not something else.
        target["date_of_birth"], target["birth_year"] = stored["date_of_birth"], None
    person = {name: value for name, value in target.items() if value != stored[name]}
    licence = {
        name: value
        for name, value, old in (
            ("issued_on", record.issued_on, existing.issued_on),
            ("status", record.status, existing.status),
            ("points", record.points, existing.points),
        )
        if value != old
    }
    added = [c for c in record.classes if c.code not in existing.classes]
    changed: dict[str, dict[str, Any]] = {}
    for c in record.classes:
        if c.code in existing.classes:
            _, passed, issued, until = existing.classes[c.code]
            diff = {
                name: new
                for name, new, old in (("passed_on", c.passed_on, passed), ("issued_on", c.issued_on, issued),
                                       ("valid_until", c.valid_until, until))
                if new != old
            }
            if diff:
                changed[c.code] = diff
    new_serial = (
        record.card_serial
        if record.card_serial is not None and record.card_serial not in existing.valid_serials
        else None
    )
    if not (person or licence or added or changed or new_serial):
        return None
    change: dict[str, Any] = {"action": "updated", "lines": list(record.lines)}
    if person:
        change["person"] = {name: [stored[name], value] for name, value in person.items()}
    if licence:
        old = {"issued_on": existing.issued_on, "status": existing.status, "points": existing.points}
        change["licence"] = {name: [old[name], value] for name, value in licence.items()}
    if added:
        change["classes_added"] = {c.code: {"passed_on": c.passed_on, "issued_on": c.issued_on,
                                            "valid_until": c.valid_until} for c in added}
    if changed:
        change["classes_changed"] = {
            code: {name: [existing.classes[code][1 + ("passed_on", "issued_on", "valid_until").index(name)], new]
                   for name, new in diff.items()}
            for code, diff in changed.items()
        }
    if new_serial:
        change["card"] = {"replaced": list(existing.valid_serials), "new": new_serial}
    return _Update(record, existing, person, licence, added, changed, new_serial, change)


def _update_rows(conn: Connection, table: Table, key: Any, rows: list[tuple[Any, dict[str, Any]]]) -> None:
    """UPDATE many rows by key, one executemany per set of changed columns."""
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for key_value, values in rows:
        columns = tuple(sorted(values))
        params = {f"_{c}": _typed(c, values[c]) for c in columns}
        params["_key"] = key_value
        by_columns.setdefault(columns, []).append(params)
    for columns, params in by_columns.items():
        stmt = update(table).where(key == bindparam("_key")).values({c: bindparam(f"_{c}") for c in columns})
        conn.execute(stmt, params)


class _DryRunLedger:
    """A dry run writes nothing, so what it has "claimed" is kept here, on disk, exactly."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="legacy-dry-run-")
        self._db = sqlite3.connect(Path(self._tmp.name) / "claims.db", isolation_level=None)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE claims (kind TEXT, value TEXT, number TEXT, PRIMARY KEY (kind, value))")

    def add(self, claims: list[tuple[str, str, str]]) -> None:
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR IGNORE INTO claims VALUES (?, ?, ?)", claims)
        self._db.execute("COMMIT")

    def holders(self, kind: str, values: list[str]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for chunk in _chunks(values):
            marks = ", ".join("?" * len(chunk))
            sql = f"SELECT value, number FROM claims WHERE kind = ? AND value IN ({marks})"
            out.extend(self._db.execute(sql, (kind, *chunk)))
        return out

    def close(self) -> None:
        self._db.close()
        self._tmp.cleanup()
