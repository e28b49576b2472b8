"""The SQLite writer lock file (licence_service.store.sqlite_writer_lock): held from BEGIN IMMEDIATE
until commit, rollback or close, whatever ends the transaction, and never for ever by one thread."""

from __future__ import annotations

import fcntl
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from licence_service.store.database import make_engine
from licence_service.store.sqlite_writer_lock import LOCK_SUFFIX, WriterLockedConnection


def lock_is_free(db: Path) -> bool:
    """Whether another open file description could take the lock now (never waits)."""
    with open(str(db) + LOCK_SUFFIX, "ab") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        return True


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "w.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    engine.dispose()
    return path


def test_held_from_begin_until_commit(db: Path):
    engine = make_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        conn.begin()
        assert not lock_is_free(db)
        conn.execute(text("INSERT INTO t VALUES (1)"))
        conn.commit()
        assert lock_is_free(db)
    engine.dispose()


def test_released_when_the_transaction_fails(db: Path):
    engine = make_engine(f"sqlite:///{db}")
    with pytest.raises(Exception, match="no such table"), engine.begin() as conn:
        conn.execute(text("INSERT INTO missing VALUES (1)"))
    assert lock_is_free(db)
    engine.dispose()


def test_released_when_the_connection_is_invalidated(db: Path):
    engine = make_engine(f"sqlite:///{db}")
    conn = engine.connect()
    conn.begin()
    assert not lock_is_free(db)
    conn.invalidate()
    assert lock_is_free(db)
    conn.close()
    engine.dispose()


def test_threads_take_turns(db: Path):
    """Threads of one process exclude each other (one lock file handle per connection)."""
    engine = make_engine(f"sqlite:///{db}")
    inside, overlap = [0], []
    guard = threading.Lock()

    def write() -> None:
        for _ in range(50):
            with engine.begin() as conn:
                with guard:
                    inside[0] += 1
                    overlap.append(inside[0])
                conn.execute(text("INSERT INTO t VALUES (1)"))
                with guard:
                    inside[0] -= 1

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert max(overlap) == 1
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 200
    engine.dispose()


def test_a_killed_holder_frees_it(db: Path):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from sqlalchemy import text; from licence_service.store.database import make_engine\n"
         f"c = make_engine('sqlite:///{db}').connect(); c.begin(); c.execute(text('INSERT INTO t VALUES (2)'))\n"
         "print('holding', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        assert holder.stdout.readline().strip() == "holding"
        assert not lock_is_free(db)
        holder.kill()
        holder.wait(10)
        assert lock_is_free(db)
        engine = make_engine(f"sqlite:///{db}")
        with engine.begin() as conn:  # and SQLite's own lock went with it
            conn.execute(text("INSERT INTO t VALUES (3)"))
        engine.dispose()
    finally:
        holder.kill()
        holder.wait(10)


def test_a_nested_transaction_falls_back_to_the_busy_timeout(db: Path):
    """A thread already holding the lock does not wait for itself: SQLite's busy handler answers."""
    first = sqlite3.connect(db, factory=WriterLockedConnection, isolation_level=None, timeout=0.05)
    second = sqlite3.connect(db, factory=WriterLockedConnection, isolation_level=None, timeout=0.05)
    try:
        first.begin_immediate()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            second.begin_immediate()
        first.rollback()
        assert lock_is_free(db)
        second.begin_immediate()
        assert not lock_is_free(db)
        second.commit()
        assert lock_is_free(db)
    finally:
        first.close()
        second.close()


def test_a_failed_begin_releases_it(db: Path):
    """Another program holding SQLite's lock without the lock file: BEGIN fails after the busy
    timeout, and the lock file is not left taken."""
    other = sqlite3.connect(db, isolation_level=None)
    conn = sqlite3.connect(db, factory=WriterLockedConnection, isolation_level=None, timeout=0.05)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            conn.begin_immediate()
        assert lock_is_free(db)
    finally:
        other.rollback()
        other.close()
        conn.close()
