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

__all__ = ["ScanResult", "scan_export"]

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


def _licence_key(field: str) -> str | None:
    if len(field) == 12 and field.isascii() and field.isdigit():
        return field
    try:
        return nz.licence_number(field)
    except nz.FieldError:
        return None


_CHUNK = 1 << 20  # bytes read at a time: the block, its decoded copy and the matches stay small
# One match per complete line: the text before the first comma, and the rest of the line.
_LINE = re.compile(rb"([^,\r\n]*)[^\n]*\n")


def _decode_or_refuse(block: bytes, lines_before: int) -> str:
    try:
        return block.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = lines_before + block.count(b"\n", 0, exc.start) + 1
        raise MalformedFileError(f"the file is not UTF-8 (line {line}: {exc.reason})") from None


def _blocks(f: BinaryIO) -> Iterator[bytes]:
    """The rest of the file in large blocks of whole lines (the last may lack its newline)."""
    tail = b""
    while chunk := f.read(_CHUNK):
        data = tail + chunk
        cut = data.rfind(b"\n") + 1
        tail = data[cut:]
        if cut:
            yield data[:cut]
    if tail:
        yield tail + b"\n"


def _first_field_keys(f: BinaryIO, state: _Progress) -> Iterator[str | None]:
    """SO_GPLX first (the Department's layout): a regular expression finds the text before the
    first comma of every line of a block at C speed, and only a change of that text costs Python
    work (most consecutive lines belong to the same licence). Yields the key of each change.

    A quoted number is unquoted by stripping the quotes: a quoted field the csv module reads as a
    licence number holds only digits, spaces and dots, so both readings agree.
    """
    previous_raw: bytes | None = None
    for block in _blocks(f):
        _decode_or_refuse(block, state.lines + 1)  # + the header line
        for raw in _LINE.findall(block):
            if raw != previous_raw:
                previous_raw = raw
                # bytes.isdigit() is ASCII-only: twelve of them are a clean number already.
                if len(raw) == 12 and raw.isdigit():
                    yield raw.decode("ascii")
                else:
                    yield _licence_key(raw.strip(b'"').decode("utf-8"))
        state.advance(block)


def _csv_keys(f: BinaryIO, state: _Progress, at: int) -> Iterator[str | None]:
    """SO_GPLX elsewhere: a real csv parse, since a field before it may be quoted or span lines."""

    def lines() -> Iterator[str]:
        for block in _blocks(f):
            text = _decode_or_refuse(block, state.lines + 1)  # + the header line
            state.advance(block)
            yield from text.splitlines(keepends=True)

    for fields in csv.reader(lines(), strict=False):
        if fields:
            yield _licence_key(fields[at]) if len(fields) > at else None


class _Progress:
    def __init__(self, done: int, size: int, report: Callable[[int, int], None] | None) -> None:
        self.lines, self.done, self.size, self.report = 0, done, size, report

    def advance(self, block: bytes) -> None:
        self.lines += block.count(b"\n")
        self.done += len(block)
        if self.report is not None:
            self.report(min(self.done, self.size), self.size)


def scan_export(
    path: Path,
    progress: Callable[[int, int], None] | None = None,
    straggler_limit: int | None = None,
) -> ScanResult:
    """Check the file is importable and find its stragglers; raises `MalformedFileError`.

    ``straggler_limit`` defaults to `STRAGGLER_LIMIT` (read at call time).
    """
    limit = STRAGGLER_LIMIT if straggler_limit is None else straggler_limit
    size = path.stat().st_size
    with path.open("rb") as f:
        first = f.readline()
        if not first.strip(b"\r\n" + _BOM):
            raise MalformedFileError("the file is empty: no header row")
        try:
            header_text = first.removeprefix(_BOM).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedFileError(f"the file is not UTF-8 (line 1: {exc.reason})") from None
        header = next(csv.reader([header_text]))
        at = column_indexes(header)["SO_GPLX"]

        state = _Progress(len(first), size, progress)
        keys = _first_field_keys(f, state) if at == 0 else _csv_keys(f, state, at)

        # 2**25 bits (4 MiB): a false "seen" sets a licence aside needlessly, nothing worse.
        bloom = BloomFilter(25)
        stragglers: set[str] | None = set()
        previous: str | None = None
        for key in keys:
            # A row without a readable licence number (a rejected row, the tail of a quoted
            # field) neither starts nor ends a run: the parse skips those rows the same way.
            if key is not None and key != previous:
                if bloom.add(key) and stragglers is not None:
                    stragglers.add(key)
                    if len(stragglers) > limit:
                        stragglers = None
                previous = key
    return ScanResult(
        header=header,
        data_lines=state.lines,
        size=size,
        stragglers=None if stragglers is None else frozenset(stragglers),
    )
