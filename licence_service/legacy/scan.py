"""Pass 1 over the export: refuse a malformed file before anything is written, and find the
licence numbers whose rows are not next to each other.

Why a separate pass: the import writes batch by batch while it reads (that is what keeps memory
flat and lets reading and writing run side by side), so a file that turns out not to be UTF-8 at
line 900,000 must be caught before the first batch — and a licence can only be written once all its
rows are known. The scan reads the file as bytes, line by line, which costs about a tenth of the
real parse, and answers both questions:

* every line decodes as UTF-8 and the header has every column, or `MalformedFileError`;
* "stragglers": licence numbers that occur in more than one run of consecutive lines. Most exports
  list a licence's class rows together, so every other licence is complete when its run ends and is
  streamed straight through; only stragglers are set aside (an on-disk staging table, see
  `staging.py`) until the end of the file. Runs already seen are remembered in a fixed-size Bloom
  filter, so a false "seen" only sets a licence aside needlessly. When the stragglers themselves
  become too many to hold (an export sorted by class, say), the scan gives up on them and the import
  stages every row instead: slower, same result, memory still bounded.

The scan extracts the licence number with the same normaliser as the real parse, from the first
field of each line when SO_GPLX is the first column (the Department's layout) and with the csv module
otherwise. A quoted field spanning lines can only add extra run boundaries here, so it can make a
licence a straggler needlessly but never hide one.

In the Department's layout each line can be scanned on its own, so a large file is scanned in two
parts at once (`split_point`): nothing can be grouped until the scan is done. The reader's process,
the slower of the import's two, scans the licence numbers of the second half (`scan_part`), hands
its runs over and parses rows ahead. The importing process scans the first half's (`scan_export`
with ``end``), finds the licences with a run in each half (`runs_in`), and checks the whole file is
UTF-8 (`check_utf8`) before it writes anything.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from licence_service.legacy import normalise as nz
from licence_service.legacy.bloom import BloomFilter
from licence_service.legacy.rows import MalformedFileError, column_indexes

__all__ = ["PartScan", "ScanResult", "check_utf8", "runs_in", "scan_export", "scan_part", "split_point"]

_BOM = b"\xef\xbb\xbf"
# Above this many stragglers the scan stops collecting them and every row is staged instead; a set
# of 100,000 licence numbers is about 10 MB.
STRAGGLER_LIMIT = 100_000


@dataclass(frozen=True)
class ScanResult:
    header: list[str]
    data_lines: int  # physical lines after the header: the row count unless fields span lines
    size: int
    # Licence numbers to set aside until the end; None: too many, set every row aside.
    stragglers: frozenset[str] | None


@dataclass(frozen=True)
class PartScan:
    """The scan of the end of the file from a line's start (`scan_part`), made by the reader's
    process while the importing process scans the beginning.

    A licence is a straggler when it has two runs in one part (`stragglers` of that part) or a run
    in each: `runs_in` looks the beginning's runs up in `runs` (a Bloom filter's "maybe", so at
    worst set aside needlessly).
    """

    lines: int  # physical lines in the part
    stragglers: frozenset[str] | None  # within the part; None: too many
    runs: bytes  # the bits of the part's Bloom filter of run keys (`BloomFilter.to_bytes`)


def _licence_key(field: str) -> str | None:
    if len(field) == 12 and field.isascii() and field.isdigit():
        return field
    try:
        return nz.licence_number(field)
    except nz.FieldError:
        return None


_CHUNK = 1 << 20  # bytes read at a time: the block, its decoded copy and the matches stay small
# Smaller files are scanned by one process (`split_point`): two would save next to nothing.
SPLIT_FROM_BYTES = 2 * _CHUNK
# One match per complete line: the text before the first comma, and the rest of the line.
_LINE = re.compile(rb"([^,\r\n]*)[^\n]*\n")


def _decode_or_refuse(block: bytes, lines_before: int) -> str:
    try:
        return block.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = lines_before + block.count(b"\n", 0, exc.start) + 1
        raise MalformedFileError(f"the file is not UTF-8 (line {line}: {exc.reason})") from None


def _blocks(f: BinaryIO, end: int | None = None) -> Iterator[bytes]:
    """The rest of the file (up to the offset ``end``, a line's start) in large blocks of whole
    lines (the last may lack its newline)."""
    tail = b""
    left = end - f.tell() if end is not None else -1
    while left and (chunk := f.read(_CHUNK if left < 0 else min(_CHUNK, left))):
        left -= len(chunk) if left > 0 else 0
        data = tail + chunk
        cut = data.rfind(b"\n") + 1
        tail = data[cut:]
        if cut:
            yield data[:cut]
    if tail:
        yield tail + b"\n"


def _first_field_keys(
    f: BinaryIO, state: _Progress, end: int | None = None, *, checked: bool = False,
) -> Iterator[str | None]:
    """SO_GPLX first (the Department's layout): a regular expression finds the text before the
    first comma of every line of a block at C speed, and only a change of that text costs Python
    work (most consecutive lines belong to the same licence). Yields the key of each change.

    A quoted number is unquoted by stripping the quotes: a quoted field the csv module reads as a
    licence number holds only digits, spaces and dots, so both readings agree.

    ``checked``: the part is (or will be, before anything is written) checked to be UTF-8
    elsewhere (`check_utf8`), so it is not decoded here; a first field that is not UTF-8 has no key.
    """
    previous_raw: bytes | None = None
    for block in _blocks(f, end):
        if not checked:
            _decode_or_refuse(block, state.lines + state.lines_before)
        for raw in _LINE.findall(block):
            if raw != previous_raw:
                previous_raw = raw
                yield _raw_key(raw)
        state.advance(block)


def _raw_key(raw: bytes) -> str | None:
    """The licence number in a line's first field, as bytes (`_LINE`), or None."""
    # bytes.isdigit() is ASCII-only: twelve of them are a clean number already.
    if len(raw) == 12 and raw.isdigit():
        return raw.decode("ascii")
    try:
        return _licence_key(raw.strip(b'"').decode("utf-8"))
    except UnicodeDecodeError:  # (unchecked so far: `check_utf8` refuses the file)
        return None


def _csv_keys(f: BinaryIO, state: _Progress, at: int) -> Iterator[str | None]:
    """SO_GPLX elsewhere: a real csv parse, since a field before it may be quoted or span lines."""

    def lines() -> Iterator[str]:
        for block in _blocks(f):
            text = _decode_or_refuse(block, state.lines + state.lines_before)
            state.advance(block)
            yield from text.splitlines(keepends=True)

    for fields in csv.reader(lines(), strict=False):
        if fields:
            yield _licence_key(fields[at]) if len(fields) > at else None


class _Progress:
    def __init__(self, done: int, size: int, report: Callable[[int, int], None] | None, lines_before: int) -> None:
        self.lines, self.done, self.size, self.report = 0, done, size, report
        self.lines_before = lines_before  # lines before the first one read (the header: 1)

    def advance(self, block: bytes) -> None:
        self.lines += block.count(b"\n")
        self.done += len(block)
        if self.report is not None:
            self.report(min(self.done, self.size), self.size)


def _header(f: BinaryIO) -> tuple[bytes, list[str]]:
    first = f.readline()
    if not first.strip(b"\r\n" + _BOM):
        raise MalformedFileError("the file is empty: no header row")
    try:
        header_text = first.removeprefix(_BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedFileError(f"the file is not UTF-8 (line 1: {exc.reason})") from None
    header = next(csv.reader([header_text]))
    column_indexes(header)
    return first, header


def _runs(keys: Iterator[str | None], limit: int) -> tuple[BloomFilter, set[str] | None]:
    # 2**25 bits (4 MiB): a false "seen" sets a licence aside needlessly, nothing worse.
    bloom = BloomFilter(25)
    stragglers: set[str] | None = set()
    previous: str | None = None
    for key in keys:
        # A row without a readable licence number (a rejected row, the tail of a quoted
        # field) neither starts nor ends a run: the parse skips those rows the same way.
        if key is not None and key != previous:
            # By the number's own hash, not str's salted one: which licences are set aside, false
            # "seen"s included, is then the same in every run (`BloomFilter.add_number`).
            if bloom.add_number(int(key)) and stragglers is not None:
                stragglers.add(key)
                if len(stragglers) > limit:
                    stragglers = None
            previous = key
    return bloom, stragglers


def scan_export(
    path: Path,
    progress: Callable[[int, int], None] | None = None,
    straggler_limit: int | None = None,
    end: int | None = None,
) -> ScanResult:
    """Check the file is importable and find its stragglers; raises `MalformedFileError`.

    ``straggler_limit`` defaults to `STRAGGLER_LIMIT` (read at call time). ``end``: scan only the
    licence numbers up to that offset (from `split_point`): whether the part is UTF-8 is then left
    to `check_utf8`, and the licences with a run in the rest to `runs_in`.
    """
    limit = STRAGGLER_LIMIT if straggler_limit is None else straggler_limit
    size = path.stat().st_size
    with path.open("rb") as f:
        first, header = _header(f)
        at = column_indexes(header)["SO_GPLX"]
        if end is not None and at != 0:
            raise ValueError("only a file with SO_GPLX first can be scanned in parts")
        state = _Progress(len(first), size if end is None else end, progress, lines_before=1)
        keys = _first_field_keys(f, state, end, checked=end is not None) if at == 0 else _csv_keys(f, state, at)
        _, stragglers = _runs(keys, limit)
    return ScanResult(
        header=header,
        data_lines=state.lines,
        size=size,
        stragglers=None if stragglers is None else frozenset(stragglers),
    )


def runs_in(path: Path, end: int, runs: BloomFilter, limit: int | None = None) -> frozenset[str] | None:
    """The licence numbers with a run before the offset ``end`` that may also be in ``runs`` (the
    runs of the rest of the file, `scan_part`): stragglers. None when they are more than ``limit``
    (default `STRAGGLER_LIMIT`). A second pass over the part's licence numbers, since the Bloom
    filter of its own runs cannot list them."""
    limit = STRAGGLER_LIMIT if limit is None else limit
    found: set[str] = set()
    with path.open("rb") as f:
        _header(f)
        for block in _blocks(f, end):
            # Runs do not matter here, only which licence numbers the part has: each block's
            # distinct first fields, found at C speed.
            for raw in set(_LINE.findall(block)):
                key = _raw_key(raw)
                if key is not None and runs.has_number(int(key)):
                    found.add(key)
            if len(found) > limit:
                return None
    return frozenset(found)


def check_utf8(path: Path) -> None:
    """Refuse (`MalformedFileError`, naming the line) a file whose lines after the header are not
    all UTF-8: what a scan in parts (`scan_export` with ``end``, `scan_part`) leaves to be checked."""
    with path.open("rb") as f:
        f.readline()
        state = _Progress(f.tell(), path.stat().st_size, None, lines_before=1)
        for block in _blocks(f):
            _decode_or_refuse(block, state.lines + state.lines_before)
            state.advance(block)


def split_point(path: Path) -> int | None:
    """Where to split the scan between two processes: the start of the line at or after the middle
    of the file; None when the file cannot be split (SO_GPLX not first, so a line's licence number
    may depend on the lines before it, or a header the whole scan should refuse)."""
    size = path.stat().st_size
    with path.open("rb") as f:
        try:
            first, header = _header(f)
        except MalformedFileError:
            return None
        if column_indexes(header)["SO_GPLX"] != 0 or size - len(first) < SPLIT_FROM_BYTES:
            return None
        f.seek(size // 2)
        f.readline()
        at = f.tell()
    return at if at < size else None


def scan_part(
    path: Path, start: int, progress: Callable[[int, int], None] | None = None, straggler_limit: int | None = None,
) -> PartScan:
    """Scan the file's licence numbers from the offset ``start`` (a line's start, from
    `split_point`) to its end; lines are counted from there. Whether those bytes are UTF-8 is left
    to `check_utf8`, which the importing process runs before anything is written."""
    limit = STRAGGLER_LIMIT if straggler_limit is None else straggler_limit
    size = path.stat().st_size
    with path.open("rb") as f:
        f.seek(start)
        state = _Progress(start, size, progress, lines_before=0)
        runs, stragglers = _runs(_first_field_keys(f, state, checked=True), limit)
    return PartScan(
        lines=state.lines, stragglers=None if stragglers is None else frozenset(stragglers), runs=runs.to_bytes(),
    )
