"""The migrations build the schema the models declare, on SQLite and PostgreSQL, 0005's partial
indexes keep the guarantees the full ones gave, 0006 leaves portal_sync_items' look-ups by
application on the unique (application_id, seq) index, and 0007 has the register's foreign keys
checked at the commit."""

from __future__ import annotations

import datetime as dt
import importlib.util
import random
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations

from licence_service.store import models
from licence_service.store.database import make_engine
from licence_service.store.migrate import MIGRATIONS_DIR, alembic_config, upgrade
from licence_service.store.portal_sync_items import _heads_stmt


def _seed_licence(conn: sa.Connection) -> None:
    conn.execute(sa.insert(models.Person.__table__).values(
        id=1, citizen_id="001089012345", full_name="NGUYỄN VĂN AN", date_of_birth=dt.date(1989, 5, 17), sex="male",
        nationality="VN"))
    conn.execute(sa.insert(models.Licence.__table__).values(
        number="010123456789", person_id=1, regime="vn-2017", issued_on=dt.date(2020, 1, 2),
        issuing_authority="SGTVT-01", status="valid", updated_at=dt.datetime(2026, 11, 28, tzinfo=dt.UTC)))


def _card(serial: str, application_id: str | None) -> sa.Insert:
    return sa.insert(models.Card.__table__).values(
        serial=serial, licence_number="010123456789", status="valid", application_id=application_id)


def test_the_migrated_schema_is_the_one_the_models_declare(any_database_url: str) -> None:
    engine = sa.create_engine(any_database_url)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), models.Base.metadata) == []
    engine.dispose()


def test_a_card_application_stays_unique_while_legacy_cards_without_one_are_many(any_database_url: str) -> None:
    engine = sa.create_engine(any_database_url)
    with engine.begin() as conn:
        _seed_licence(conn)
        conn.execute(_card("AA0000001", None))
        conn.execute(_card("AA0000002", None))  # legacy cards: no application, any number of them
        conn.execute(_card("AA0000003", "app-1"))
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(_card("AA0000004", "app-1"))  # one application, one card
    engine.dispose()


def test_0005_downgrades_and_upgrades_with_data_in_place(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/licence.db"
    upgrade(url)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        _seed_licence(conn)
        conn.execute(_card("AA0000001", None))
        conn.execute(_card("AA0000002", "app-1"))
    command.downgrade(alembic_config(url), "0003_photos")
    upgrade(url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(models.Card.serial).order_by(models.Card.serial)).scalars().all() == [
            "AA0000001", "AA0000002"]
        indexes = {i["name"]: i for i in sa.inspect(conn).get_indexes("cards")}
        assert indexes["uq_cards_application_id"]["unique"]
        assert compare_metadata(MigrationContext.configure(conn), models.Base.metadata) == []
    engine.dispose()


def test_0006_leaves_the_look_ups_by_application_on_the_unique_index_and_downgrades(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/licence.db"
    upgrade(url)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        names = {i["name"] for i in sa.inspect(conn).get_indexes("portal_sync_items")}
        assert "ix_portal_sync_items_application_id" not in names
        # The sender's heads query and an application's items in order both search an index by
        # application (SQLite names the unique constraint's index itself), never scan the table.
        heads = _heads_stmt().params(ids=["a-1", "a-2"])
        in_order = sa.select(models.PortalSyncItem).where(models.PortalSyncItem.application_id == "a-1") \
            .order_by(models.PortalSyncItem.seq)
        for stmt in (heads, in_order):
            sql = stmt.compile(conn, compile_kwargs={"literal_binds": True})
            plan = [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]
            assert plan and all("SCAN portal_sync_items" not in step and "SCAN earlier" not in step
                                for step in plan), plan
            assert any("USING INDEX sqlite_autoindex_portal_sync_items" in step for step in plan), plan
    command.downgrade(alembic_config(url), "0005_leaner_register_indexes")
    with engine.connect() as conn:
        assert "ix_portal_sync_items_application_id" in {
            i["name"] for i in sa.inspect(conn).get_indexes("portal_sync_items")}
    upgrade(url)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), models.Base.metadata) == []
    engine.dispose()


def _orphans() -> list[sa.Insert]:
    """One row of each of 0007's child tables whose parent does not exist."""
    return [
        sa.insert(models.Licence.__table__).values(
            number="010000000404", person_id=404, regime="vn-2017", issuing_authority="SGTVT-01", status="valid",
            updated_at=dt.datetime(2026, 12, 4, tzinfo=dt.UTC)),
        sa.insert(models.LicenceClass.__table__).values(licence_number="010000000405", code="B", restrictions=[]),
        _card("AA0000404", None).values(licence_number="010000000406"),
    ]


@pytest.mark.parametrize("orphan", range(3), ids=["licence", "class", "card"])
def test_the_register_foreign_keys_hold_at_the_commit_not_at_the_statement(any_database_url: str, orphan: int) -> None:
    engine = make_engine(any_database_url)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        insert = _orphans()[orphan]
        conn.execute(insert)  # accepted here: the key is checked when the transaction ends
        assert conn.execute(sa.select(sa.func.count()).select_from(insert.table)).scalar_one() == 1
    with engine.connect() as conn:
        for table in (models.Licence, models.LicenceClass, models.Card):
            assert conn.execute(sa.select(sa.func.count()).select_from(table.__table__)).scalar_one() == 0
    engine.dispose()


def test_0007_downgrades_to_immediate_keys_and_upgrades_with_data_in_place(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/licence.db"
    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        _seed_licence(conn)
        conn.execute(_card("AA0000001", None))
    command.downgrade(alembic_config(url), "0006_portal_sync_one_index")
    with engine.connect() as conn, pytest.raises(sa.exc.IntegrityError), conn.begin():
        conn.execute(_orphans()[2])  # immediate again: refused by the statement itself
    upgrade(url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(models.Card.serial)).scalars().all() == ["AA0000001"]
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"
        assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        keys = {(t, fk["name"]): fk["options"] for t in ("licences", "licence_classes", "cards")
                for fk in sa.inspect(conn).get_foreign_keys(t)}
        assert keys == {k: {"deferrable": True, "initially": "DEFERRED"} for k in keys} and len(keys) == 3
        assert compare_metadata(MigrationContext.configure(conn), models.Base.metadata) == []
    engine.dispose()


def test_0007_stops_with_the_schema_as_it_was_when_an_edited_definition_does_not_read_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path}/licence.db"
    upgrade(url, "0006_portal_sync_one_index")
    spec = importlib.util.spec_from_file_location(
        "migration_0007", MIGRATIONS_DIR / "versions" / "0007_register_keys_checked_at_commit.py")
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    # An edit SQLite cannot parse: the migration must find it out before it commits.
    monkeypatch.setattr(migration, "_with_timing", lambda sql, *_, **__: sql.replace("REFERENCES", "REFERENCES ("))
    engine = make_engine(url)
    with pytest.raises(sa.exc.DatabaseError, match="malformed database schema"), engine.begin() as conn, \
            Operations.context(MigrationContext.configure(conn)):
        migration.upgrade()
    with engine.connect() as conn:
        for table in ("licences", "licence_classes", "cards"):
            assert conn.exec_driver_sql(f"PRAGMA foreign_key_list({table})").all()  # readable, keys kept
        tables = conn.exec_driver_sql("SELECT group_concat(sql) FROM sqlite_master WHERE type = 'table'").scalar_one()
        assert "FOREIGN KEY" in tables and "DEFERRABLE" not in tables
    engine.dispose()


def _written_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError("no wchar in /proc/self/io")


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="counts the process's writes in /proc/self/io (Linux)")
def test_many_row_inserts_into_the_register_children_keep_no_statement_journal(tmp_path: Path) -> None:
    # Why 0007 (issue 5): with an immediate foreign key SQLite journals each many-row INSERT — a
    # temporary file holding every existing page the statement changes — whatever PRAGMA
    # defer_foreign_keys says. Cards going into existing index pages, 100 to a statement, must write
    # nothing before the commit (the pages stay in the cache; the log is written at the commit).
    url = f"sqlite:///{tmp_path}/licence.db"
    upgrade(url)
    engine = make_engine(url)
    numbers = [f"01{i:010d}" for i in range(4000)]
    with engine.begin() as conn:
        _seed_licence(conn)
        conn.exec_driver_sql(
            "INSERT INTO licences (number, person_id, regime, issuing_authority, status, updated_at) "
            "VALUES (?, 1, 'vn-2017', 'SGTVT-01', 'valid', '2026-12-04 00:00:00')", [(n,) for n in numbers])
    random.Random(7).shuffle(numbers)
    values = ", ".join(["(?, ?, 'valid')"] * 100)
    statement = f"INSERT OR FAIL INTO cards (serial, licence_number, status) VALUES {values}"
    params = [tuple(v for j, n in enumerate(numbers[i:i + 100]) for v in (f"S{i + j:09d}", n))
              for i in range(0, len(numbers), 100)]
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA cache_size=-65536")
        before = _written_bytes()
        conn.exec_driver_sql(statement, params)
        assert _written_bytes() - before == 0
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(models.Card.__table__)).scalar_one() == len(numbers)
    engine.dispose()
