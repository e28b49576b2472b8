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

__all__ = ["ClassData", "LicenceRecord", "PersonData", "Reject", "build_licence", "view"]


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
    # Whether a citizen ID, CMND or card serial of this licence may already have been claimed by
    # an earlier licence of the same run (set by the reader, see pipeline.RunClaims): only such
    # licences need checking against what the run wrote before.
    suspect: bool = False


# Positions in a record, for the hot paths that index plain tuples.
NUMBER, LINES, PERSON, ISSUED_ON, STATUS, POINTS, CARD_SERIAL, CLASSES, SUSPECT = range(9)
# Positions in a person.
CITIZEN_ID, LEGACY_ID, BIRTH_YEAR = 0, 1, 4
NO_RESTRICTIONS = "[]"


def view(record: tuple[Any, ...]) -> LicenceRecord:
    """A record with named fields, nested ones included."""
    return LicenceRecord(
        *record[:PERSON], PersonData._make(record[PERSON]), *record[ISSUED_ON:CLASSES],
        tuple(ClassData._make(c) for c in record[CLASSES]), *record[SUSPECT:],
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
        return _single(row), []
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


def _single(r: Staged) -> tuple[Any, ...]:
    # The commonest licence, built as directly as possible (see LicenceRecord for the layout).
    person = (
        r.citizen_id, r.legacy_id, r.full_name, r.date_of_birth,
        None if r.date_of_birth is not None else r.birth_year,
        r.sex, r.nationality, r.province_code, r.residence,
    )
    licence_class = (r.number, r.class_code, r.passed_on, r.issued_on, r.valid_until, NO_RESTRICTIONS)
    return (r.number, (r.line,), person, r.issued_on, r.status, r.points, r.card_serial, (licence_class,))


def _licence(number: str, accepted: list[Staged], person: PersonData) -> tuple[Any, ...]:
    # The latest issued row gives the issue date and, when it has one, the card serial; on a tie
    # the earlier line, so the choice does not depend on luck.
    by_issue = sorted(accepted, key=lambda r: (r.issued_on, -r.line), reverse=True)
    serial = next((r.card_serial for r in by_issue if r.card_serial), None)
    classes = [(number, r.class_code, r.passed_on, r.issued_on, r.valid_until, NO_RESTRICTIONS) for r in accepted]
    classes.sort(key=lambda c: _CLASS_RANK[c[1]])
    return (
        number,
        tuple([r.line for r in accepted]),
        tuple(person),
        by_issue[0].issued_on,
        max([r.status for r in accepted], key=_SEVERITY.__getitem__),
        min([r.points for r in accepted]),  # type: ignore[type-var]
        serial,
        tuple(classes),
    )
