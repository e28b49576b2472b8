"""`import_legacy`: Hà Nội's legacy export into the national register (issue 5).

The import runs in two passes over the file:

1. `scan.py` reads it as bytes: every line must be UTF-8 and the header must name every column,
   or the import stops with `MalformedFileError` before anything is written (not even the reject
   report). It also finds the licences whose rows are scattered through the file.
2. `pipeline.py` parses and groups the rows into licences, in a child process for large files, and
   hands them over in batches; `register.py` writes each batch while the next one is being read.

Memory stays flat: a batch of licences at a time, scattered licences set aside in an on-disk
staging table (an external sort), fixed-size Bloom filters instead of growing sets. Work is
committed every few seconds (`COMMIT_SECONDS`), so a crash midway leaves the licences of earlier
commits imported; since the import is idempotent, running it again completes it.

Licences are applied in file order, batch by batch (within a batch in licence-number order), and
scattered licences last (with the few the scan's Bloom filter cannot tell from them: which ones
depends on the file alone, so the same file always gives the same licences, holders, classes, cards
and rejects); when two licences of one export claim the same citizen ID, CMND or card serial, the
one applied first keeps it and the other is rejected — on a re-import, the one the register holds
keeps it. Only the internal ids of people and licence classes may be numbered in another order from
one run to the next: a licence the reader flags as perhaps sharing an identifier
(`pipeline.RunClaims`, salted hashes) goes in after the rest of its batch, once checked.
"""

from __future__ import annotations

import contextlib
import csv
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from licence_service.legacy.grouping import Reject
from licence_service.legacy.pipeline import BATCH_SIZE, Batch, gc_paused, run_reader
from licence_service.legacy.progress import Progress
from licence_service.legacy.register import HELD_REASON, RegisterWriter

__all__ = ["HELD_REASON", "ImportSummary", "import_legacy", "reject_report_path"]

# Files at least this big are read in a child process, in parallel with the writing; below it
# starting the process costs more than it saves.
PARALLEL_FROM_BYTES = 16 * 1024 * 1024
# A transaction spans batches for up to this long. Every commit rewrites the index pages its
# batches touched, and licence numbers, citizen IDs and card serials arrive in no useful order, so
# each batch touches most of them: committing after every batch made the commits cost about eight
# times what they cost now. Longer would be faster still but would keep the application's writers
# waiting longer (on SQLite they queue behind the import, up to their 30 s busy timeout).
COMMIT_SECONDS = 5.0
# The SQLite page cache of the importing connection, in KiB (restored afterwards: the connection
# returns to a shared pool). With checkpoints deferred, a page that falls out of the cache is read
# back from the write-ahead log, and the indexes on licence numbers, citizen IDs and card serials
# take their keys in no useful order: 64 MiB instead of 16 took the million-row import from 20.5 to
# 16.8 s (bench/README.md), for about 50 MB more at its peak.
_SQLITE_CACHE_KIB = 64 * 1024
# Checkpoints of the write-ahead log are left until the import's last commit. SQLite checkpoints at
# the commit that takes the log past 1000 pages, which every commit of an import does: each one then
# copied every page it touched into the database and synced both files, and the next commit touched
# most of them again. Deferred, each page is copied once, at the end; the log meanwhile grows on
# disk (to about the size of what was imported), never in memory.
DEFER_CHECKPOINTS = True


@dataclass
class ImportSummary:
    file: str
    source: str
    dry_run: bool
    rows_read: int = 0
    rows_imported: int = 0  # rows of licences created, updated or found unchanged
    rows_rejected: int = 0
    rows_held: int = 0  # rows of licences not updated because an application is open
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    licences_created: int = 0
    licences_updated: int = 0
    licences_unchanged: int = 0
    licences_held: int = 0
    licences_kept_renewed: int = 0
    held_licences: list[str] = field(default_factory=list)  # the first 20, for the message
    classes_created: int = 0
    classes_updated: int = 0
    classes_unchanged: int = 0
    classes_kept: int = 0
    year_only_birth_dates: int = 0
    cmnd_only_people: int = 0
    reject_report: str | None = None
    seconds: float = 0.0

    def render(self) -> str:
        """The summary as the CLI prints it."""
        rate = f" ({self.rows_read / self.seconds:,.0f} rows/s)" if self.seconds > 0 else ""
        lines = [
            f"legacy import of {self.file}" + (" — DRY RUN: nothing was written" if self.dry_run else ""),
            f"  rows read         {self.rows_read:>10,}",
            f"    imported        {self.rows_imported:>10,}",
            f"    rejected        {self.rows_rejected:>10,}",
            f"    held back       {self.rows_held:>10,}  (licence has an open application)",
            f"  licences          created {self.licences_created:,}, updated {self.licences_updated:,}, "
            f"unchanged {self.licences_unchanged:,}",
            f"                    held (open application) {self.licences_held:,}, "
            f"kept (renewed by this service since) {self.licences_kept_renewed:,}",
            f"  classes           created {self.classes_created:,}, updated {self.classes_updated:,}, "
            f"unchanged {self.classes_unchanged:,}, kept (no longer in the export) {self.classes_kept:,}",
            f"  holders with a year-only date of birth (flagged): {self.year_only_birth_dates:,}",
            f"  holders known only by their CMND: {self.cmnd_only_people:,}",
        ]
        if self.rejected_by_reason:
            lines.append("  rejected rows by reason:")
            width = max(len(code) for code in self.rejected_by_reason)
            for code, n in sorted(self.rejected_by_reason.items(), key=lambda kv: (-kv[1], kv[0])):
                lines.append(f"    {code:<{width}}  {n:>10,}")
        if self.held_licences:
            more = ", ..." if self.licences_held > len(self.held_licences) else ""
            lines.append(f"  held licences: {', '.join(self.held_licences)}{more}")
        if self.reject_report:
            lines.append(f"  reject report: {self.reject_report}")
        lines.append(f"  took {self.seconds:,.1f} s{rate}")
        return "\n".join(lines)


def reject_report_path(path: Path) -> Path:
    """The default report: next to the input, `<name>.rejects.csv`."""
    return path.with_name(f"{path.stem}.rejects.csv")


class _RejectReport:
    """The reject report, written to a temporary name and moved into place only on success, so
    a failed or refused import never leaves a half-written report that looks complete."""

    HEADER = ("line", "licence_number", "reasons", "details")

    def __init__(self, path: Path) -> None:
        self.path = path
        self._partial = path.with_name(f".{path.name}.{os.getpid()}.part")
        self._file = self._partial.open("w", encoding="utf-8", newline="")
        self._csv = csv.writer(self._file, lineterminator="\n")
        self._csv.writerow(self.HEADER)

    def write(self, rejects: Iterable[Reject]) -> None:
        for r in rejects:
            self._csv.writerow((
                r.line,
                r.licence_number,
                ";".join(code for code, _ in r.reasons),
                "; ".join(f"{code}: {detail}" if detail else code for code, detail in r.reasons),
            ))

    def commit(self) -> None:
        self._file.close()
        os.replace(self._partial, self.path)

    def abandon(self) -> None:
        self._file.close()
        self._partial.unlink(missing_ok=True)


class _BackgroundCheckpoints:
    """Copies what the import has committed from the write-ahead log into the database, on a thread
    and a connection of its own, while the import goes on writing.

    Checkpoints are deferred to the end of the import (`DEFER_CHECKPOINTS`), where the last one
    copies the whole log: 0.6-0.7 s of a million-row import spent with nothing else to do. Most of
    the log by then is table pages written once; copied after each intermediate commit instead (a
    PASSIVE checkpoint never waits for, nor blocks, the writer, and the driver lets go of the GIL
    while SQLite works), they cost the importing process nothing, and the last checkpoint copies
    only what changed since. A request made while one runs is served once it ends; `close` drops a
    request not yet started (the final checkpoint copies that too) and waits for a running one.
    """

    def __init__(self, database: str, on_done: Callable[[], None] | None = None) -> None:
        self._database, self._on_done = database, on_done
        self._wake = threading.Event()
        self._pending = self._stop = False
        self._thread = threading.Thread(target=self._run, name="legacy-import-checkpoints", daemon=True)
        self._thread.start()

    def request(self) -> None:
        self._pending = True
        self._wake.set()

    def _run(self) -> None:
        db = sqlite3.connect(self._database, isolation_level=None, check_same_thread=False)
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stop:
                    return
                if self._pending:
                    self._pending = False
                    with contextlib.suppress(sqlite3.Error):  # whatever it leaves, the final one copies
                        db.execute("PRAGMA wal_checkpoint(PASSIVE)").close()
                    if self._on_done is not None:
                        self._on_done()
        finally:
            db.close()

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join()


@contextlib.contextmanager
def _import_connection(engine: Engine) -> Iterator[tuple[Connection, _BackgroundCheckpoints | None]]:
    """The importing connection, tuned for the import and restored afterwards, and (SQLite, with
    checkpoints deferred) the background checkpoints to request after each intermediate commit."""
    with engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            yield conn, None
            return
        with conn.begin():
            previous = conn.exec_driver_sql("PRAGMA cache_size").scalar()
            conn.exec_driver_sql(f"PRAGMA cache_size=-{_SQLITE_CACHE_KIB}")
            autocheckpoint = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
            if DEFER_CHECKPOINTS:
                conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
        database = engine.url.database
        checkpoints = (
            _BackgroundCheckpoints(database)
            if DEFER_CHECKPOINTS and database and database != ":memory:" and not database.startswith("file:")
            else None
        )
        try:
            yield conn, checkpoints
        finally:
            if checkpoints is not None:
                checkpoints.close()
            if (transaction := conn.get_transaction()) is not None:
                transaction.rollback()
                # After a COMMIT that failed (a foreign key deferred to it) SQLite's transaction is
                # still open, and SQLAlchemy, which no longer counts it as active, does not end it.
                conn.connection.dbapi_connection.rollback()
            with conn.begin():
                conn.exec_driver_sql(f"PRAGMA cache_size={int(previous)}")
                conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint={int(autocheckpoint)}")
            if DEFER_CHECKPOINTS:
                # On the driver's connection, outside any transaction (SQLAlchemy would begin one,
                # and a checkpoint cannot run inside it); PASSIVE: it copies what no reader still
                # needs and never waits for anyone.
                conn.connection.dbapi_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").close()


def import_legacy(
    path: str | Path,
    engine: Engine,
    *,
    dry_run: bool = False,
    reject_report: str | Path | None = None,
    source: str | None = None,
    progress: Progress | None = None,
    parallel: bool | None = None,
    batch_size: int = BATCH_SIZE,
    commit_seconds: float = COMMIT_SECONDS,
) -> ImportSummary:
    """Import a Hà Nội legacy export into the register behind ``engine``.

    ``reject_report`` defaults to `<name>.rejects.csv` next to the file; ``source`` (recorded in
    licence history) to `legacy-import:<file name>`. ``parallel`` reads the file in a child process
    (default: for files of 16 MB or more). Raises `MalformedFileError` — with nothing written — for
    a file that is not UTF-8 or lacks a column, and FileNotFoundError when the report's folder is
    missing.
    """
    started = time.monotonic()
    path = Path(path)
    report_path = Path(reject_report) if reject_report is not None else reject_report_path(path)
    if not report_path.parent.is_dir():
        # Checked before reading: otherwise the whole file would be read for nothing.
        raise FileNotFoundError(f"the reject report's folder {report_path.parent} does not exist")
    source = source or f"legacy-import:{path.name}"
    if parallel is None:
        parallel = path.stat().st_size >= PARALLEL_FROM_BYTES
    with contextlib.ExitStack() as stack:
        opened: list[tuple[Connection, _BackgroundCheckpoints | None, RegisterWriter]] = []

        def open_register() -> bool:
            # Called by the reader once its child process (if any) is started: the connection is
            # opened after the fork. Nothing is written before the scan's verdict.
            conn, checkpoints = stack.enter_context(_import_connection(engine))
            stack.enter_context(gc_paused())
            writer = RegisterWriter(conn, source=source, dry_run=dry_run)
            stack.callback(writer.close)
            opened.append((conn, checkpoints, writer))
            return writer.takes_rows

        events = run_reader(path, parallel=parallel, batch_size=batch_size,
                            on_scan=progress.scanning if progress is not None else None, rows_layout=open_register)
        # Ends the reader (and its process) if we stop early; after the writer is done with it.
        stack.callback(events.close)
        try:
            # The first event comes after the scan: a malformed file raises here, before the report
            # is created or anything is written.
            _, total_rows, _ = next(events)
            conn, checkpoints, writer = opened[0]
            report = _RejectReport(report_path)
            try:
                tally = _write(events, conn, writer, report, progress, total_rows, dry_run, commit_seconds,
                               checkpoints)
            except BaseException:
                report.abandon()
                raise
            report.commit()
        finally:
            if progress is not None:
                progress.finish()
    return ImportSummary(
        file=str(path), source=source, dry_run=dry_run, rows_read=tally.rows_read,
        rows_rejected=tally.rows_rejected, rows_held=tally.rows_held, rejected_by_reason=dict(tally.reasons),
        reject_report=str(report_path), seconds=time.monotonic() - started, **asdict(writer.counts),
    )


@dataclass
class _Tally:
    rows_read: int = 0
    rows_rejected: int = 0
    rows_held: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, rejected: list[Reject]) -> None:
        for r in rejected:
            codes = {code for code, _ in r.reasons}
            if codes == {HELD_REASON}:
                self.rows_held += 1
            else:
                self.rows_rejected += 1
                self.reasons.update(codes)


def _write(
    events: Iterator[tuple[Any, ...]], conn: Connection, writer: RegisterWriter, report: _RejectReport,
    progress: Progress | None, total_rows: int, dry_run: bool, commit_seconds: float,
    checkpoints: _BackgroundCheckpoints | None = None,
) -> _Tally:
    """Apply the reader's batches, committing every ``commit_seconds`` (never, in a dry run), and once
    more when a batch says every row is read."""
    tally = _Tally()
    transaction, opened = None, 0.0
    # Once every row is read, what is left is the licences set aside and the last batch. Committing
    # then lets the background checkpoint copy the log while the reader finishes them, so the final
    # commit and checkpoint, which nothing overlaps, are shorter: 0.34-0.38 s against 0.43-0.51 s
    # after the reader's end in four alternating pairs (bench/README.md).
    read_all = False
    for event in events:
        if event[0] == "done":
            tally.rows_read = event[1]
            break
        batch: Batch = event[1]
        if transaction is None:
            transaction, opened = conn.begin(), time.monotonic()
        if batch.rows is not None:
            writer.insert_new_rows(batch.rows)
        rejected = batch.rejects + writer.apply(batch.records, batch.suspects)
        if dry_run:
            transaction.rollback()  # it only read, but let go of any lock
            transaction = None
        elif time.monotonic() - opened >= commit_seconds or (not read_all and batch.rows_read >= total_rows):
            read_all = batch.rows_read >= total_rows  # rows_read never falls: once true, it stays
            transaction.commit()
            transaction = None
            if checkpoints is not None:
                checkpoints.request()
        report.write(rejected)
        tally.add(rejected)
        if progress is not None:
            progress.importing(batch.rows_read, max(total_rows, batch.rows_read))
    if transaction is not None:
        transaction.commit()
    return tally
