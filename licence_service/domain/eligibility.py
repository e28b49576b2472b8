"""Intake decision for renewal and permit applications (R-ELIG, R-HEALTH, R-CONV-4, R-IDP)."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .classes import convert_classes
from .dates import add_months
from .fees import PROCEDURES
from .health import HealthPolicy, health_certificate_problems
from .identifiers import is_licence_number
from .model import REGIMES, HealthCertificate, Licence, LicenceClass, Person
from .names import same_name

__all__ = [
    "APPLICATION_IN_PROGRESS",
    "CLASS_NOT_RENEWABLE",
    "DEFAULT_POLICY",
    "HEALTH_CERTIFICATE_INVALID",
    "IDENTITY_MISMATCH",
    "LICENCE_EXPIRED",
    "LICENCE_NOT_FOUND",
    "LICENCE_NOT_VALID",
    "OUTCOMES",
    "POINTS_EXHAUSTED",
    "REASON_CODES",
    "RENEWAL_REASONS",
    "ApplicationFacts",
    "Assessment",
    "EligibilityPolicy",
    "assess",
]

# R-ELIG reason codes, in rule order (the order reasons are reported in).
IDENTITY_MISMATCH = "identity_mismatch"  # R-ELIG-1
LICENCE_NOT_FOUND = "licence_not_found"  # R-ELIG-2
LICENCE_NOT_VALID = "licence_not_valid"  # R-ELIG-3
POINTS_EXHAUSTED = "points_exhausted"  # R-ELIG-4
APPLICATION_IN_PROGRESS = "application_in_progress"  # R-ELIG-5
LICENCE_EXPIRED = "licence_expired"  # R-ELIG-6
CLASS_NOT_RENEWABLE = "class_not_renewable"  # R-ELIG-7
HEALTH_CERTIFICATE_INVALID = "health_certificate_invalid"  # R-ELIG-8
REASON_CODES: tuple[str, ...] = (
    IDENTITY_MISMATCH,
    LICENCE_NOT_FOUND,
    LICENCE_NOT_VALID,
    POINTS_EXHAUSTED,
    APPLICATION_IN_PROGRESS,
    LICENCE_EXPIRED,
    CLASS_NOT_RENEWABLE,
    HEALTH_CERTIFICATE_INVALID,
)

# R-ELIG: why a citizen renews; not a ground for refusal, but only these are meaningful.
# "expired" (PORTAL.md) is the reason of the cases R-ELIG-6 still lets through: vn-2017 expired
# under 3 months, and the vn-2025 force-majeure hold.
RENEWAL_REASONS: frozenset[str] = frozenset(
    {"expiring", "expired", "damaged", "lost", "details_changed", "card_conversion"}
)
OUTCOMES: frozenset[str] = frozenset({"accept", "refuse", "review"})


@dataclass(frozen=True)
class EligibilityPolicy:
    """Configurable thresholds of R-ELIG-6 and R-HEALTH.

    ``vn2017_expired_months``: vn-2017 refuses a class expired this many months or more.
    ``force_majeure_months``: vn-2025 holds for review a class expired less than this, when
    force majeure is declared.
    """

    vn2017_expired_months: int = 3
    force_majeure_months: int = 1
    health: HealthPolicy = field(default_factory=HealthPolicy)


DEFAULT_POLICY = EligibilityPolicy()


@dataclass(frozen=True)
class ApplicationFacts:
    """What the applicant submitted, plus the regime recorded at receipt (R-REGIME).

    ``received_on`` is the Asia/Ho_Chi_Minh local date (see ``regime.local_date``).
    ``requested_classes`` maps an old class to the new class wanted (R-CONV-6).
    """

    procedure: str
    reason: str | None
    received_on: datetime.date
    regime: str
    licence_number: str
    applicant: Person
    force_majeure: bool = False
    requested_classes: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.procedure not in PROCEDURES:
            raise ValueError(f"unknown procedure {self.procedure!r}")
        if self.regime not in REGIMES:
            raise ValueError(f"unknown regime {self.regime!r}")
        if (
            self.reason is not None
            and self.procedure == "licence_renewal"
            and (self.reason not in RENEWAL_REASONS)
        ):
            raise ValueError(f"unknown renewal reason {self.reason!r}")
        object.__setattr__(
            self,
            "requested_classes",
            MappingProxyType(dict(self.requested_classes or {})),
        )


@dataclass(frozen=True)
class Assessment:
    """The intake decision.

    ``outcome``: 'accept' (portal 2), 'refuse' (portal 3, ``reasons`` are the refusal codes)
    or 'review' (portal 5, held for an officer; ``reasons`` say what to review).
    ``classes``: for a renewal, the classes the new licence will carry, with ``valid_until``
    None until issuance computes it (``renewal.renew``); for a permit, the licence's classes.
    ``details``: human-readable explanations for officers and logs.
    """

    outcome: str
    reasons: tuple[str, ...] = ()
    classes: tuple[LicenceClass, ...] = ()
    details: tuple[str, ...] = ()


def assess(
    application: ApplicationFacts,
    *,
    licence: Licence | None,
    population_record: Person | None,
    health_certificate: HealthCertificate | None,
    open_application_exists: bool,
    policy: EligibilityPolicy = DEFAULT_POLICY,
) -> Assessment:
    """R-ELIG-1..8 (renewal) and R-IDP (permit): decide intake, reporting every failing reason.

    ``licence`` is what the national register holds under the submitted number (None when
    absent); ``population_record`` and ``health_certificate`` come from the other registers.
    Checks that need the licence are skipped when it is not found or is someone else's:
    there is nothing of the applicant's to check, and another person's licence must not leak.
    """
    refusals: set[str] = set()
    details: list[str] = []
    review = False
    classes: tuple[LicenceClass, ...] = ()

    # R-ELIG-1
    identity = _identity_problems(application.applicant, population_record)
    if identity:
        refusals.add(IDENTITY_MISMATCH)
        details += identity

    # R-ELIG-2
    if not _licence_is_applicants(application, licence):
        refusals.add(LICENCE_NOT_FOUND)
        details.append("licence not in the register under this holder")
        licence = None

    # R-ELIG-5
    if open_application_exists:
        refusals.add(APPLICATION_IN_PROGRESS)
        details.append("another application for this licence is open")

    if licence is not None:
        # R-ELIG-3, R-IDP: anything but "valid" (including a "replaced" old card) cannot be used.
        if licence.status != "valid":
            refusals.add(LICENCE_NOT_VALID)
            details.append(f"licence status is {licence.status}")
        # R-ELIG-4: demerit points exist from L2024 on, so only vn-2025 applications check them.
        if (
            application.regime == "vn-2025"
            and licence.points is not None
            and licence.points <= 0
        ):
            refusals.add(POINTS_EXHAUSTED)
            details.append("demerit points exhausted")

        expiry, expiry_details = _expiry_verdict(application, licence, policy)
        details += expiry_details
        if expiry == "refuse":
            refusals.add(LICENCE_EXPIRED)
        review = expiry == "review"

        if application.procedure == "international_permit":
            # R-IDP: the permit lists the classes as they are; no health certificate.
            classes = licence.classes
        else:
            classes = _renewal_classes(
                application, licence, health_certificate, policy, refusals, details
            )

    if refusals:
        reasons = tuple(code for code in REASON_CODES if code in refusals)
        return Assessment("refuse", reasons, classes, tuple(details))
    if review:
        return Assessment("review", (LICENCE_EXPIRED,), classes, tuple(details))
    return Assessment("accept", (), classes, tuple(details))


def _identity_problems(applicant: Person, record: Person | None) -> list[str]:
    """R-ELIG-1, R-NAME: the stated identity against the population register."""
    if record is None:
        return ["citizen ID not in the population register"]
    problems = []
    if applicant.citizen_id != record.citizen_id:
        problems.append("citizen ID differs from the population register")
    if not same_name(applicant.full_name, record.full_name):
        problems.append("name differs from the population register")
    if applicant.date_of_birth != record.date_of_birth:
        problems.append("date of birth differs from the population register")
    if applicant.sex != record.sex:
        problems.append("sex differs from the population register")
    return problems


def _licence_is_applicants(
    application: ApplicationFacts, licence: Licence | None
) -> bool:
    """R-ELIG-2, R-ID: the register licence exists under the submitted 12-digit number and is
    held by the applicant. Legacy holders may lack a citizen ID; they are matched on name,
    date of birth and sex instead."""
    if licence is None or not is_licence_number(application.licence_number):
        return False
    if licence.number != application.licence_number:
        return False
    holder, applicant = licence.holder, application.applicant
    if holder.citizen_id:
        return holder.citizen_id == applicant.citizen_id
    return (
        same_name(holder.full_name, applicant.full_name)
        and holder.date_of_birth == applicant.date_of_birth
        and holder.sex == applicant.sex
    )


def _expiry_verdict(
    application: ApplicationFacts, licence: Licence, policy: EligibilityPolicy
) -> tuple[str, list[str]]:
    """R-ELIG-6 / R-IDP on the stored expiries (never recomputed, R-VALID).

    A class is valid through its ``valid_until`` day; "expired N months" is counted from
    that date, so receipt on valid_until + N months is "N months or more".
    Returns ('ok' | 'review' | 'refuse', details).
    """
    received = application.received_on
    expired = [
        c
        for c in licence.classes
        if c.valid_until is not None and c.valid_until < received
    ]
    if not expired:
        return "ok", []
    details = [
        f"class {c.code} expired on {c.valid_until.isoformat()}" for c in expired
    ]
    if application.procedure == "international_permit":
        return "refuse", details
    if application.regime == "vn-2017":
        months = policy.vn2017_expired_months
        too_late = [c for c in expired if received >= add_months(c.valid_until, months)]
        return ("refuse" if too_late else "ok"), (details if too_late else [])
    within_grace = all(
        received < add_months(c.valid_until, policy.force_majeure_months)
        for c in expired
    )
    if application.force_majeure and within_grace:
        return "review", [
            *details,
            "force majeure declared: held for an officer's review",
        ]
    return "refuse", details


def _renewal_classes(
    application: ApplicationFacts,
    licence: Licence,
    certificate: HealthCertificate | None,
    policy: EligibilityPolicy,
    refusals: set[str],
    details: list[str],
) -> tuple[LicenceClass, ...]:
    """R-CONV (R-ELIG-7) and R-HEALTH (R-ELIG-8) on the classes the renewed licence will carry."""
    result = convert_classes(
        licence.regime,
        licence.classes,
        application.regime,
        application.requested_classes,
    )
    if result.not_renewable:
        refusals.add(CLASS_NOT_RENEWABLE)
        details += [
            f"class {code} can no longer be renewed (R-CONV-4)"
            for code in result.not_renewable
        ]
    details += [
        f"requested class {old} -> {new} not applicable"
        for old, new in result.ignored_requests
    ]
    problems = health_certificate_problems(
        certificate,
        citizen_id=application.applicant.citizen_id,
        regime=application.regime,
        class_codes=[c.code for c in result.classes],
        received_on=application.received_on,
        policy=policy.health,
    )
    if problems:
        refusals.add(HEALTH_CERTIFICATE_INVALID)
        details += problems
    return result.classes
