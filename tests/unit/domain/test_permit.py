"""R-IDP: number and validity of the International Driving Permit."""

import datetime as dt

import pytest

from licence_service.domain.permit import issue_permit

from .builders import LICENCE_NUMBER, cls, licence

D = dt.date
ISSUED = D(2026, 12, 1)


@pytest.mark.parametrize(
    ("classes", "issued", "expected"),
    [
        pytest.param(
            [cls("A1"), cls("A2")], ISSUED, D(2029, 12, 1), id="R-IDP-no-expiry-3-years"
        ),
        pytest.param(
            [cls("A1"), cls("B2", D(2035, 1, 1))],
            ISSUED,
            D(2029, 12, 1),
            id="R-IDP-late-expiry-3-years",
        ),
        pytest.param(
            [cls("A1"), cls("B2", D(2028, 3, 1)), cls("C", D(2027, 5, 20))],
            ISSUED,
            D(2027, 5, 20),
            id="R-IDP-earliest-class-expiry-caps",
        ),
        pytest.param(
            [cls("B2", ISSUED)], ISSUED, ISSUED, id="R-IDP-class-expiring-on-issue-day"
        ),
        pytest.param([cls("A1")], D(2024, 2, 29), D(2027, 2, 28), id="R-IDP-29-feb"),
    ],
)
def test_permit_validity(classes, issued, expected):
    permit = issue_permit(licence(*classes), issued)
    assert permit.valid_until == expected
    assert permit.issued_on == issued


def test_permit_number_and_classes_R_IDP():
    lic = licence()
    permit = issue_permit(lic, ISSUED)
    assert permit.number == "VN" + LICENCE_NUMBER
    assert permit.licence_number == LICENCE_NUMBER
    assert permit.classes == lic.classes


@pytest.mark.parametrize(
    "lic",
    [
        pytest.param(licence(status="confiscated"), id="R-IDP-confiscated"),
        pytest.param(
            licence(cls("B2", ISSUED - dt.timedelta(days=1))), id="R-IDP-expired"
        ),
        pytest.param(licence(number="AB123"), id="R-ID-bad-licence-number"),
    ],
)
def test_permit_is_refused_for_an_unusable_licence(lic):
    with pytest.raises(ValueError):
        issue_permit(lic, ISSUED)
