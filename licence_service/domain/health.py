"""Health certificates (R-HEALTH, checked by R-ELIG-8)."""

from __future__ import annotations

import datetime
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .classes import classes_of, covered_by
from .dates import add_months
from .model import HealthCertificate

__all__ = [
    "HEALTH_EXEMPT_CLASSES",
    "HealthPolicy",
    "classes_needing_certificate",
    "health_certificate_problems",
    "health_certificate_required",
]

# R-HEALTH: classes that need no health certificate, per regime.
HEALTH_EXEMPT_CLASSES: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "vn-2025": frozenset({"A1", "A", "B1"}),
        "vn-2017": frozenset({"A1", "A2", "A3"}),
    }
)


@dataclass(frozen=True)
class HealthPolicy:
    """R-HEALTH configuration.

    ``validity_months``: the 12 months is recalled, not confirmed, so it is configuration.
    ``licensed_facilities``: None trusts the register (it only accepts certificates sent by
    licensed facilities); a set restricts to those facility codes.
    """

    validity_months: int = 12
    licensed_facilities: frozenset[str] | None = None


def classes_needing_certificate(
    regime: str, class_codes: Iterable[str]
) -> tuple[str, ...]:
    """R-HEALTH: the classes of the renewed licence that are not exempt."""
    known = classes_of(regime)
    codes = tuple(class_codes)
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise ValueError(f"classes {unknown} are not {regime} classes")
    exempt = HEALTH_EXEMPT_CLASSES[regime]
    return tuple(c for c in codes if c not in exempt)


def health_certificate_required(regime: str, class_codes: Iterable[str]) -> bool:
    """R-HEALTH: required unless every class on the renewed licence is exempt."""
    return bool(classes_needing_certificate(regime, class_codes))


def health_certificate_problems(
    certificate: HealthCertificate | None,
    *,
    citizen_id: str | None,
    regime: str,
    class_codes: Collection[str],
    received_on: datetime.date,
    policy: HealthPolicy = HealthPolicy(),
) -> list[str]:
    """R-HEALTH / R-ELIG-8: why ``certificate`` does not support renewing ``class_codes``
    (classes of the renewed licence, read in ``regime``); empty when it does or when
    none is required. Every problem is listed.
    """
    needing = classes_needing_certificate(regime, class_codes)
    if not needing:
        return []
    if certificate is None:
        return ["health certificate missing"]
    problems: list[str] = []
    if citizen_id is None or certificate.citizen_id != citizen_id:
        problems.append("health certificate belongs to another person")
    if (
        policy.licensed_facilities is not None
        and certificate.facility_code not in policy.licensed_facilities
    ):
        problems.append(f"facility {certificate.facility_code} is not licensed")
    # "no more than N months before receipt": the last accepted receipt date is issue + N months.
    if received_on > add_months(certificate.issued_on, policy.validity_months):
        problems.append(
            f"health certificate issued {certificate.issued_on.isoformat()} is older than "
            f"{policy.validity_months} months"
        )
    problems.extend(
        f"health certificate not fit for class {code}"
        for code in needing
        if not covered_by(certificate.fit_for, code, regime)
    )
    return problems
