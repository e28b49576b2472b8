"""The reading side of the import: file → scan → parse → group → batches of licences.

`reader_events` is a generator of events (see `Event`); `run_reader` runs it either in this process
or in a child process that sends the events through a bounded queue. The child is what makes the
import use both cores of the machine: parsing and grouping (pure Python) run there while this
process writes the previous batch into the register. The bounded queue keeps memory flat: the
reader waits when the writer is behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import itertools
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

from licence_service.legacy import scan as scan_module
from licence_service.legacy.bloom import BloomFilter
from licence_service.legacy.grouping import (
    BIRTH_YEAR,
    CITIZEN_ID,
    LEGACY_ID,
    NO_RESTRICTIONS,
    NUMBER,
    Reject,
    build_licence,
    single_licence,
)
from licence_service.legacy.rows import ExportReader, MalformedFileError, RowParser, Staged, decode_problems
from licence_service.legacy.scan import check_utf8, runs_in, scan_export, scan_part, split_point
from licence_service.legacy.staging import StagingStore

__all__ = ["Batch", "ReaderFailedError", "RunClaims", "gc_paused", "reader_events", "run_reader", "single_row"]

BATCH_SIZE = 10_000  # licences per batch: big enough for bulk inserts, small enough for memory
_QUEUE_DEPTH = 2  # batches in flight between the reader process and the writer


class Batch(NamedTuple):
    records: list[tuple[Any, ...]]  # LicenceRecord layout, ordered by licence number (index-friendly)
    # Positions in `records` of the licences that may claim an identifier an earlier licence of the
    # run claimed (see RunClaims), in ascending order.
    suspects: list[int]
    rejects: list[Reject]  # rows rejected while reading, in line order
    rows_read: int  # data rows read so far, for the progress bar
    # With the rows layout (`reader_events(rows_layout=True)`): the batch's unflagged licences as the
    # rows they become (`RunClaims.split`), and `records` holds only the flagged ones.
    rows: tuple[Any, ...] | None = None


class ReaderFailedError(RuntimeError):
    """The reader process failed for a reason other than a malformed file (its traceback is the message)."""


# Events: ("scanned", data_lines, stragglers or None when every row is staged), ("batch", Batch),
# ("done", rows_read, rows_staged); from a reader process, first its share of the scan (`run_reader`):
# ("part", lines, stragglers or None, the bits of the Bloom filter of its runs).
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
    rows_layout: bool | Callable[[], bool] = False,
) -> Iterator[Event]:
    """Scan, then parse and group the export, yielding batches of licences as they complete.

    ``rows_layout``: batches carry their unflagged licences as the register's rows
    (`RunClaims.split`; for a register empty at the start of the run, on SQLite); a callable is
    asked once the scan is done.
    Raises `MalformedFileError` from the scan, before the first batch.
    """
    with gc_paused():
        yield from _reader_events(path, batch_size, workdir, on_scan, None, rows_layout)


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
        return self._claim(records, False)[0]

    def split(self, records: list[tuple[Any, ...]]) -> tuple[list[tuple[Any, ...]], tuple[Any, ...]]:
        """``records`` (taken as by `suspects`; a licence of one row may also come as its
        `single_row` pair) as the flagged ones (records, always), and the others laid out as the
        register's rows for a register that held nothing before the run
        (`RegisterWriter.insert_new_rows`):

        * people: one flat list, the person tuples' values (`PersonData` layout) one after another,
          in order: the k-th person (from 1) is the holder of the k-th licence;
        * licences: one flat list, five values a licence: number, k, issued_on, status, points;
        * classes: one flat list, six values a class (`ClassData` layout);
        * cards: one flat list, three values a card: serial, licence number, issued_on (each card
          is valid, which the statement says);
        * counts: (licences, classes, rows imported, holders known by year of birth, holders with
          no citizen ID).

        Flat lists of plain values cross the process boundary and go into multi-row INSERT
        statements with the least work on the writing side; flagging and laying out are one pass
        over the batch.
        """
        flagged, rows = self._claim(records, True)
        assert rows is not None  # laid out when asked
        return flagged, rows

    def _claim(self, records: list[tuple[Any, ...]], lay_out: bool) -> tuple[list[Any], tuple[Any, ...] | None]:
        citizen_id, legacy_id, serial = self._citizen_ids.add, self._legacy_ids.add, self._serials.add
        flagged: list[Any] = []
        people: list[Any] = []
        licences: list[Any] = []
        classes: list[Any] = []
        cards: list[Any] = []
        n_classes = n_rows = year_only = cmnd_only = k = 0
        for i, record in enumerate(records):
            one_row = len(record) == 2
            if one_row:
                # A licence of one row, as (number, its Staged row) (`single_row`): laid out straight
                # from the row, as `grouping.single_licence` would build it, without the record's
                # five tuples. Building and freeing them cost ~1.7 µs a licence, and most licences
                # have one row: the reader alone used ~2 % less CPU without them (bench/README.md).
                (_, number, _, _, card, name, dob, birth_year, sex, cid, legacy, nationality, province, residence,
                 code, passed, issued_on, valid_until, status, points) = record[1]
            else:
                number, lines, person, issued_on, status, points, card, licence_classes = record
                cid, legacy = person[CITIZEN_ID], person[LEGACY_ID]
            # `|`, not `or`: every identifier is added, even once the licence is already suspect.
            if ((cid is not None and citizen_id(cid)) | (legacy is not None and legacy_id(legacy))
                    | (card is not None and serial(card))):
                flagged.append((single_licence(record[1]) if one_row else record) if lay_out else i)
                continue
            if not lay_out:
                continue
            k += 1
            licences += (number, k, issued_on, status, points)
            if card is not None:
                cards += (card, number, issued_on)
            if cid is None:
                cmnd_only += 1
            if one_row:
                year = None if dob is not None else birth_year
                people += (cid, legacy, name, dob, year, sex, nationality, province, residence)
                classes += (number, code, passed, issued_on, valid_until, NO_RESTRICTIONS)
                n_classes += 1
                n_rows += 1
            else:
                year = person[BIRTH_YEAR]
                people += person
                for licence_class in licence_classes:
                    classes += licence_class
                n_classes += len(licence_classes)
                n_rows += len(lines)
            if year is not None:
                year_only += 1
        if not lay_out:
            return flagged, None
        return flagged, (people, licences, classes, cards, (k, n_classes, n_rows, year_only, cmnd_only))


def single_row(row: Staged) -> tuple[str, Staged]:
    """The licence of a licence number's only row (no problems of its own) as `RunClaims` takes it
    besides records: its number first, as a record's, so that a batch of both sorts by number."""
    return (row[1], row)


class Verdict(NamedTuple):
    """What the reader needs to know before it groups rows: the scan's findings (`scan.ScanResult`),
    and whether batches come in the rows layout."""

    as_rows: bool
    data_lines: int
    stragglers: frozenset[str] | None


# Rows parsed ahead while the other process finishes the scan, at most (~0.55 KB each): a little
# more than the reader parses meanwhile on this machine. Reached, the reader waits.
_AHEAD_LIMIT = 50_000
_AHEAD_STEP = 1024  # rows parsed between two looks for the verdict


def _parse_ahead(
    parsed: Iterator[tuple[int, Staged | None]], ahead: list[tuple[int, Staged | None]],
    awaited: Callable[[bool], Verdict | None],
) -> Verdict:
    """Parse rows into ``ahead`` until the scan's verdict comes (`run_reader`), and return it.

    The scan must be done before any row is grouped (it says which licences to set aside) and
    before anything is written (it refuses a malformed file), but parsing needs neither: the reader,
    the slower of the import's two processes, parses while the other one finishes the scan, instead
    of waiting (bench/README.md, 2026-12-08). Should the parse meet a byte that is not UTF-8, the
    reader reports it, but the importing process reads that only once its own check of the whole
    file is done, and that check refuses the file with the message naming the line.
    """
    while len(ahead) < _AHEAD_LIMIT:
        taken = len(ahead)
        ahead.extend(itertools.islice(parsed, _AHEAD_STEP))
        if len(ahead) - taken < _AHEAD_STEP:
            break  # the end of the file
        verdict = awaited(False)
        if verdict is not None:
            return verdict
    return awaited(True)  # type: ignore[return-value]


def _reader_events(
    path: Path, batch_size: int, workdir: Path | None, on_scan: Callable[[int, int], None] | None,
    awaited: Callable[[bool], Verdict | None] | None, rows_layout: bool | Callable[[], bool] = False,
    split: int | None = None,
) -> Iterator[Event]:
    """``awaited``: the file is scanned elsewhere (`run_reader`); ``awaited(block)`` gives the
    verdict once there is one (None if not yet, unless ``block``), and rows are parsed ahead
    meanwhile. ``split``: the scan of the file from that offset on is made here first, and handed
    over as a "part" event. Without ``awaited``, the whole scan is made here first, and
    ``rows_layout`` says the layout."""
    verdict: Verdict | None = None
    if split is not None:
        part = scan_part(path, split)
        yield ("part", part.lines, part.stragglers, part.runs)
    if awaited is None:
        scan = scan_export(path, progress=on_scan)
        layout = rows_layout() if callable(rows_layout) else rows_layout
        verdict = Verdict(layout, scan.data_lines, scan.stragglers)
    records: list[tuple[Any, ...]] = []
    rejects: list[Reject] = []
    rows_read = 0

    claims = RunClaims()

    def cut(rows_read: int) -> Batch:
        records.sort(key=itemgetter(NUMBER))
        # Flagged in the order the writer applies them, so "earlier" means the same to both.
        if as_rows:
            flagged, rows = claims.split(records)
            batch = Batch(flagged, list(range(len(flagged))), sorted(rejects, key=itemgetter(0)), rows_read, rows)
        else:
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
        parsed: Iterator[tuple[int, Staged | None]] = (
            (line, None if fields is None else parse(fields, line)) for line, fields in reader)
        if verdict is None:
            assert awaited is not None
            ahead: list[tuple[int, Staged | None]] = []
            verdict = _parse_ahead(parsed, ahead, awaited)
            # The rows parsed ahead first, then the rest; the list goes once they are taken.
            parsed = itertools.chain(ahead, parsed)
            del ahead
        as_rows, stragglers = verdict.as_rows, verdict.stragglers
        yield ("scanned", verdict.data_lines, None if stragglers is None else len(stragglers))
        stage = staging.add
        # The current run of rows of one licence number: its first row, and the others (a list
        # only when there are any: most licences have one row).
        first: Staged | None = None
        more: list[Staged] | None = None
        # The licence number of the last run of rows (rows without a readable number are skipped,
        # as in the scan), and whether that run is set aside.
        run_number, run_staged = "", False
        for line, row in parsed:
            rows_read += 1
            if row is None:
                rejects.append(Reject(line, "", (("unparseable_row", "the csv module could not split this record"),)))
                continue
            number = row[1]  # Staged.number
            if not number:
                # No licence to group it with: rejected on its own, and (as in the scan) it neither
                # starts nor ends a run of rows.
                rejects.append(Reject(line, row.raw_number, tuple(decode_problems(row.problems))))
            elif number == run_number:
                if run_staged:
                    stage(row)
                elif more is None:
                    more = [first, row]  # type: ignore[list-item]
                else:
                    more.append(row)
            else:
                run_number = number
                run_staged = stragglers is None or number in stragglers
                if run_staged:
                    # (The licence of the current unstaged run, if any, cannot have another run
                    # after this one: it would be a straggler.)
                    stage(row)
                    continue
                if more is not None:
                    finish(more)
                elif first is not None:
                    if first[3]:  # Staged.problems: the licence's only row is rejected
                        rejects.append(Reject(first[0], first[1], tuple(decode_problems(first[3]))))
                    else:
                        records.append(single_row(first) if as_rows else single_licence(first))
                if len(records) >= batch_size:
                    yield ("batch", cut(rows_read))
                first, more = row, None
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
    # A batch crosses to the writer as marshal bytes: pickling its hundred thousand small tuples
    # (and the rejects' named tuples) took the reader process about 3 s of a million-row import,
    # marshal about 1.7 s (py-spy). Both processes run the same interpreter, which is all marshal
    # asks.
    return marshal.dumps(
        ("batch", batch.records, batch.suspects, [tuple(r) for r in batch.rejects], batch.rows_read, batch.rows)
    )


def _unpacked(data: bytes) -> Event:
    event = marshal.loads(data)  # only ever bytes from our own reader
    if event[0] != "batch":
        return event  # type: ignore[no-any-return]
    _, records, suspects, rejects, rows_read, rows = event
    return ("batch", Batch(records, suspects, [Reject._make(r) for r in rejects], rows_read, rows))


# How much a pipe buffers (Linux's F_SETPIPE_SZ; 1 MiB is the unprivileged maximum by default): a
# batch is about 2 MB, so the reader's write returns after the writer's receiving thread has taken
# the first half, in two wake-ups instead of some thirty.
_PIPE_BYTES = 1 << 20


def _widen(connection: Any) -> None:
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or a lower limit: the default
        fcntl.fcntl(connection.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)


def _child(
    events: Any, verdicts: multiprocessing.Queue[Verdict], path: Path, batch_size: int, workdir: Path | None,
    split: int | None,
) -> None:
    # Every event is written to the pipe by this thread itself. Through a multiprocessing.Queue a
    # feeder thread writes them, and it had to win the GIL from this thread, which parses without
    # pause: the first batches reached the writer ~0.13 s after they were ready, while it waited.
    send = events.send_bytes

    def awaited(block: bool) -> Verdict | None:
        try:
            return verdicts.get(block)
        except queue_module.Empty:
            return None

    try:
        with gc_paused():
            for event in _reader_events(path, batch_size, workdir, None, awaited, split=split):
                send(_packed(event[1]) if event[0] == "batch" else marshal.dumps(event))
    except MalformedFileError as exc:
        send(marshal.dumps(("malformed", str(exc))))
    except BaseException:  # reported to the parent, which decides; the child just ends
        send(marshal.dumps(("failed", traceback.format_exc())))
    finally:
        events.close()


class _Receiver:
    """Takes the reader process's events off the pipe as they come, on a thread of its own, and
    keeps up to ``depth`` of them, so that the reader runs ahead of the writer by that much (the
    pipe alone holds half a batch) without a feeder thread on its side. The thread needs the GIL
    only between reads, which the writer, mostly inside SQLite, lets go of all the time."""

    def __init__(self, connection: Any, depth: int) -> None:
        self._connection = connection
        self._events: queue_module.Queue[bytes | None] = queue_module.Queue(maxsize=depth)
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="legacy-import-receiver", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop:
                data = self._connection.recv_bytes()
                while not self._stop:
                    try:
                        self._events.put(data, timeout=0.1)
                        break
                    except queue_module.Full:
                        continue
        except (EOFError, OSError):  # the reader process ended (or the pipe was closed)
            pass
        self._events.put(None)

    def get(self, timeout: float) -> bytes | None:
        """The next event's bytes; None once the reader process has ended without sending more.
        Raises queue.Empty after ``timeout`` seconds."""
        return self._events.get(timeout=timeout)

    def close(self) -> None:
        """Stop the thread: call once the reader process has ended (so the pipe is at its end)."""
        self._stop = True
        with contextlib.suppress(queue_module.Empty):
            while True:
                self._events.get_nowait()
        self._thread.join()
        self._connection.close()


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
    rows_layout: Callable[[], bool] | None = None,
) -> Iterator[Event]:
    """`reader_events`, in a child process when ``parallel``; raises `MalformedFileError` alike.

    ``rows_layout`` is called once, in this process, after the child process has started (so that
    it is forked before this process opens anything): whether batches come in the rows layout.

    The scan is made here while the child parses ahead (`_parse_ahead`): the child is the slower
    of the two processes, and this one has nothing to write before the first batch anyway. When the
    file can be split (`scan.split_point`), the child first scans the second half's licence numbers
    (`scan.scan_part`) while this process scans the first half's; this process then finds the
    licences with a run in each (`scan.runs_in`) and checks the whole file is UTF-8.
    """
    if not parallel:
        yield from reader_events(path, batch_size=batch_size, workdir=workdir, on_scan=on_scan,
                                 rows_layout=rows_layout or False)
        return
    ctx = _context()
    split = split_point(path)
    receiving, sending = ctx.Pipe(duplex=False)
    _widen(sending)
    verdicts = ctx.Queue()
    # The child's staging file lives in a folder this process owns, so it goes away even when
    # the child has to be stopped before it can tidy up.
    scratch = tempfile.TemporaryDirectory(prefix="legacy-import-", dir=workdir)
    child = ctx.Process(target=_child, args=(sending, verdicts, path, batch_size, Path(scratch.name), split),
                        daemon=True)
    child.start()
    sending.close()  # the child's end: once the child is gone, the pipe reports its end
    events = _Receiver(receiving, _QUEUE_DEPTH)
    finished = False

    def received() -> Event:
        while True:
            try:
                data = events.get(timeout=1.0)
            except queue_module.Empty:
                if child.is_alive():
                    continue
                try:  # its last events, then the end of the pipe, are still to come through
                    data = events.get(timeout=1.0)
                except queue_module.Empty:
                    data = None
            if data is None:
                # The pipe has ended, so the child is exiting: wait for its exit code, which the
                # message gives (a loaded machine can take a while to reap it).
                child.join(timeout=10)
                raise ReaderFailedError(f"the reader process ended unexpectedly (exit code {child.exitcode})")
            event = _unpacked(data)
            if event[0] == "malformed":
                raise MalformedFileError(event[1])
            if event[0] == "failed":
                raise ReaderFailedError(event[1])
            return event

    try:
        as_rows = bool(rows_layout()) if rows_layout is not None else False
        # A malformed file raises here, and the child, parsing ahead, is stopped below.
        if split is None:
            scan = scan_export(path, progress=on_scan)
            verdicts.put(Verdict(as_rows, scan.data_lines, scan.stragglers))
        else:
            scan = scan_export(path, progress=on_scan, end=split)  # this process's share: licence numbers
            _, lines, stragglers, runs = received()  # the child's share ("part")
            if scan.stragglers is not None and stragglers is not None:
                across = runs_in(path, split, BloomFilter.from_bytes(runs))
                stragglers = None if across is None else scan.stragglers | stragglers | across
                if stragglers is not None and len(stragglers) > scan_module.STRAGGLER_LIMIT:
                    stragglers = None
            else:
                stragglers = None
            verdicts.put(Verdict(as_rows, scan.data_lines + lines, stragglers))
            # While the child groups the rows parsed ahead: the whole file is UTF-8, before anything
            # is written.
            check_utf8(path)
        while True:
            event = received()
            yield event
            if event[0] == "done":
                finished = True
                break
    finally:
        # Ends only our own child. After "done" it is just exiting; after an error (or when the
        # caller stops early) it may be blocked on the full pipe, and is stopped.
        child.join(timeout=10 if finished else 0)
        if child.is_alive():
            child.terminate()
            child.join()
        events.close()
        verdicts.close()
        verdicts.join_thread()  # its feeder thread gone, a later import in this process can fork again
        scratch.cleanup()
