"""On-disk staging for rows that must wait for the end of the file: an external sort.

Rows of "straggler" licences (see `scan.py`) are set aside here while the file streams past, then
read back ordered by licence number and line, one licence at a time. It is a private SQLite file in
a temporary directory, whatever the register's database: SQLite sorts on disk with a bounded page
cache, so memory stays flat even when every row of a badly ordered export lands here, and the
register sees no staging tables, locks or clean-up.
"""

from __future__ import annotations

import itertools
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

from licence_service.legacy.rows import Staged

__all__ = ["StagingStore"]

_COLUMNS = Staged._fields
_FLUSH_EVERY = 5000
# The staging connection's page cache, in KiB (SQLite's negative cache_size unit).
_CACHE_KIB = 8 * 1024


class StagingStore:
    """Append `Staged` rows, then read them back grouped by licence number."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="legacy-import-", dir=directory)
        self._db = sqlite3.connect(Path(self._tmp.name) / "staging.db", isolation_level=None)
        # A scratch file: no journal, no fsync; if the process dies the directory goes with it.
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
        self._db.execute(f"CREATE TABLE staged ({', '.join(_COLUMNS)})")
        self._insert = f"INSERT INTO staged VALUES ({', '.join('?' * len(_COLUMNS))})"
        self._pending: list[Staged] = []
        self.rows = 0

    def add(self, row: Staged) -> None:
        self._pending.append(row)
        self.rows += 1
        if len(self._pending) >= _FLUSH_EVERY:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._db.execute("BEGIN")
            self._db.executemany(self._insert, self._pending)
            self._db.execute("COMMIT")
            self._pending.clear()

    def groups(self) -> Iterator[list[Staged]]:
        """Every licence number's rows, in line order; licence numbers in ascending order."""
        self._flush()
        cursor = self._db.execute("SELECT * FROM staged ORDER BY number, line")
        rows = (Staged._make(r) for r in cursor)
        for _, group in itertools.groupby(rows, key=lambda r: r.number):
            yield list(group)

    def close(self) -> None:
        self._db.close()
        self._tmp.cleanup()

    def __enter__(self) -> StagingStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
