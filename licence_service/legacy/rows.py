"""Reading the export: the header check, the streaming row reader and the per-row parser.

A row becomes a `Staged` tuple — every field normalised (dates as ISO strings, so they sort and
compare as text and cost nothing to stage) plus the row's problems. Rows are parsed one at a time;
nothing here holds more than one row, except the small per-field caches (bounded).
"""

from __future__ import annotations

import csv
import datetime
import io
from collections.abc import Callable, Iterator
from operator import itemgetter
from pathlib import Path
from typing import IO, NamedTuple

from licence_service.domain.identifiers import citizen_id_problems
from licence_service.legacy import normalise as nz

__all__ = [
    "COLUMNS",
    "ExportReader",
    "MalformedFileError",
    "RowParser",
    "Staged",
    "decode_problems",
    "encode_problems",
]

# NATIONAL-MODEL: the export's columns; order may vary and extra columns are ignored.
COLUMNS: tuple[str, ...] = (
    "SO_GPLX", "SO_PHOI", "HO_TEN", "NGAY_SINH", "GIOI_TINH", "SO_CCCD", "SO_CMND", "QUOC_TICH",
    "NOI_CU_TRU", "MA_TINH", "HANG", "NGAY_TRUNG_TUYEN", "NGAY_CAP", "NGAY_HET_HAN", "TRANG_THAI",
    "DIEM",
)

# A field over this size is a broken quote swallowing the rest of the file, not data: the csv
# module then raises for that record, which becomes one rejected row.
_FIELD_LIMIT = 64 * 1024
# Per-field caches: dates, classes, statuses and the like repeat across millions of rows, so a
# dictionary hit replaces the parse. Bounded so that high-cardinality fields (names) cannot grow
# memory with the file.
_CACHE_LIMIT = 50_000


class MalformedFileError(Exception):
    """The file as a whole cannot be imported (wrong header, not UTF-8, not CSV): nothing is written."""


class Staged(NamedTuple):
    """One parsed row. Dates are ISO strings; `problems` is `encode_problems(...)` ("" = none)."""

    line: int
    number: str  # the normalised licence number, "" when unreadable (see raw_number)
    raw_number: str
    problems: str
    card_serial: str | None
    full_name: str | None
    date_of_birth: str | None
    birth_year: int | None
    sex: str | None
    citizen_id: str | None
    legacy_id: str | None
    nationality: str | None
    province_code: str | None
    residence: str | None
    class_code: str | None
    passed_on: str | None
    issued_on: str | None
    valid_until: str | None
    status: str | None
    points: int | None


# Problems travel through the staging table as one text column: rare, so any compact form will do.
_SEP_ENTRY, _SEP_FIELD = "\x1e", "\x1f"


def encode_problems(problems: list[tuple[str, str]]) -> str:
    return _SEP_ENTRY.join(f"{code}{_SEP_FIELD}{detail}" for code, detail in problems)


def decode_problems(text: str) -> list[tuple[str, str]]:
    if not text:
        return []
    return [tuple(entry.split(_SEP_FIELD, 1)) for entry in text.split(_SEP_ENTRY)]  # type: ignore[misc]


# Licence number, card serial, citizen ID and CMND (positions in COLUMNS) differ on every licence:
# never memoised.
_UNIQUE_COLUMNS = frozenset({0, 1, 5, 6})


def _iso(fn: Callable[[str], datetime.date | None]) -> Callable[[str], str | None]:
    def convert(raw: str) -> str | None:
        value = fn(raw)
        return None if value is None else value.isoformat()

    return convert


def _dob(today: datetime.date) -> Callable[[str], tuple[str | None, int]]:
    def convert(raw: str) -> tuple[str | None, int]:
        born, year = nz.date_of_birth(raw, today)
        return (None if born is None else born.isoformat()), year

    return convert


class RowParser:
    """Turns the fields of one data row into a `Staged` row; never raises for bad content.

    ``parse(fields, line)`` runs once per row of multi-million-row files, so it is written for speed
    rather than brevity (`_compile`): fields that repeat across rows (dates, class, sex, status,
    names, ...) are a dictionary hit in a bounded memo of their normaliser (good values only: a bad
    value is rare and simply normalised again, which also records its problem); fields unique to a
    licence (number, card serial, citizen ID, CMND) take a cheap "already clean" test before the
    normaliser. Checks across fields compare ISO date strings. tests/unit/legacy/test_fast_paths.py
    checks that a parser with warm memos gives exactly the rows a fresh one does.
    """

    def __init__(self, header: list[str], today: datetime.date | None = None) -> None:
        index = column_indexes(header)
        self.width = len(header)
        self._at = tuple(index[c] for c in COLUMNS)
        self._cutoff = nz.LAST_LEGACY_ISSUE.isoformat()
        # One normaliser per column of COLUMNS, in that order.
        self._fns: tuple[Callable[[str], object], ...] = (
            nz.licence_number,
            nz.card_serial,
            nz.full_name,
            _dob(today or datetime.date.today()),
            nz.sex,
            nz.citizen_id,
            nz.legacy_id,
            nz.nationality,
            nz.residence,
            nz.province_code,
            nz.class_code,
            _iso(lambda raw: nz.class_date(raw, "bad_pass_date")),
            _iso(lambda raw: nz.class_date(raw, "bad_issue_date")),
            _iso(nz.expiry),
            nz.status,
            nz.points,
        )
        self._memo: tuple[dict[str, object], ...] = tuple({} for _ in COLUMNS)
        self._cid_memo: dict[tuple[str, object, object], list[str]] = {}
        # `parse(fields, line)`: see `_compile`.
        self.parse = self._compile()

    def _slow(self, k: int, raw: str, problems: list[tuple[str, str]]) -> object:
        """Normalise column ``k`` for real: record a problem, or memoise the good value."""
        try:
            value = self._fns[k](raw)
        except nz.FieldError as exc:
            problems.append((exc.code, exc.detail))
            return None
        memo = self._memo[k]
        if k not in _UNIQUE_COLUMNS and len(memo) < _CACHE_LIMIT:
            memo[raw] = value
        return value

    def _citizen_id_problems(self, cid: str, sex: object, birth_year: object) -> list[str]:
        # R-ID: G and YY must agree with sex and birth year. citizen_id_problems reads only
        # PPP, G and YY once the digits are known good, so its answer for the first six digits,
        # sex and year is memoised: otherwise that call is the costliest part of a row.
        # It compares only the year of the date, so 1 January stands in for a year-only birth date.
        key = (cid[:6], sex, birth_year)
        found = self._cid_memo.get(key)
        if found is None:
            # (The parse looks the memo up itself and calls this only on a miss.)
            when = datetime.date(birth_year, 1, 1) if isinstance(birth_year, int) else None
            found = citizen_id_problems(cid[:6] + "000000", sex if isinstance(sex, str) else None, when)
            if len(self._cid_memo) < _CACHE_LIMIT:
                self._cid_memo[key] = found
        return found

    def _compile(self) -> Callable[[list[str], int], Staged]:
        """The per-row parse, as a closure over the memos and the column positions (local
        variables cost less to reach than attributes, and this runs once per row)."""
        width = self.width
        at = self._at
        # In the Department's layout the fields are in COLUMNS order already.
        pick = None if at == tuple(range(width)) else itemgetter(*at)
        (m_name, m_dob, m_sex, m_nat, m_res, m_prov, m_class, m_passed, m_issued, m_expiry, m_status,
         m_points) = self._memo[2:5] + self._memo[7:]
        slow = self._slow
        cid_memo = self._cid_memo
        cid_problems = self._citizen_id_problems
        cutoff = self._cutoff
        wrong_width = self._wrong_width
        new = tuple.__new__

        def parse(fields: list[str], line: int) -> Staged:
            if len(fields) != width:
                return wrong_width(fields, line)
            (raw_number, raw_serial, raw_name, raw_dob, raw_sex, raw_cid, raw_legacy, raw_nat, raw_res, raw_prov,
             raw_class, raw_passed, raw_issued, raw_expiry, raw_status, raw_points) = (
                fields if pick is None else pick(fields))
            problems: list[tuple[str, str]] = []
            # Columns in COLUMNS order, so problems come in that order. Unique columns: an
            # "already clean" test (a clean value is its own normal form: nothing to strip);
            # the others: a memo hit by subscript (a missing key raises: three times cheaper than
            # dict.get here), else the normaliser, which records the problem or memoises.
            if len(raw_number) == 12 and raw_number.isdigit() and raw_number.isascii():
                number = raw_number
            else:
                number = slow(0, raw_number, problems)
            if 0 < len(raw_serial) <= 16 and raw_serial.isalnum() and raw_serial.isascii():
                serial = raw_serial
            else:
                serial = slow(1, raw_serial, problems)
            try:
                name = m_name[raw_name]
            except KeyError:
                name = slow(2, raw_name, problems)
            try:
                dob, birth_year = m_dob[raw_dob]
            except KeyError:
                found = slow(3, raw_dob, problems)
                dob, birth_year = found if found is not None else (None, None)  # type: ignore[misc]
            try:
                sex = m_sex[raw_sex]
            except KeyError:
                sex = slow(4, raw_sex, problems)
            if len(raw_cid) == 12 and raw_cid.isdigit() and raw_cid.isascii():
                cid = raw_cid
            elif raw_cid:
                cid = slow(5, raw_cid, problems)
            else:
                cid = None
            if not raw_legacy:
                legacy = None
            elif len(raw_legacy) == 9 and raw_legacy.isdigit() and raw_legacy.isascii():
                legacy = raw_legacy
            else:
                legacy = slow(6, raw_legacy, problems)
            try:
                nationality = m_nat[raw_nat]
            except KeyError:
                nationality = slow(7, raw_nat, problems)
            try:
                residence = m_res[raw_res]
            except KeyError:
                residence = slow(8, raw_res, problems)
            try:
                province = m_prov[raw_prov]
            except KeyError:
                province = slow(9, raw_prov, problems)
            try:
                code = m_class[raw_class]
            except KeyError:
                code = slow(10, raw_class, problems)
            try:
                passed = m_passed[raw_passed]
            except KeyError:
                passed = slow(11, raw_passed, problems)
            try:
                issued = m_issued[raw_issued]
            except KeyError:
                issued = slow(12, raw_issued, problems)
            try:
                valid_until = m_expiry[raw_expiry]
            except KeyError:
                valid_until = slow(13, raw_expiry, problems)
            try:
                status = m_status[raw_status]
            except KeyError:
                status = slow(14, raw_status, problems)
            try:
                points = m_points[raw_points]
            except KeyError:
                points = slow(15, raw_points, problems)

            if cid is not None:
                try:
                    details = cid_memo[cid[:6], sex, birth_year]
                except KeyError:
                    details = cid_problems(cid, sex, birth_year)  # type: ignore[arg-type]
                for detail in details:
                    problems.append(("bad_citizen_id", f"{cid} {detail}"))
            elif legacy is None and not raw_cid.strip() and not raw_legacy.strip():
                problems.append(("missing_identity", "neither SO_CCCD nor SO_CMND"))
            if issued is not None:
                if issued > cutoff:  # type: ignore[operator]
                    problems.append(("issued_after_2024", f"{issued}: the Department issued its last card {cutoff}"))
                if passed is not None and passed > issued:  # type: ignore[operator]
                    problems.append(("issued_before_passed", f"issued {issued}, passed {passed}"))
                if valid_until is not None and valid_until < issued:  # type: ignore[operator]
                    problems.append(("expiry_before_issue", f"expires {valid_until}, issued {issued}"))
            if passed is not None and birth_year is not None:
                born = dob if dob is not None else str(birth_year)
                if passed < born:  # type: ignore[operator]
                    problems.append(("passed_before_birth", f"passed {passed}, born {born}"))

            # tuple.__new__ builds the named tuple without its Python-level __new__.
            return new(Staged, (  # type: ignore[no-any-return]
                line, number or "", "" if number is not None else raw_number.strip(),
                encode_problems(problems) if problems else "", serial, name, dob, birth_year, sex, cid,
                legacy, nationality, province, residence, code, passed, issued, valid_until, status,
                points,
            ))

        return parse

    def _wrong_width(self, fields: list[str], line: int) -> Staged:
        at = self._at[0]
        raw = fields[at].strip() if len(fields) > at else ""
        problem = ("wrong_field_count", f"{len(fields)} fields, the header has {self.width}")
        number = _number_or_empty(raw)
        return _bare(line, number, "" if number else raw, [problem])


def _number_or_empty(raw: str) -> str:
    try:
        return nz.licence_number(raw)
    except nz.FieldError:
        return ""


def _bare(line: int, number: str, raw_number: str, problems: list[tuple[str, str]]) -> Staged:
    """A row with nothing but its licence number: it is rejected, and its number lets the
    report (and the checks against the licence's other rows) name the licence."""
    return Staged(line, number, raw_number, encode_problems(problems), *([None] * 16))  # type: ignore[arg-type]


def column_indexes(header: list[str]) -> dict[str, int]:
    """Where each required column is; raises `MalformedFileError` naming every missing or doubled one."""
    names = [h.replace("\ufeff", "").strip().upper() for h in header]
    missing = [c for c in COLUMNS if c not in names]
    doubled = sorted({c for c in COLUMNS if names.count(c) > 1})
    problems = []
    if missing:
        problems.append("missing column(s) " + ", ".join(missing))
    if doubled:
        problems.append("column(s) given twice " + ", ".join(doubled))
    if problems:
        raise MalformedFileError("wrong header: " + "; ".join(problems))
    return {c: names.index(c) for c in COLUMNS}


class ExportReader:
    """Streams (line number, fields) from an export file, one record at a time.

    Line numbers are physical lines of the file (the header is line 1), counted at the start of
    the record, so a quoted field spanning lines still points at where its row begins.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        self._raw: IO[bytes] = path.open("rb")
        # utf-8-sig drops a byte-order mark when there is one; newline="" is what csv expects so
        # that CRLF and quoted line breaks are both handled by the csv module.
        self._text = io.TextIOWrapper(self._raw, encoding="utf-8-sig", errors="strict", newline="")
        csv.field_size_limit(max(csv.field_size_limit(), _FIELD_LIMIT))
        self._reader = csv.reader(self._text, strict=False)
        self.header = self._read_header()

    def _read_header(self) -> list[str]:
        try:
            header = next(self._reader)
        except StopIteration:
            raise MalformedFileError("the file is empty: no header row") from None
        except UnicodeDecodeError as exc:
            raise MalformedFileError(f"the file is not UTF-8 ({exc.reason} in the header)") from None
        except csv.Error as exc:
            raise MalformedFileError(f"the header is not CSV ({exc})") from None
        column_indexes(header)
        return header

    @property
    def bytes_read(self) -> int:
        """Bytes consumed so far (to the read-ahead buffer: close enough for a progress bar)."""
        return self._raw.tell()

    def __iter__(self) -> Iterator[tuple[int, list[str] | None]]:
        """Yield (line, fields); fields is None for a record the csv module could not split."""
        reader = self._reader
        while True:
            start = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as exc:
                raise MalformedFileError(
                    f"the file is not UTF-8 ({exc.reason}, after line {reader.line_num})"
                ) from None
            except csv.Error:
                yield start, None
                continue
            if fields:  # a blank line is not a row
                yield start, fields

    def close(self) -> None:
        self._text.close()

    def __enter__(self) -> ExportReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
