"""R-HEALTH: when a certificate is needed and whether it is good enough."""

import datetime as dt

import pytest

from licence_service.domain.health import (
    HealthPolicy,
    health_certificate_problems,
    health_certificate_required,
)

from .builders import CITIZEN_ID, certificate

D = dt.date
RECEIVED = D(2026, 11, 27)


@pytest.mark.parametrize(
    ("regime", "codes", "required"),
    [
        pytest.param(
            "vn-2025", ["A1", "A", "B1"], False, id="R-HEALTH-2025-all-exempt"
        ),
        pytest.param("vn-2025", ["A", "B"], True, id="R-HEALTH-2025-B-needs-one"),
        pytest.param("vn-2025", ["C1"], True, id="R-HEALTH-2025-C1"),
        pytest.param("vn-2025", [], False, id="R-HEALTH-no-classes"),
        pytest.param(
            "vn-2017", ["A1", "A2", "A3"], False, id="R-HEALTH-2017-all-exempt"
        ),
        pytest.param("vn-2017", ["A1", "B2"], True, id="R-HEALTH-2017-B2"),
        pytest.param("vn-2017", ["B1"], True, id="R-HEALTH-2017-old-B1-is-a-car"),
        pytest.param("vn-2017", ["A4"], True, id="R-HEALTH-2017-A4"),
    ],
)
def test_health_certificate_required(regime, codes, required):
    assert health_certificate_required(regime, codes) is required


def problems(cert, regime="vn-2025", codes=("A", "B"), received=RECEIVED, **kw):
    return health_certificate_problems(
        cert,
        citizen_id=CITIZEN_ID,
        regime=regime,
        class_codes=list(codes),
        received_on=received,
        **kw,
    )


@pytest.mark.parametrize(
    ("cert", "kwargs", "expected"),
    [
        pytest.param(certificate(), {}, [], id="R-HEALTH-fitting-certificate"),
        pytest.param(None, {"codes": ["A1", "A"]}, [], id="R-HEALTH-exempt-needs-none"),
        pytest.param(None, {}, ["health certificate missing"], id="R-HEALTH-missing"),
        pytest.param(
            certificate(issued_on=D(2025, 11, 27)),
            {},
            [],
            id="R-HEALTH-exactly-12-months-old",
        ),
        pytest.param(
            certificate(issued_on=D(2025, 11, 26)),
            {},
            ["health certificate issued 2025-11-26 is older than 12 months"],
            id="R-HEALTH-12-months-and-a-day-old",
        ),
        pytest.param(
            certificate(issued_on=D(2026, 4, 26)),
            {"policy": HealthPolicy(validity_months=6)},
            ["health certificate issued 2026-04-26 is older than 6 months"],
            id="R-HEALTH-validity-is-configuration",
        ),
        pytest.param(
            certificate(issued_on=D(2024, 2, 29)),
            {"received": D(2025, 2, 28)},
            [],
            id="R-HEALTH-29-feb-certificate-valid-to-28-feb",
        ),
        pytest.param(
            certificate(issued_on=D(2024, 2, 29)),
            {"received": D(2025, 3, 1)},
            ["health certificate issued 2024-02-29 is older than 12 months"],
            id="R-HEALTH-29-feb-certificate-expired-1-march",
        ),
        pytest.param(
            certificate(citizen_id="001089099999"),
            {},
            ["health certificate belongs to another person"],
            id="R-HEALTH-other-persons-certificate",
        ),
        pytest.param(
            certificate(fit_for=frozenset({"A", "B"})),
            {"codes": ["A", "C1"]},
            ["health certificate not fit for class C1"],
            id="R-HEALTH-R-CONV-6-not-fit-for-C1",
        ),
        pytest.param(
            certificate(fit_for=frozenset({"B"})),
            {"regime": "vn-2017", "codes": ["A1", "B2"]},
            [],
            id="R-HEALTH-old-B2-covered-by-B",
        ),
        pytest.param(
            certificate(facility_code="99-XYZ"),
            {"policy": HealthPolicy(licensed_facilities=frozenset({"01-BVBM"}))},
            ["facility 99-XYZ is not licensed"],
            id="R-HEALTH-unlicensed-facility",
        ),
        pytest.param(
            certificate(
                citizen_id="001089099999",
                issued_on=D(2020, 1, 1),
                fit_for=frozenset({"A"}),
            ),
            {},
            [
                "health certificate belongs to another person",
                "health certificate issued 2020-01-01 is older than 12 months",
                "health certificate not fit for class B",
            ],
            id="R-HEALTH-every-problem-reported",
        ),
    ],
)
def test_health_certificate_problems(cert, kwargs, expected):
    assert problems(cert, **kwargs) == expected


def test_unknown_class_for_regime_raises():
    with pytest.raises(ValueError):
        health_certificate_required("vn-2025", ["B2"])
