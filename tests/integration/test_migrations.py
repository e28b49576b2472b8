"""The migrations build the schema the models declare, on SQLite and PostgreSQL, 0005's partial
indexes keep the guarantees the full ones gave, and 0006 leaves portal_sync_items' look-ups by
application on the unique (application_id, seq) index."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from licence_service.store import models
from licence_service.store.migrate import alembic_config, upgrade
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
