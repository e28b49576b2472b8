"""One writer at a time on a SQLite file, queued in the kernel instead of in SQLite's busy handler.

SQLite has a single write lock per database. A writer that finds it taken sleeps in the busy handler
(up to 100 ms between tries) and so keeps sleeping after the lock has been freed: with the web
workers and every stage writing, that convoy was where the pipeline's time went (bench/README.md,
issue 8). Here each connection first takes an exclusive flock(2) on a sidecar file next to the
database (`<database>-writer.lock`), then BEGIN IMMEDIATE; commit, rollback and close release it.
A waiter blocks in the kernel and wakes as soon as the holder lets go.

- flock belongs to an open file description, so every connection opens the file for itself: threads
  of one process exclude each other like processes do. A process that dies (SIGKILL included) loses
  its locks with its descriptors; a connection dropped without close() closes its file when
  collected.
- SQLite's own lock and busy timeout stay underneath, for programs that do not take this lock (the
  sqlite3 shell, an older release of the service).
- A thread that already holds the lock through another connection (a nested transaction, which the
  service avoids) does not wait for it: it would wait for itself for ever. It falls back to SQLite's
  busy handler, which gives up after the busy timeout as before.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from typing import IO, Any

LOCK_SUFFIX = "-writer.lock"

# thread id -> how many connections of that thread hold the lock now (for the nesting check).
_held: dict[int, int] = {}
_held_guard = threading.Lock()


def lock_path(database: str) -> str | None:
    """The sidecar lock file of a SQLite database path; None for an in-memory or URI database."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return os.path.abspath(database) + LOCK_SUFFIX


class WriterLockedConnection(sqlite3.Connection):
    """A pysqlite connection whose BEGIN IMMEDIATE is queued behind the database's writer lock file.

    Passed to sqlite3.connect as its `factory` (licence_service.store.database)."""

    def __init__(self, database: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        self._lock_path = lock_path(os.fsdecode(database)) if isinstance(database, (str, bytes, os.PathLike)) else None
        self._lock_file: IO[bytes] | None = None
        self._lock_pid = 0
        self._lock_thread: int | None = None

    def _file(self) -> IO[bytes] | None:
        if self._lock_path is None:
            return None
        if self._lock_file is None or self._lock_pid != os.getpid():
            # A forked child must not share its parent's open file description (and so its lock).
            self._lock_file = open(self._lock_path, "ab")  # noqa: SIM115 - lives as long as the connection
            self._lock_pid = os.getpid()
        return self._lock_file

    def begin_immediate(self) -> None:
        """Take the writer lock (unless this thread already holds it), then BEGIN IMMEDIATE."""
        locked = self._acquire()
        try:
            self.execute("BEGIN IMMEDIATE")
        except BaseException:
            if locked:
                self._release()
            raise

    def _acquire(self) -> bool:
        if self._lock_thread is not None:
            # Already ours: a BEGIN inside an open transaction, which SQLite refuses below. The
            # lock stays with that transaction (its commit or rollback releases it).
            return False
        me = threading.get_ident()
        with _held_guard:
            if _held.get(me):
                return False
        lock_file = self._file()
        if lock_file is None:
            return False
        fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)  # blocks with the GIL released
        self._lock_thread = me
        with _held_guard:
            _held[me] = _held.get(me, 0) + 1
        return True

    def _release(self) -> None:
        holder, self._lock_thread = self._lock_thread, None
        if holder is None:
            return
        with _held_guard:
            left = _held.get(holder, 1) - 1
            if left > 0:
                _held[holder] = left
            else:
                _held.pop(holder, None)
        if self._lock_file is not None and self._lock_pid == os.getpid():
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            # A failed COMMIT leaves the transaction to a rollback, which SQLite's own lock guards.
            self._release()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release()
            if self._lock_file is not None:
                self._lock_file.close()
                self._lock_file = None
