"""A new application's rows inserted with their values made ready for the driver before the
transaction (store.repositories.prepare_insert, SQLite) are stored exactly as SQLAlchemy's Core
INSERT stores them: every column type converted alike, the defaults filled alike."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from licence_service.services.applications import _new_application, body_fingerprint
from licence_service.store import models
from licence_service.store.database import make_engine, make_session_factory
from licence_service.store.migrate import upgrade
from licence_service.store.repositories import column_values, prepare_insert
from licence_service.store.unit_of_work import UnitOfWork
from schemas.applications import ApplicationRequestSchema
from tests.support.data import application_body
from tests.support.statements import Statements

BODY = application_body(portal_dossier_id="G01.99-20261203-0000001")
AT = dt.datetime(2026, 12, 3, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=7)))
# Columns whose default is the clock at insert time: compared by their stored form, not value.
CLOCK = {("portal_sync_items", "next_attempt_at"), ("portal_sync_items", "created_at"),
         ("outbox", "created_at")}
STORED_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")


def rows() -> list[list[models.Base]]:
    """A new application's rows as a submit makes them (fresh objects each call, equal values)."""
    application = _new_application(ApplicationRequestSchema().load(BODY), body_fingerprint(BODY))
    application.id = APPLICATION_ID
    application.created_at = application.updated_at = AT
    application.status, application.portal_status = "received", 1
    return [[application],
            [models.ApplicationHistory(application_id=application.id, status="received", portal_status=1, at=AT,
                                       note="submitted via portal", actor="portal")],
            [models.PortalSyncItem(application_id=application.id, seq=1, portal_status=1)],
            [models.OutboxMessage(event_id=f"e-{n}", routing_key="application.received",
                                  payload={"event_id": f"e-{n}", "data": {"tên": "Nguyễn"}, "n": n}) for n in (1, 2)]]


def core_insert(session: Session, rows: Sequence[models.Base]) -> None:
    """The reference: SQLAlchemy Core's INSERT of the rows' column values."""
    session.connection().execute(sa.insert(type(rows[0]).__table__), [column_values(row) for row in rows])


def appended_rows() -> list[list[models.Base]]:
    """What the stages and payments append to their unit of work, of every other table."""
    d = dt.date(2026, 12, 3)
    return [[models.ProcessedEvent(event_id=f"e-{n}", handler="issuance") for n in (1, 2)],
            [models.Payment(application_id=APPLICATION_ID, transaction_id="PAYGOV-1", amount=135000, currency="VND",
                            paid_at=AT)],
            [models.Card(serial="000000000001", licence_number="AB0000000001", issued_on=d,
                         application_id=APPLICATION_ID, printed={"holder": {"full_name": "NGUYỄN VĂN A"}})],
            [models.LicenceClass(licence_number="AB0000000001", code="B", passed_on=None, issued_on=d,
                                 valid_until=dt.date(2036, 12, 3), restrictions=["01"]),
             models.LicenceClass(licence_number="AB0000000001", code="A1", passed_on=dt.date(2010, 1, 2), issued_on=d,
                                 valid_until=None, restrictions=[])],
            [models.LicenceHistory(licence_number="AB0000000001", source=f"application:{APPLICATION_ID}",
                                   change={"classes_after": [{"code": "B"}], "card_serial": "000000000001"})]]


APPLICATION_ID = "5d2c9b6e-0d6e-4f0e-9a51-1f6c1f1f0001"
STAGE_TABLES = {"processed_events": ("processed_at",), "payments": ("recorded_at",), "cards": (),
                "licence_classes": (), "licence_history": ("at",)}


def stored(url: str, tables: Sequence[str] = ("applications", "application_history", "portal_sync_items",
                                                "outbox")) -> dict[str, list[dict]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        found = {table: [dict(r._mapping) for r in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY 1"))]
                 for table in tables}
    engine.dispose()
    return found


def assert_stored_alike(prepared: dict[str, list[dict]], core: dict[str, list[dict]], clock: set[tuple[str, str]]):
    for table, table_rows in prepared.items():
        assert len(table_rows) == len(core[table]) >= 1, table
        for ours, theirs in zip(table_rows, core[table], strict=True):
            for column, value in ours.items():
                if (table, column) in clock:
                    assert STORED_TIME.match(value) and STORED_TIME.match(theirs[column]), (table, column)
                else:
                    assert value == theirs[column], (table, column)


def test_prepared_rows_are_stored_as_core_stores_them_and_only_the_drivers_execute_is_left(tmp_path: Path):
    urls = {name: f"sqlite:///{tmp_path / name}.db" for name in ("prepared", "core")}
    for url in urls.values():
        upgrade(url)
    engine = make_engine(urls["prepared"])
    application, *dependents = rows()
    with UnitOfWork(make_session_factory(engine)) as uow, Statements(engine) as recorded:
        uow.applications.insert_new(application[0], *dependents)
        uow.commit()
    engine.dispose()
    # One statement per table, each the plain SQL the driver was given.
    assert [t.split(" (")[0] for t, _ in recorded.all if t.startswith("INSERT")] == [
        "INSERT INTO applications", "INSERT INTO application_history", "INSERT INTO portal_sync_items",
        "INSERT INTO outbox"]
    engine = make_engine(urls["core"])
    with UnitOfWork(make_session_factory(engine)) as uow:
        for table_rows in rows():
            core_insert(uow.session, table_rows)
        uow.commit()
    engine.dispose()
    assert_stored_alike(stored(urls["prepared"]), stored(urls["core"]), CLOCK)


def test_the_rows_a_unit_of_work_appends_are_stored_as_core_stores_them(tmp_path: Path):
    urls = {name: f"sqlite:///{tmp_path / name}.db" for name in ("prepared", "core")}
    for name, url in urls.items():
        upgrade(url)
        engine = make_engine(url)
        with UnitOfWork(make_session_factory(engine)) as uow:
            for table_rows in rows()[:1]:
                core_insert(uow.session, table_rows)
            person = models.Person(citizen_id="001085012345", full_name="NGUYỄN VĂN A", sex="male")
            uow.session.add(person)
            uow.session.flush()
            uow.session.add(models.Licence(number="AB0000000001", person_id=person.id, regime="vn-2017",
                                           issuing_authority="Sở GTVT Hà Nội"))
            uow.session.flush()
            for table_rows in appended_rows():
                if name == "prepared":
                    for row in table_rows:
                        uow.append(row)  # written at commit (write_appended: prepare_insert)
                else:
                    core_insert(uow.session, table_rows)
            uow.commit()
        engine.dispose()
    tables = tuple(STAGE_TABLES)
    assert_stored_alike(stored(urls["prepared"], tables), stored(urls["core"], tables),
                        {(t, c) for t, columns in STAGE_TABLES.items() for c in columns})


def test_rows_that_leave_out_different_columns_are_not_prepared_but_inserted_by_core(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'licence.db'}"
    upgrade(url)
    engine = make_engine(url)
    history = [models.ApplicationHistory(application_id="a", status="received", portal_status=1, at=AT, actor="x"),
               models.ApplicationHistory(id=7, application_id="a", status="accepted", portal_status=2, at=AT,
                                         actor="x")]
    assert prepare_insert(engine.dialect, history) is None
    assert prepare_insert(engine.dialect, history[:1]) is not None
    engine.dispose()
