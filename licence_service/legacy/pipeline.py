"""The reading side of the import: file → scan → parse → group → batches of licences.

`reader_events` is a generator of events (see `Event`); `run_reader` runs it either in this process
or in a child process that sends the events through a bounded queue. The child is what makes the
import use both cores of the machine: parsing and grouping (pure Python) run there while this
process writes the previous batch into the register. The bounded queue keeps memory flat: the
reader waits when the writer is behind.
"""

from __future__ import annotations

import contextlib
import gc
import marshal
import multiprocessing
import queue as queue_module
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator
from operator import itemgetter
from pathlib import Path
from typing import Any, NamedTuple

from licence_service.legacy.bloom import BloomFilter
from licence_service.legacy.grouping import (
    CARD_SERIAL,
    CITIZEN_ID,
    LEGACY_ID,
    NUMBER,
    PERSON,
    Reject,
    build_licence,
    single_licence,
)
from licence_service.legacy.rows import ExportReader, MalformedFileError, RowParser, Staged, decode_problems
from licence_service.legacy.scan import scan_export
from licence_service.legacy.staging import StagingStore

__all__ = ["Batch", "ReaderFailedError", "gc_paused", "reader_events", "run_reader"]

BATCH_SIZE = 10_000  # licences per batch: big enough for bulk inserts, small enough for memory
_QUEUE_DEPTH = 2  # batches in flight between the reader process and the writer


class Batch(NamedTuple):
    records: list[tuple[Any, ...]]  # LicenceRecord layout, ordered by licence number (index-friendly)
    # Positions in `records` of the licences that may claim an identifier an earlier licence of the
    # run claimed (see RunClaims), in ascending order.
    suspects: list[int]
    rejects: list[Reject]  # rows rejected while reading, in line order
    rows_read: int  # data rows read so far, for the progress bar


class ReaderFailedError(RuntimeError):
    """The reader process failed for a reason other than a malformed file (its traceback is the message)."""


# Events: ("scanning", bytes_done, bytes_total), ("scanned", data_lines, stragglers or None when
# every row is staged), ("batch", Batch), ("done", rows_read, rows_staged).
Event = tuple[Any, ...]


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the duration of an import.

    An import allocates millions of tuples and lists, none of them in reference cycles, and each
    batch of allocations made the collector walk the whole live heap again; pausing it saved about
    a tenth of the run time. Reference counting still frees everything as usual.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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
    with gc_paused():
        yield from _reader_events(path, batch_size, workdir, on_scan)


class RunClaims:
    """Flags licences whose citizen ID, CMND or card serial an earlier licence of this run may
    already have (`Batch.suspects`).

    One identifier, one licence: the writer must refuse a licence claiming what another holds. When
    the register was empty before the run, only the run itself can hold anything, and this lets the
    writer check just the flagged few instead of every licence. Fixed memory: a Bloom filter per
    kind (2**24 bits, 2 MiB: false flags stay under 1 % up to some 900,000 licences and near 5 % at
    two million, and a false flag only costs the writer one look-up).
    """

    def __init__(self) -> None:
        self._citizen_ids, self._legacy_ids, self._serials = BloomFilter(24), BloomFilter(24), BloomFilter(24)

    def suspects(self, records: list[tuple[Any, ...]]) -> list[int]:
        """The positions in ``records`` (taken in order, after every earlier call's) of the licences
        that may claim an identifier an earlier licence claimed."""
        citizen_id, legacy_id, serial = self._citizen_ids.add, self._legacy_ids.add, self._serials.add
        out = []
        for i, record in enumerate(records):
            person = record[PERSON]
            cid, legacy, card = person[CITIZEN_ID], person[LEGACY_ID], record[CARD_SERIAL]
            # `|`, not `or`: every identifier is added, even once the licence is already suspect.
            if ((cid is not None and citizen_id(cid)) | (legacy is not None and legacy_id(legacy))
                    | (card is not None and serial(card))):
                out.append(i)
        return out


def _reader_events(
    path: Path, batch_size: int, workdir: Path | None, on_scan: Callable[[int, int], None] | None
) -> Iterator[Event]:
    scan = scan_export(path, progress=on_scan)
    yield ("scanned", scan.data_lines, None if scan.stragglers is None else len(scan.stragglers))
    stragglers = scan.stragglers
    records: list[tuple[Any, ...]] = []
    rejects: list[Reject] = []
    rows_read = 0

    claims = RunClaims()

    def cut(rows_read: int) -> Batch:
        records.sort(key=itemgetter(NUMBER))
        # Flagged in the order the writer applies them, so "earlier" means the same to both.
        batch = Batch(records[:], claims.suspects(records), sorted(rejects, key=itemgetter(0)), rows_read)
        records.clear()
        rejects.clear()
        return batch

    def finish(group: list[Staged]) -> None:
        record, rejected = build_licence(group)
        if record is not None:
            records.append(record)
        rejects.extend(rejected)

    with ExportReader(path) as reader, StagingStore(workdir) as staging:
        parse = RowParser(reader.header).parse
        stage = staging.add
        # The current run of rows of one licence number: its first row, and the others (a list
        # only when there are any: most licences have one row).
        first: Staged | None = None
        more: list[Staged] | None = None
        run_number = ""
        for line, fields in reader:
            rows_read += 1
            if fields is None:
                rejects.append(Reject(line, "", (("unparseable_row", "the csv module could not split this record"),)))
                continue
            row = parse(fields, line)
            number = row[1]  # Staged.number
            if not number:
                # No licence to group it with: rejected on its own, and (as in the scan) it neither
                # starts nor ends a run of rows.
                rejects.append(Reject(line, row.raw_number, tuple(decode_problems(row.problems))))
            elif stragglers is None or number in stragglers:
                stage(row)
            elif number == run_number:
                if more is None:
                    more = [first, row]  # type: ignore[list-item]
                else:
                    more.append(row)
            else:
                if more is not None:
                    finish(more)
                elif first is not None:
                    if first[3]:  # Staged.problems: the licence's only row is rejected
                        rejects.append(Reject(first[0], first[1], tuple(decode_problems(first[3]))))
                    else:
                        records.append(single_licence(first))
                if len(records) >= batch_size:
                    yield ("batch", cut(rows_read))
                first, more, run_number = row, None, number
        if more is not None:
            finish(more)
        elif first is not None:
            finish([first])
        for group in staging.groups():
            finish(group)
            if len(records) >= batch_size:
                yield ("batch", cut(rows_read))
        staged = staging.rows
    # Announced once the staging file is gone: the reader process is finished when it says so.
    yield ("batch", cut(rows_read))
    yield ("done", rows_read, staged)


def _packed(batch: Batch) -> bytes:
    # A batch crosses to the writer as marshal bytes: the queue would pickle it, and pickling its
    # hundred thousand small tuples (and the rejects' named tuples) took the reader process about
    # 3 s of a million-row import, marshal about 1.7 s (py-spy). Both processes run the same
    # interpreter, which is all marshal asks.
    return marshal.dumps((batch.records, batch.suspects, [tuple(r) for r in batch.rejects], batch.rows_read))


def _unpacked(data: bytes) -> Batch:
    records, suspects, rejects, rows_read = marshal.loads(data)  # only ever bytes from our own reader process
    return Batch(records, suspects, [Reject._make(r) for r in rejects], rows_read)


def _child(events: multiprocessing.Queue[Event], path: Path, batch_size: int, workdir: Path | None) -> None:
    try:
        for event in reader_events(
            path, batch_size=batch_size, workdir=workdir, on_scan=lambda d, t: events.put(("scanning", d, t))
        ):
            events.put(("packed", _packed(event[1])) if event[0] == "batch" else event)
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
    # The child's staging file lives in a folder this process owns, so it goes away even when
    # the child has to be stopped before it can tidy up.
    scratch = tempfile.TemporaryDirectory(prefix="legacy-import-", dir=workdir)
    child = ctx.Process(target=_child, args=(events, path, batch_size, Path(scratch.name)), daemon=True)
    child.start()
    finished = False
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
            if kind == "packed":
                event = ("batch", _unpacked(event[1]))
                kind = "batch"
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
                    finished = True
                    break
    finally:
        # Ends only our own child. After "done" it is just exiting; after an error (or when the
        # caller stops early) it may be blocked on the full queue, and is stopped.
        child.join(timeout=10 if finished else 0)
        if child.is_alive():
            child.terminate()
            child.join()
        events.close()
        scratch.cleanup()
