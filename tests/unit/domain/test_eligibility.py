"""R-ELIG (with R-HEALTH, R-CONV-4 and R-IDP): the intake decision."""

from __future__ import annotations

import datetime as dt
import unicodedata

import pytest

from licence_service.domain.dates import add_months, add_years
from licence_service.domain.eligibility import (
    REASON_CODES,
    ApplicationFacts,
    Assessment,
    EligibilityPolicy,
    assess,
)
from licence_service.domain.health import HealthPolicy

from .builders import LICENCE_NUMBER, certificate, cls, licence, person

D = dt.date
DAY = dt.timedelta(days=1)
RECEIVED_2025 = D(2026, 11, 27)
RECEIVED_2017 = D(2024, 6, 10)
_MISSING = object()


def run(
    *,
    procedure: str = "licence_renewal",
    reason: str | None = "expiring",
    received_on: D = RECEIVED_2025,
    regime: str = "vn-2025",
    licence_number: str = LICENCE_NUMBER,
    applicant=None,
    force_majeure: bool = False,
    requested: dict | None = None,
    lic=_MISSING,
    population=_MISSING,
    cert=_MISSING,
    open_application: bool = False,
    policy: EligibilityPolicy | None = None,
) -> Assessment:
    facts = ApplicationFacts(
        procedure=procedure,
        reason=reason,
        received_on=received_on,
        regime=regime,
        licence_number=licence_number,
        applicant=applicant or person(),
        force_majeure=force_majeure,
        requested_classes=requested or {},
    )
    return assess(
        facts,
        licence=licence() if lic is _MISSING else lic,
        population_record=person() if population is _MISSING else population,
        health_certificate=certificate() if cert is _MISSING else cert,
        open_application_exists=open_application,
        policy=policy or EligibilityPolicy(),
    )


def test_ordinary_application_is_accepted_with_converted_classes():
    result = run()
    assert result.outcome == "accept"
    assert result.reasons == ()
    assert [(c.code, c.restrictions) for c in result.classes] == [
        ("A", ("MC_LT_175CC",)),
        ("B", ()),
    ]


# --- R-ELIG-1 identity, with R-NAME ------------------------------------------------------


@pytest.mark.parametrize(
    ("applicant", "population", "outcome"),
    [
        pytest.param(
            person(), None, "refuse", id="R-ELIG-1-not-in-population-register"
        ),
        pytest.param(
            person(full_name="NGUYỄN VĂN ANH"),
            person(),
            "refuse",
            id="R-ELIG-1-name-differs",
        ),
        pytest.param(
            person(date_of_birth=D(1989, 5, 18)),
            person(),
            "refuse",
            id="R-ELIG-1-dob-differs",
        ),
        pytest.param(
            person(sex="female"), person(), "refuse", id="R-ELIG-1-sex-differs"
        ),
        pytest.param(
            person(),
            person(citizen_id="001089099999"),
            "refuse",
            id="R-ELIG-1-citizen-id-differs",
        ),
        pytest.param(
            person(full_name="nguyễn  văn an"),
            person(),
            "accept",
            id="R-ELIG-1-R-NAME-lower-case-matches",
        ),
        pytest.param(
            person(full_name=unicodedata.normalize("NFD", "Nguyễn Văn An")),
            person(),
            "accept",
            id="R-ELIG-1-R-NAME-NFD-matches",
        ),
    ],
)
def test_identity_against_population_register(applicant, population, outcome):
    result = run(applicant=applicant, population=population)
    assert result.outcome == outcome
    assert result.reasons == (("identity_mismatch",) if outcome == "refuse" else ())


# --- R-ELIG-2 licence in the register and the applicant's -------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param(
            {"lic": None}, ("licence_not_found",), id="R-ELIG-2-not-in-register"
        ),
        pytest.param(
            {
                "lic": licence(
                    holder=person(citizen_id="001089099999", full_name="TRẦN VĂN BÌNH")
                )
            },
            ("licence_not_found",),
            id="R-ELIG-2-another-persons-licence",
        ),
        pytest.param(
            {"licence_number": "AB-123456"},
            ("licence_not_found",),
            id="R-ELIG-2-R-ID-old-paper-number",
        ),
        pytest.param(
            {"licence_number": "019999999999"},
            ("licence_not_found",),
            id="R-ELIG-2-register-returned-other-number",
        ),
        pytest.param(
            {"lic": licence(holder=person(citizen_id=None, full_name="nguyễn văn an"))},
            (),
            id="R-ELIG-2-legacy-holder-without-citizen-id-matches-on-details",
        ),
        pytest.param(
            {
                "lic": licence(
                    holder=person(citizen_id=None, date_of_birth=D(1990, 1, 1))
                )
            },
            ("licence_not_found",),
            id="R-ELIG-2-legacy-holder-with-other-details",
        ),
    ],
)
def test_licence_must_be_the_applicants(kwargs, expected):
    result = run(**kwargs)
    assert result.reasons == expected
    assert result.outcome == ("refuse" if expected else "accept")


def test_another_persons_licence_is_not_examined_further_R_ELIG_2():
    other = licence(
        cls("A4", D(2000, 1, 1)),
        holder=person(citizen_id="001089099999"),
        status="revoked",
        points=0,
    )
    result = run(lic=other)
    assert result.reasons == ("licence_not_found",)
    assert result.classes == ()


# --- R-ELIG-3, -4, -5 ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param("confiscated", ("licence_not_valid",), id="R-ELIG-3-confiscated"),
        pytest.param("suspended", ("licence_not_valid",), id="R-ELIG-3-suspended"),
        pytest.param("revoked", ("licence_not_valid",), id="R-ELIG-3-revoked"),
        pytest.param(
            "replaced", ("licence_not_valid",), id="R-ELIG-3-replaced-old-card"
        ),
        pytest.param("valid", (), id="R-ELIG-3-valid"),
    ],
)
def test_licence_status(status, expected):
    assert run(lic=licence(status=status)).reasons == expected


@pytest.mark.parametrize(
    ("points", "regime", "received", "expected"),
    [
        pytest.param(
            0,
            "vn-2025",
            RECEIVED_2025,
            ("points_exhausted",),
            id="R-ELIG-4-zero-points",
        ),
        pytest.param(1, "vn-2025", RECEIVED_2025, (), id="R-ELIG-4-one-point-left"),
        pytest.param(
            None, "vn-2025", RECEIVED_2025, (), id="R-ELIG-4-points-not-tracked"
        ),
        pytest.param(
            0, "vn-2017", RECEIVED_2017, (), id="R-ELIG-4-no-points-before-L2024"
        ),
    ],
)
def test_demerit_points(points, regime, received, expected):
    result = run(lic=licence(points=points), regime=regime, received_on=received)
    assert result.reasons == expected


def test_open_application_for_the_same_licence_R_ELIG_5():
    result = run(open_application=True)
    assert result.outcome == "refuse"
    assert result.reasons == ("application_in_progress",)


# --- R-ELIG-6 expiry ---------------------------------------------------------------------

EXPIRY = D(2026, 6, 15)


def _shift(d: D) -> D:
    """Move a vn-2025 scenario date back three years, into the vn-2017 era."""
    return add_years(d, -3)


def _expiring(valid_until: D):
    return licence(cls("A1"), cls("B2", valid_until))


@pytest.mark.parametrize(
    ("received", "outcome"),
    [
        pytest.param(EXPIRY, "accept", id="R-ELIG-6-2017-last-valid-day"),
        pytest.param(EXPIRY + DAY, "accept", id="R-ELIG-6-2017-expired-one-day"),
        pytest.param(
            add_months(EXPIRY, 1) - DAY, "accept", id="R-ELIG-6-2017-just-under-1-month"
        ),
        pytest.param(
            add_months(EXPIRY, 1) + DAY, "accept", id="R-ELIG-6-2017-just-over-1-month"
        ),
        pytest.param(
            add_months(EXPIRY, 3) - DAY,
            "accept",
            id="R-ELIG-6-2017-just-under-3-months",
        ),
        pytest.param(
            add_months(EXPIRY, 3), "refuse", id="R-ELIG-6-2017-exactly-3-months"
        ),
        pytest.param(
            add_months(EXPIRY, 3) + DAY, "refuse", id="R-ELIG-6-2017-just-over-3-months"
        ),
    ],
)
def test_vn_2017_refuses_only_three_months_or_more_after_expiry(received, outcome):
    # vn-2017 is a replay of an application received before 2025: move the dates back.
    result = run(
        regime="vn-2017",
        received_on=_shift(received),
        lic=_expiring(_shift(EXPIRY)),
        cert=certificate(issued_on=_shift(EXPIRY)),
    )
    assert result.outcome == outcome
    assert result.reasons == (("licence_expired",) if outcome == "refuse" else ())


@pytest.mark.parametrize(
    ("received", "force_majeure", "outcome"),
    [
        pytest.param(EXPIRY, False, "accept", id="R-ELIG-6-2025-last-valid-day"),
        pytest.param(
            EXPIRY - DAY,
            True,
            "accept",
            id="R-ELIG-6-2025-force-majeure-irrelevant-before-expiry",
        ),
        pytest.param(EXPIRY + DAY, False, "refuse", id="R-ELIG-6-2025-expired-one-day"),
        pytest.param(
            EXPIRY + DAY, True, "review", id="R-ELIG-6-2025-one-day-force-majeure"
        ),
        pytest.param(
            add_months(EXPIRY, 1) - DAY,
            False,
            "refuse",
            id="R-ELIG-6-2025-just-under-1-month",
        ),
        pytest.param(
            add_months(EXPIRY, 1) - DAY,
            True,
            "review",
            id="R-ELIG-6-2025-just-under-1-month-force-majeure",
        ),
        pytest.param(
            add_months(EXPIRY, 1),
            True,
            "refuse",
            id="R-ELIG-6-2025-exactly-1-month-force-majeure",
        ),
        pytest.param(
            add_months(EXPIRY, 1) + DAY,
            True,
            "refuse",
            id="R-ELIG-6-2025-just-over-1-month-force-majeure",
        ),
        pytest.param(
            add_months(EXPIRY, 3) - DAY,
            False,
            "refuse",
            id="R-ELIG-6-2025-just-under-3-months",
        ),
        pytest.param(
            add_months(EXPIRY, 3) + DAY,
            True,
            "refuse",
            id="R-ELIG-6-2025-just-over-3-months",
        ),
    ],
)
def test_vn_2025_refuses_any_expiry_except_force_majeure_within_a_month(
    received, force_majeure, outcome
):
    result = run(
        received_on=received,
        force_majeure=force_majeure,
        lic=_expiring(EXPIRY),
        cert=certificate(issued_on=EXPIRY),
    )
    assert result.outcome == outcome
    assert result.reasons == (() if outcome == "accept" else ("licence_expired",))


@pytest.mark.parametrize(
    ("classes", "force_majeure", "outcome", "expired_codes"),
    [
        pytest.param(
            [cls("A1"), cls("B2", D(2027, 6, 1)), cls("C", D(2026, 11, 20))],
            False,
            "refuse",
            ["C"],
            id="R-ELIG-6-one-of-several-classes-expired",
        ),
        pytest.param(
            [cls("A1"), cls("B2", D(2027, 6, 1)), cls("C", D(2026, 11, 20))],
            True,
            "review",
            ["C"],
            id="R-ELIG-6-one-class-in-force-majeure-window",
        ),
        pytest.param(
            [cls("B2", D(2026, 10, 1)), cls("C", D(2026, 11, 20))],
            True,
            "refuse",
            ["B2", "C"],
            id="R-ELIG-6-one-class-beyond-the-window",
        ),
        pytest.param(
            [cls("A1"), cls("B2", D(2027, 6, 1)), cls("C", D(2026, 11, 27))],
            False,
            "accept",
            [],
            id="R-ELIG-6-earliest-expiry-is-receipt-day",
        ),
    ],
)
def test_licence_with_several_classes_of_different_expiry(
    classes, force_majeure, outcome, expired_codes
):
    cert = certificate(fit_for=frozenset({"A", "B", "C"}))
    result = run(lic=licence(*classes), force_majeure=force_majeure, cert=cert)
    assert result.outcome == outcome
    expired_details = [d for d in result.details if " expired on " in d]
    assert [d.split()[1] for d in expired_details] == expired_codes


def test_stored_expiry_is_authoritative_R_VALID():
    # Under R-VALID a B2 passed long ago would have expired; the register says it has not.
    lic = licence(
        cls("B2", D(2030, 1, 1), passed_on=D(1990, 1, 1)), issued_on=D(1990, 1, 1)
    )
    assert run(lic=lic).outcome == "accept"


# --- R-ELIG-7 and R-ELIG-8 -----------------------------------------------------------------


def test_A4_is_refused_as_not_renewable_under_vn_2025_R_ELIG_7():
    result = run(lic=licence(cls("A4", D(2030, 1, 1)), cls("B2", D(2030, 1, 1))))
    assert result.reasons == ("class_not_renewable",)
    assert [c.code for c in result.classes] == ["B"]


def test_A4_is_kept_under_vn_2017_R_CONV():
    result = run(
        regime="vn-2017",
        received_on=RECEIVED_2017,
        lic=licence(cls("A4", D(2030, 1, 1))),
        cert=certificate(issued_on=D(2024, 1, 1), fit_for=frozenset({"A4"})),
    )
    assert result.outcome == "accept"
    assert [c.code for c in result.classes] == ["A4"]


@pytest.mark.parametrize(
    ("requested", "fit_for", "outcome", "codes"),
    [
        pytest.param(
            {"B2": "C1"},
            {"A", "B", "C1"},
            "accept",
            ["A", "C1"],
            id="R-CONV-6-C1-with-fitting-certificate",
        ),
        pytest.param(
            {"B2": "C1"},
            {"A", "B"},
            "refuse",
            ["A", "C1"],
            id="R-CONV-6-C1-certificate-not-fit-for-C1",
        ),
        pytest.param(
            {}, {"A", "B"}, "accept", ["A", "B"], id="R-CONV-6-B-without-request"
        ),
    ],
)
def test_B2_holder_asking_for_C1(requested, fit_for, outcome, codes):
    result = run(requested=requested, cert=certificate(fit_for=frozenset(fit_for)))
    assert result.outcome == outcome
    assert result.reasons == (
        ("health_certificate_invalid",) if outcome == "refuse" else ()
    )
    assert [c.code for c in result.classes] == codes


@pytest.mark.parametrize(
    ("lic", "cert", "policy", "expected"),
    [
        pytest.param(
            licence(),
            None,
            None,
            ("health_certificate_invalid",),
            id="R-ELIG-8-missing",
        ),
        pytest.param(
            licence(cls("A1"), cls("A2")),
            None,
            None,
            (),
            id="R-ELIG-8-motorcycles-exempt",
        ),
        pytest.param(licence(cls("A3")), None, None, (), id="R-ELIG-8-A3-to-B1-exempt"),
        pytest.param(
            licence(),
            certificate(issued_on=D(2025, 11, 27)),
            None,
            (),
            id="R-ELIG-8-exactly-12-months",
        ),
        pytest.param(
            licence(),
            certificate(issued_on=D(2025, 11, 26)),
            None,
            ("health_certificate_invalid",),
            id="R-ELIG-8-older-than-12-months",
        ),
        pytest.param(
            licence(),
            certificate(issued_on=D(2026, 4, 1)),
            EligibilityPolicy(health=HealthPolicy(validity_months=6)),
            ("health_certificate_invalid",),
            id="R-ELIG-8-validity-from-policy",
        ),
        pytest.param(
            licence(),
            certificate(citizen_id="001089099999"),
            None,
            ("health_certificate_invalid",),
            id="R-ELIG-8-someone-elses-certificate",
        ),
        pytest.param(
            licence(cls("A1"), cls("D", D(2028, 1, 1))),
            certificate(fit_for=frozenset({"A", "D"})),
            None,
            ("health_certificate_invalid",),
            id="R-ELIG-8-old-D-needs-fit-for-D2",
        ),
    ],
)
def test_health_certificate(lic, cert, policy, expected):
    assert run(lic=lic, cert=cert, policy=policy).reasons == expected


# --- every failing reason --------------------------------------------------------------------


def test_every_failing_reason_is_reported_in_rule_order_R_ELIG():
    bad = licence(
        cls("A4", D(2020, 1, 1)),
        cls("B2", D(2026, 1, 1)),
        status="confiscated",
        points=0,
    )
    result = run(
        applicant=person(full_name="TRẦN VĂN AN"),
        lic=bad,
        cert=None,
        open_application=True,
    )
    assert result.outcome == "refuse"
    assert result.reasons == tuple(r for r in REASON_CODES if r != "licence_not_found")


def test_force_majeure_does_not_rescue_an_application_refused_for_another_reason_R_ELIG_6():
    result = run(
        lic=_expiring(RECEIVED_2025 - DAY),
        force_majeure=True,
        open_application=True,
    )
    assert result.outcome == "refuse"
    assert result.reasons == ("application_in_progress",)


# --- R-IDP ----------------------------------------------------------------------------------


def idp(**kwargs) -> Assessment:
    return run(procedure="international_permit", reason=None, cert=None, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "outcome", "reasons"),
    [
        pytest.param({}, "accept", (), id="R-IDP-valid-licence-no-health-certificate"),
        pytest.param(
            {"lic": licence(cls("A4", D(2030, 1, 1)))},
            "accept",
            (),
            id="R-IDP-A4-needs-no-conversion",
        ),
        pytest.param(
            {"lic": licence(status="confiscated")},
            "refuse",
            ("licence_not_valid",),
            id="R-IDP-confiscated",
        ),
        pytest.param(
            {"lic": _expiring(RECEIVED_2025 - DAY), "force_majeure": True},
            "refuse",
            ("licence_expired",),
            id="R-IDP-expired-one-day-no-force-majeure-review",
        ),
        pytest.param(
            {
                "lic": _expiring(RECEIVED_2017 - DAY),
                "regime": "vn-2017",
                "received_on": RECEIVED_2017,
            },
            "refuse",
            ("licence_expired",),
            id="R-IDP-no-three-month-grace-under-vn-2017",
        ),
        pytest.param(
            {"lic": None}, "refuse", ("licence_not_found",), id="R-IDP-not-in-register"
        ),
    ],
)
def test_international_permit_intake(kwargs, outcome, reasons):
    result = idp(**kwargs)
    assert result.outcome == outcome
    assert result.reasons == reasons


def test_permit_intake_lists_the_licence_classes_as_they_are_R_IDP():
    lic = licence()
    assert idp(lic=lic).classes == lic.classes


@pytest.mark.parametrize(
    ("field", "value"),
    [("procedure", "learner_permit"), ("reason", "bored"), ("regime", "vn-2030")],
)
def test_application_facts_reject_unknown_values(field, value):
    values = {
        "procedure": "licence_renewal",
        "reason": "expiring",
        "received_on": RECEIVED_2025,
        "regime": "vn-2025",
        "licence_number": LICENCE_NUMBER,
        "applicant": person(),
    }
    values[field] = value
    with pytest.raises(ValueError):
        ApplicationFacts(**values)
