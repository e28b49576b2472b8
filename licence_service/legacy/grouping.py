"""The rows of one licence number become one licence (NATIONAL-MODEL: "One row per class").

Pure: no database, no file. `build_licence` takes every row of one licence number in file order and
decides which rows are accepted and what licence they describe; the register side (`register.py`)
then checks it against what is already stored.

Rules, in the order they are applied:

* The person of a licence is defined by its first row without problems of its own (the reference
  row). Every other row is compared with the person as known so far and is rejected as
  `conflicting_person` when any of name (R-NAME), sex, date of birth, citizen ID, CMND or
  nationality contradicts it. An empty citizen ID or CMND, and a year-only date of birth of the same
  year, do not contradict: they say less, not something else. What a later accepted row adds (a
  citizen ID, a full date of birth) completes the person. Residence is not part of the comparison:
  the reference row's residence is kept.
* A row whose class is already on the licence from an earlier accepted row is `duplicate_class`.
* A row with problems of its own is rejected with those problems plus any of the above.
* The licence's issue date is the latest NGAY_CAP of its accepted rows (NATIONAL-MODEL), its card
  serial the one on the most recently issued row that has one. Status and points are per licence
  in the national model but repeated per row in the export; when rows disagree the most severe
  status and the lowest points are kept, so a licence never looks more usable than a row says.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from licence_service.domain.classes import OLD_CLASS_ORDER
from licence_service.domain.names import same_name
from licence_service.legacy.rows import Staged, decode_problems

__all__ = ["ClassData", "LicenceRecord", "PersonData", "Reject", "build_licence", "single_licence", "view"]


class PersonData(NamedTuple):
    citizen_id: str | None
    legacy_id: str | None
    full_name: str
    date_of_birth: str | None  # ISO date
    birth_year: int | None  # set only when the date of birth is known by its year alone
    sex: str
    nationality: str
    province_code: str | None
    residence: str | None


class ClassData(NamedTuple):
    """One class, laid out as the `licence_classes` row it becomes."""

    licence_number: str
    code: str
    passed_on: str  # ISO dates
    issued_on: str
    valid_until: str | None  # None: no expiry
    restrictions: str  # JSON text: "[]", vn-2017 classes carry none (R-CONV adds them at renewal)


class LicenceRecord(NamedTuple):
    """The layout of a licence record. `build_licence` returns plain tuples in this layout (the
    person and classes plain tuples too, laid out as `PersonData` and `ClassData`): they cross a
    process boundary by the hundred thousand as marshal bytes (pipeline._packed), which takes plain
    tuples only. `view` gives the named form."""

    number: str
    lines: tuple[int, ...]  # the accepted rows
    person: PersonData
    issued_on: str
    status: str
    points: int
    card_serial: str | None
    classes: tuple[ClassData, ...]  # in R-CLASS printing order


# Positions in a record, for the hot paths that index plain tuples.
NUMBER, LINES, PERSON, ISSUED_ON, STATUS, POINTS, CARD_SERIAL, CLASSES = range(8)
# Positions in a person.
CITIZEN_ID, LEGACY_ID, BIRTH_YEAR = 0, 1, 4
NO_RESTRICTIONS = "[]"


def view(record: tuple[Any, ...]) -> LicenceRecord:
    """A record with named fields, nested ones included."""
    return LicenceRecord(
        *record[:PERSON], PersonData._make(record[PERSON]), *record[ISSUED_ON:CLASSES],
        tuple(ClassData._make(c) for c in record[CLASSES]),
    )


class Reject(NamedTuple):
    """A row that is not imported: its line, its licence number as written, and every reason."""

    line: int
    licence_number: str
    reasons: tuple[tuple[str, str], ...]


# NATIONAL-MODEL statuses a legacy row can carry, least to most severe.
_SEVERITY = {"valid": 0, "confiscated": 1, "suspended": 2, "revoked": 3}
_CLASS_RANK = {code: i for i, code in enumerate(OLD_CLASS_ORDER)}


def _person_of(row: Staged) -> PersonData:
    return PersonData(
        row.citizen_id, row.legacy_id, row.full_name, row.date_of_birth,  # type: ignore[arg-type]
        None if row.date_of_birth is not None else row.birth_year,
        row.sex, row.nationality, row.province_code, row.residence,  # type: ignore[arg-type]
    )


def _conflicts(person: PersonData, row: Staged) -> list[str]:
    """How ``row`` contradicts ``person`` (fields the row could not read are not compared)."""
    out = []
    if row.full_name is not None and row.full_name != person.full_name and not same_name(
        row.full_name, person.full_name
    ):
        out.append(f"name {row.full_name!r} is not {person.full_name!r}")
    if row.sex is not None and row.sex != person.sex:
        out.append(f"sex {row.sex} is not {person.sex}")
    if row.birth_year is not None:
        known_year = person.birth_year if person.date_of_birth is None else int(person.date_of_birth[:4])
        if row.date_of_birth is not None and person.date_of_birth is not None:
            if row.date_of_birth != person.date_of_birth:
                out.append(f"date of birth {row.date_of_birth} is not {person.date_of_birth}")
        elif row.birth_year != known_year:
            out.append(f"year of birth {row.birth_year} is not {known_year}")
    if row.citizen_id and person.citizen_id and row.citizen_id != person.citizen_id:
        out.append(f"citizen ID {row.citizen_id} is not {person.citizen_id}")
    if row.legacy_id and person.legacy_id and row.legacy_id != person.legacy_id:
        out.append(f"CMND {row.legacy_id} is not {person.legacy_id}")
    if row.nationality is not None and row.nationality != person.nationality:
        out.append(f"nationality {row.nationality} is not {person.nationality}")
    return out


def _completed(person: PersonData, row: Staged) -> PersonData:
    """``person`` with what an accepted, agreeing ``row`` knows and it did not."""
    changes = {}
    if person.citizen_id is None and row.citizen_id is not None:
        changes["citizen_id"] = row.citizen_id
    if person.legacy_id is None and row.legacy_id is not None:
        changes["legacy_id"] = row.legacy_id
    if person.date_of_birth is None and row.date_of_birth is not None:
        changes["date_of_birth"] = row.date_of_birth
        changes["birth_year"] = None
    return person._replace(**changes) if changes else person


def build_licence(rows: Sequence[Staged]) -> tuple[tuple[Any, ...] | None, list[Reject]]:
    """Decide the licence described by ``rows`` (all rows of one number, in file order).

    Returns the licence, a plain tuple laid out as `LicenceRecord` (None when no row is
    accepted), and the rejected rows with every reason.
    """
    if len(rows) == 1:  # the commonest case, kept cheap: most licences have one class
        (row,) = rows
        if row.problems:
            return None, [Reject(row.line, row.number, tuple(decode_problems(row.problems)))]
        return single_licence(row), []
    if _in_agreement(rows):
        first = rows[0]
        return _licence(first[1], rows, _person_tuple(first)), []
    reference = next((r for r in rows if not r.problems), None)
    if reference is None:
        return None, [Reject(r.line, r.number, tuple(decode_problems(r.problems))) for r in rows]

    person = _person_of(reference)
    accepted = [reference]
    class_line = {reference.class_code: reference.line}
    rejects: list[Reject] = []
    for row in rows:
        if row is reference:
            continue
        reasons = decode_problems(row.problems)
        conflicts = _conflicts(person, row)
        if conflicts:
            reasons.append(("conflicting_person", f"{'; '.join(conflicts)} (line {reference.line})"))
        if row.class_code in class_line:
            reasons.append(("duplicate_class", f"{row.class_code} is already on line {class_line[row.class_code]}"))
        if reasons:
            rejects.append(Reject(row.line, row.number, tuple(reasons)))
            continue
        accepted.append(row)
        class_line[row.class_code] = row.line  # type: ignore[index]
        person = _completed(person, row)
    accepted.sort(key=lambda r: r.line)
    return _licence(reference.number, accepted, person), rejects


def single_licence(row: Staged) -> tuple[Any, ...]:
    """The licence of a licence number's only row, which has no problems of its own: the commonest
    licence by far, built as directly as possible (see LicenceRecord for the layout)."""
    (line, number, _, _, serial, name, dob, birth_year, sex, cid, legacy, nationality, province, residence,
     code, passed, issued, valid_until, status, points) = row
    person = (cid, legacy, name, dob, None if dob is not None else birth_year, sex, nationality, province, residence)
    licence_class = (number, code, passed, issued, valid_until, NO_RESTRICTIONS)
    return (number, (line,), person, issued, status, points, serial, (licence_class,))


# Positions in a Staged row, for the hot paths below (a named field costs a call to reach).
_LINE, _NUMBER, _PROBLEMS, _SERIAL, _CLASS_CODE, _ISSUED_ON, _STATUS, _POINTS = 0, 1, 3, 4, 14, 16, 18, 19
# The fields of a row that describe its person and that the rows of one licence must not contradict
# (full name, date of birth, birth year, sex, citizen ID, CMND, nationality: see _conflicts).
_COMPARED = slice(5, 12)


def _in_agreement(rows: Sequence[Staged]) -> bool:
    """Whether the rules above accept every row as it is: none has problems of its own, all
    describe their person identically, and no class comes twice. Then the reference row is the
    first, nothing contradicts it, nothing completes it, and every row is accepted: the commonest
    case of a licence with several classes, decided without the comparisons (`build_licence` gives
    the same licence either way)."""
    first = rows[0]
    person = first[_COMPARED]
    codes = set()
    for row in rows:
        if row[_PROBLEMS] or row[_COMPARED] != person or row[_CLASS_CODE] in codes:
            return False
        codes.add(row[_CLASS_CODE])
    return True


def _person_tuple(r: Staged) -> tuple[Any, ...]:
    return (r.citizen_id, r.legacy_id, r.full_name, r.date_of_birth,
            None if r.date_of_birth is not None else r.birth_year,
            r.sex, r.nationality, r.province_code, r.residence)


def _class_rank(c: tuple[Any, ...]) -> int:
    return _CLASS_RANK[c[1]]


def _licence(number: str, accepted: Sequence[Staged], person: tuple[Any, ...]) -> tuple[Any, ...]:
    """The licence of its accepted rows (in line order), in one pass: the latest issued row gives
    the issue date and, of the rows that have one, the most recently issued gives the card serial
    (on a tie the earlier line, so the choice does not depend on luck); the most severe status and
    the lowest points."""
    lines = []
    classes = []
    issued_on, serial, serial_issued = "", None, ""
    status, severity, points = "", -1, 99
    for r in accepted:
        issued = r[_ISSUED_ON]
        lines.append(r[_LINE])
        classes.append((number, r[_CLASS_CODE], r[15], issued, r[17], NO_RESTRICTIONS))
        if issued > issued_on:  # strictly later: a tie keeps the earlier line
            issued_on = issued
        if r[_SERIAL] and (serial is None or issued > serial_issued):
            serial, serial_issued = r[_SERIAL], issued
        if _SEVERITY[r[_STATUS]] > severity:
            status, severity = r[_STATUS], _SEVERITY[r[_STATUS]]
        if r[_POINTS] < points:
            points = r[_POINTS]
    classes.sort(key=_class_rank)
    return (number, tuple(lines), tuple(person), issued_on, status, points, serial, tuple(classes))
