"""Validity of a class issued on a given date (R-VALID)."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .dates import add_years

__all__ = [
    "VALIDITY_TABLE",
    "AgeLimited",
    "FixedYears",
    "NoExpiry",
    "ValidityRule",
    "add_years",
    "valid_until",
]


@dataclass(frozen=True)
class NoExpiry:
    """The class never expires."""


@dataclass(frozen=True)
class FixedYears:
    """Valid for ``years`` calendar years from the issue date."""

    years: int


@dataclass(frozen=True)
class AgeLimited:
    """R-VALID vn-2017 B1/B1TD: valid until the ``until_age`` birthday, but ``years`` from
    issue when issued after the ``late_after_age`` birthday (a late issue would otherwise
    leave only a few years)."""

    until_age: Mapping[str, int]
    late_after_age: Mapping[str, int]
    years: int


ValidityRule = NoExpiry | FixedYears | AgeLimited

_NONE = NoExpiry()
_TEN = FixedYears(10)
_FIVE = FixedYears(5)
_B1_2017 = AgeLimited(
    until_age=MappingProxyType({"female": 55, "male": 60}),
    late_after_age=MappingProxyType({"female": 45, "male": 50}),
    years=10,
)


def _rows(rule: ValidityRule, codes: str) -> dict[str, ValidityRule]:
    return dict.fromkeys(codes.split(), rule)


# R-VALID, both regimes. Keyed by regime first because A1/B1 differ between them (R-CLASS).
VALIDITY_TABLE: Mapping[str, Mapping[str, ValidityRule]] = MappingProxyType(
    {
        "vn-2025": MappingProxyType(
            _rows(_NONE, "A1 A B1")
            | _rows(_TEN, "B C1")
            | _rows(_FIVE, "C D1 D2 D BE C1E CE D1E D2E DE")
        ),
        "vn-2017": MappingProxyType(
            _rows(_NONE, "A1 A2 A3")
            | _rows(_B1_2017, "B1 B1TD")
            | _rows(_TEN, "A4 B2")
            | _rows(_FIVE, "C D E FB2 FC FD FE")
        ),
    }
)


def valid_until(
    regime: str,
    code: str,
    issued_on: datetime.date,
    sex: str | None = None,
    date_of_birth: datetime.date | None = None,
) -> datetime.date | None:
    """R-VALID: expiry of class ``code`` (read in ``regime``) issued on ``issued_on``;
    None means no expiry. ``sex`` and ``date_of_birth`` are needed only for vn-2017 B1/B1TD.
    """
    try:
        rule = VALIDITY_TABLE[regime][code]
    except KeyError:
        raise ValueError(
            f"no validity rule for class {code!r} under {regime!r}"
        ) from None
    if isinstance(rule, NoExpiry):
        return None
    if isinstance(rule, FixedYears):
        return add_years(issued_on, rule.years)
    if sex not in rule.until_age or date_of_birth is None:
        raise ValueError(
            f"class {code!r} under {regime!r} needs the holder's sex and date of birth"
        )
    # "later than" the birthday: issued on the birthday itself still runs to the age limit.
    if issued_on > add_years(date_of_birth, rule.late_after_age[sex]):
        return add_years(issued_on, rule.years)
    return add_years(date_of_birth, rule.until_age[sex])
