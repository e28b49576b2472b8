"""Small builders for domain test values; defaults describe one ordinary applicant."""

from __future__ import annotations

import datetime as dt

from licence_service.domain.model import (
    HealthCertificate,
    Licence,
    LicenceClass,
    Person,
)

CITIZEN_ID = "001089012345"
LICENCE_NUMBER = "010123456789"


def person(**overrides) -> Person:
    values = {
        "citizen_id": CITIZEN_ID,
        "full_name": "NGUYỄN VĂN AN",
        "date_of_birth": dt.date(1989, 5, 17),
        "sex": "male",
    }
    values.update(overrides)
    return Person(**values)


def cls(
    code: str,
    valid_until: dt.date | None = None,
    passed_on: dt.date = dt.date(2010, 1, 1),
    restrictions: tuple[str, ...] = (),
) -> LicenceClass:
    return LicenceClass(code, passed_on, valid_until, restrictions)


def licence(*classes: LicenceClass, **overrides) -> Licence:
    values = {
        "number": LICENCE_NUMBER,
        "regime": "vn-2017",
        "status": "valid",
        "points": 12,
        "classes": classes or (cls("A1"), cls("B2", dt.date(2027, 6, 1))),
        "holder": person(),
        "issued_on": dt.date(2017, 6, 1),
    }
    values.update(overrides)
    return Licence(**values)


def certificate(
    fit_for: frozenset[str] = frozenset({"A1", "A", "B1", "B", "C1"}), **overrides
) -> HealthCertificate:
    values = {
        "number": "KSK-2026-000123",
        "citizen_id": CITIZEN_ID,
        "issued_on": dt.date(2026, 10, 1),
        "facility_code": "01-BVBM",
        "fit_for": fit_for,
    }
    values.update(overrides)
    return HealthCertificate(**values)
