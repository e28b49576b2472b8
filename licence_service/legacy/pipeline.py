"""The reading side of the import: file → scan → parse → group → batches of licences.

`reader_events` is a generator of events (see `Event`); `run_reader` runs it either in this process
or in a child process that sends the events through a bounded queue. The child is what makes the
import use both cores of the machine: parsing and grouping (pure Python) run there while this
process writes the previous batch into the register. The bounded queue keeps memory flat: the
reader waits when the writer is behind.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_module
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from operator import itemgetter
from pathlib import Path
from typing import Any, NamedTuple

from licence_service.legacy.grouping import NUMBER, Reject, build_licence
from licence_service.legacy.rows import ExportReader, MalformedFileError, RowParser, Staged, decode_problems
from licence_service.legacy.scan import scan_export
from licence_service.legacy.staging import StagingStore

__all__ = ["Batch", "ReaderFailedError", "reader_events", "run_reader"]

BATCH_SIZE = 20_000  # licences per batch: big enough for bulk inserts, small enough for memory
_QUEUE_DEPTH = 2  # batches in flight between the reader process and the writer


class Batch(NamedTuple):
    records: list[tuple[Any, ...]]  # LicenceRecord layout, ordered by licence number (index-friendly)
    rejects: list[Reject]  # rows rejected while reading, in line order
    rows_read: int  # data rows read so far, for the progress bar


class ReaderFailedError(RuntimeError):
    """The reader process failed for a reason other than a malformed file (its traceback is the message)."""


# Events: ("scanning", bytes_done, bytes_total), ("scanned", data_lines, stragglers or None when
# every row is staged), ("batch", Batch), ("done", rows_read, rows_staged).
Event = tuple[Any, ...]


def reader_events(
    path: Path,
    *,
    batch_size: int = BATCH_SIZE,
    workdir: Path | None = None,
    on_scan: Callable[[int, int], None] | None = None,
) -> Iterator[Event]:
    """Scan, then parse and group the export, yielding batches of licences as they complete.

    Raises `MalformedFileError` from the scan, before the first batch.
    """
    scan = scan_export(path, progress=on_scan)
    yield ("scanned", scan.data_lines, None if scan.stragglers is None else len(scan.stragglers))
    stragglers = scan.stragglers
    records: list[tuple[Any, ...]] = []
    rejects: list[Reject] = []
    rows_read = 0

    def cut() -> Batch:
        records.sort(key=itemgetter(NUMBER))
        batch = Batch(records.copy(), sorted(rejects, key=lambda r: r.line), rows_read)
        records.clear()
        rejects.clear()
        return batch

    def finish(group: list[Staged]) -> None:
        record, rejected = build_licence(group)
        if record is not None:
            records.append(record)
        rejects.extend(rejected)

    with ExportReader(path) as reader, StagingStore(workdir) as staging:
        parser = RowParser(reader.header)
        run: list[Staged] = []
        run_number = ""
        for line, fields in reader:
            rows_read += 1
            if fields is None:
                rejects.append(Reject(line, "", (("unparseable_row", "the csv module could not split this record"),)))
                continue
            row = parser.parse(fields, line)
            number = row.number
            if not number:
                # No licence to group it with: rejected on its own, and (as in the scan) it neither
                # starts nor ends a run of rows.
                rejects.append(Reject(line, row.raw_number, tuple(decode_problems(row.problems))))
            elif stragglers is None or number in stragglers:
                staging.add(row)
            elif number == run_number:
                run.append(row)
            else:
                if run:
                    finish(run)
                    if len(records) >= batch_size:
                        yield ("batch", cut())
                run = [row]
                run_number = number
        if run:
            finish(run)
        for group in staging.groups():
            finish(group)
            if len(records) >= batch_size:
                yield ("batch", cut())
        yield ("batch", cut())
        yield ("done", rows_read, staging.rows)


def _child(events: multiprocessing.Queue[Event], path: Path, batch_size: int, workdir: Path | None) -> None:
    try:
        for event in reader_events(
            path, batch_size=batch_size, workdir=workdir, on_scan=lambda d, t: events.put(("scanning", d, t))
        ):
            events.put(event)
    except MalformedFileError as exc:
        events.put(("malformed", str(exc)))
    except BaseException:  # reported to the parent, which decides; the child just ends
        events.put(("failed", traceback.format_exc()))


def _context() -> Any:
    # fork starts instantly and the child only reads the file, but forking a process that runs
    # other threads is unsafe, so then (and off Linux) the slower, always-safe spawn is used.
    if sys.platform == "linux" and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def run_reader(
    path: Path,
    *,
    parallel: bool,
    batch_size: int = BATCH_SIZE,
    workdir: Path | None = None,
    on_scan: Callable[[int, int], None] | None = None,
) -> Iterator[Event]:
    """`reader_events`, in a child process when ``parallel``; raises `MalformedFileError` alike."""
    if not parallel:
        yield from reader_events(path, batch_size=batch_size, workdir=workdir, on_scan=on_scan)
        return
    ctx = _context()
    events = ctx.Queue(maxsize=_QUEUE_DEPTH)
    child = ctx.Process(target=_child, args=(events, path, batch_size, workdir), daemon=True)
    child.start()
    try:
        while True:
            try:
                event = events.get(timeout=1.0)
            except queue_module.Empty:
                if not child.is_alive():
                    raise ReaderFailedError(
                        f"the reader process ended unexpectedly (exit code {child.exitcode})"
                    ) from None
                continue
            kind = event[0]
            if kind == "scanning":
                if on_scan is not None:
                    on_scan(event[1], event[2])
            elif kind == "malformed":
                raise MalformedFileError(event[1])
            elif kind == "failed":
                raise ReaderFailedError(event[1])
            else:
                yield event
                if kind == "done":
                    break
    finally:
        # Ends only our own child: normally it has finished; after an error it may be blocked on
        # the full queue, which closing the generator early also leaves it in.
        if child.is_alive():
            child.terminate()
        child.join()
        events.close()
