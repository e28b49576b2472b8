"""Recording the SQL statements an engine runs, for tests that count them or check which ran under
SQLite's writer lock."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import event

from licence_service.store import sqlite_writer_lock


class Statements:
    """`with Statements(engine) as recorded:` records every statement run meanwhile (whitespace
    folded), each with whether the thread running it held the database's writer lock
    (store.sqlite_writer_lock; never on PostgreSQL)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.all: list[tuple[str, bool]] = []

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        held = bool(sqlite_writer_lock._held.get(threading.get_ident()))
        self.all.append((" ".join(statement.split()), held))

    def __enter__(self) -> Statements:
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *_exc: Any) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)

    @property
    def selects(self) -> list[str]:
        return [text for text, _held in self.all if text.upper().startswith("SELECT")]

    def of(self, table: str) -> int:
        """SELECTs from this table."""
        return len([s for s in self.selects if f"FROM {table} " in s + " "])

    def savepoints(self) -> int:
        return len([text for text, _held in self.all if text.upper().startswith("SAVEPOINT")])
