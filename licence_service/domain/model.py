"""Immutable values of the national licence model (NATIONAL-MODEL.md) and portal status codes.

Only the fields the rule book decides on are modelled here; the store may keep more.
Collections are coerced to tuples/frozensets so a value built from JSON lists is still
hashable and cannot be changed behind the rule functions' backs.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "FINAL_STATUSES",
    "LICENCE_STATUSES",
    "OPEN_STATUSES",
    "PORTAL_STATUS",
    "REGIMES",
    "SEXES",
    "HealthCertificate",
    "InternationalPermit",
    "Licence",
    "LicenceClass",
    "Person",
]

# R-REGIME: the two regime ids an application (and a licence's class set) can carry.
REGIMES: frozenset[str] = frozenset({"vn-2017", "vn-2025"})
SEXES: frozenset[str] = frozenset({"male", "female"})
# NATIONAL-MODEL: licence statuses; only "valid" may be renewed or back a permit (R-ELIG-3, R-IDP).
LICENCE_STATUSES: frozenset[str] = frozenset(
    {"valid", "confiscated", "suspended", "revoked", "replaced"}
)


@dataclass(frozen=True)
class Person:
    """A person as the population register or the licence register knows them.

    ``citizen_id`` may be None for legacy records that only carry the old CMND number.
    """

    citizen_id: str | None
    full_name: str
    date_of_birth: datetime.date
    sex: str


@dataclass(frozen=True)
class LicenceClass:
    """One class on a licence; ``valid_until`` None means no expiry (R-VALID)."""

    code: str
    passed_on: datetime.date | None
    valid_until: datetime.date | None
    restrictions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "restrictions", tuple(self.restrictions))


@dataclass(frozen=True)
class Licence:
    """A licence in the national register. ``regime`` says which class set its codes belong to
    (R-CLASS: "A1"/"B1" mean different things in each). ``points`` None = not tracked (12)."""

    number: str
    regime: str
    status: str
    points: int | None
    classes: tuple[LicenceClass, ...]
    holder: Person
    issued_on: datetime.date | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))


@dataclass(frozen=True)
class HealthCertificate:
    """An electronic health certificate from the health-certificate register (R-HEALTH).

    ``fit_for`` holds new-regime (vn-2025) class codes.
    """

    number: str
    citizen_id: str
    issued_on: datetime.date
    facility_code: str
    fit_for: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fit_for", frozenset(self.fit_for))


@dataclass(frozen=True)
class InternationalPermit:
    """R-IDP: a 1968-convention permit derived from a national licence."""

    number: str
    licence_number: str
    classes: tuple[LicenceClass, ...]
    issued_on: datetime.date
    valid_until: datetime.date

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))


# R-PORTAL: service status -> DVCQG dossier status code. The service's "accepted" is the
# transient state between the checks and the fee request; it is reported as portal 2.
PORTAL_STATUS: Mapping[str, int] = MappingProxyType(
    {
        "received": 1,
        "accepted": 2,
        "refused": 3,
        "processing": 4,
        "needs_supplement": 5,
        "awaiting_payment": 6,
        "withdrawn": 7,
        "stopped": 8,
        "issued": 9,
        "delivered": 10,
    }
)

# Statuses in which an application no longer blocks another one for the same licence
# (R-ELIG-5). "issued" is included although it may still move to "delivered": the
# licence work is done, so a new application for that licence must not be refused.
FINAL_STATUSES: frozenset[str] = frozenset(
    {"refused", "withdrawn", "stopped", "issued", "delivered"}
)
OPEN_STATUSES: frozenset[str] = frozenset(PORTAL_STATUS) - FINAL_STATUSES
