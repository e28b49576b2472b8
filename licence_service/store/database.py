"""Engines and sessions: SQLite (WAL, immediate transactions) by default, PostgreSQL by DATABASE_URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from licence_service.store.sqlite_writer_lock import WriterLockedConnection

# An execution option marking an engine view whose transactions only read (read_only_engine()).
READ_ONLY = "licence_read_only"


def make_engine(database_url: str, **kwargs: Any) -> Engine:
    # A statement's parameters carry citizens' IDs, names, phones and photos: keep them out of the
    # text of database errors, which end up in logs (decree 13/2023/NĐ-CP; SECURITY.md).
    kwargs.setdefault("hide_parameters", True)
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            database_url,
            # Let our "begin" listener emit BEGIN itself (pysqlite's own transaction handling defers it);
            # writers queue on a lock file first (licence_service.store.sqlite_writer_lock).
            connect_args={"isolation_level": None, "timeout": 30, "check_same_thread": False,
                          "factory": WriterLockedConnection},
            **kwargs,
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(database_url, pool_pre_ping=True, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        # WAL lets the API read while workers write; the busy timeout makes writers queue, not fail.
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(READ_ONLY):
            # A reader needs no write lock: in WAL mode it reads its snapshot while a writer writes.
            # A deferred BEGIN takes the snapshot at the first read and never waits for a writer.
            conn.exec_driver_sql("BEGIN")
            return
        # BEGIN IMMEDIATE takes the write lock up front: a deferred transaction that reads and then
        # writes fails with "database is locked" at once when another process wrote in between,
        # which the busy timeout cannot help. Every transaction here may write, so all are immediate.
        # The connection takes the database's writer lock file first, so writers wait in the kernel
        # rather than in SQLite's sleeping busy handler; commit, rollback and close release it.
        dbapi_conn = conn.connection.dbapi_connection
        if isinstance(dbapi_conn, WriterLockedConnection):
            dbapi_conn.begin_immediate()
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


def read_only_engine(engine: Engine) -> Engine:
    """The same engine (same pool) for transactions that only read. On SQLite they begin deferred,
    without the writer lock, so a poll or a lookup never queues behind the writers; a write in such
    a transaction may fail with "database is locked" at once, so never write through it. PostgreSQL
    ignores the option."""
    return engine.execution_options(**{READ_ONLY: True})


def make_read_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for reading only (read_only_engine)."""
    return make_session_factory(read_only_engine(engine))
