"""International Driving Permit (R-IDP)."""

from __future__ import annotations

import datetime

from .dates import add_years
from .identifiers import is_licence_number
from .model import InternationalPermit, Licence

__all__ = [
    "PERMIT_NUMBER_PREFIX",
    "PERMIT_VALIDITY_YEARS",
    "issue_permit",
    "permit_number",
]

PERMIT_NUMBER_PREFIX = "VN"
PERMIT_VALIDITY_YEARS = 3


def permit_number(licence_number: str) -> str:
    """R-IDP: ``VN`` + the 12-digit licence number."""
    if not is_licence_number(licence_number):
        raise ValueError(f"not a 12-digit licence number: {licence_number!r}")
    return PERMIT_NUMBER_PREFIX + licence_number


def issue_permit(
    licence: Licence,
    issued_on: datetime.date,
    validity_years: int = PERMIT_VALIDITY_YEARS,
) -> InternationalPermit:
    """R-IDP: a permit listing the licence's classes, valid ``validity_years`` from issue but
    never beyond the earliest expiry among the classes that have one.

    Refuses (ValueError) a licence that is not valid or already expired on ``issued_on``:
    eligibility should have stopped it, and a permit ending before it starts is meaningless.
    """
    if licence.status != "valid":
        raise ValueError(f"licence {licence.number} is {licence.status}, not valid")
    expiries = [c.valid_until for c in licence.classes if c.valid_until is not None]
    until = min([add_years(issued_on, validity_years), *expiries])
    if until < issued_on:
        raise ValueError(
            f"licence {licence.number} has a class expired before {issued_on}"
        )
    return InternationalPermit(
        number=permit_number(licence.number),
        licence_number=licence.number,
        classes=licence.classes,
        issued_on=issued_on,
        valid_until=until,
    )
