"""R-VALID: validity of a class issued on a date, both regimes."""

import datetime as dt

import pytest

from licence_service.domain.classes import NEW_CLASSES, OLD_CLASSES
from licence_service.domain.validity import VALIDITY_TABLE, valid_until

D = dt.date
ISSUED = D(2026, 12, 1)


@pytest.mark.parametrize(
    ("regime", "codes", "expected"),
    [
        pytest.param(
            "vn-2025", ["A1", "A", "B1"], None, id="R-VALID-2025-motorcycles-no-expiry"
        ),
        pytest.param(
            "vn-2025", ["B", "C1"], D(2036, 12, 1), id="R-VALID-2025-B-C1-10-years"
        ),
        pytest.param(
            "vn-2025",
            ["C", "D1", "D2", "D", "BE", "C1E", "CE", "D1E", "D2E", "DE"],
            D(2031, 12, 1),
            id="R-VALID-2025-heavy-5-years",
        ),
        pytest.param(
            "vn-2017", ["A1", "A2", "A3"], None, id="R-VALID-2017-motorcycles-no-expiry"
        ),
        pytest.param(
            "vn-2017", ["A4", "B2"], D(2036, 12, 1), id="R-VALID-2017-A4-B2-10-years"
        ),
        pytest.param(
            "vn-2017",
            ["C", "D", "E", "FB2", "FC", "FD", "FE"],
            D(2031, 12, 1),
            id="R-VALID-2017-heavy-5-years",
        ),
    ],
)
def test_fixed_validity(regime, codes, expected):
    for code in codes:
        assert valid_until(regime, code, ISSUED) == expected, code


# Female born 1980-06-15: 45th birthday 2025-06-15, 55th 2035-06-15.
# Male born 1970-03-10: 50th birthday 2020-03-10, 60th 2030-03-10.
@pytest.mark.parametrize(
    ("code", "sex", "dob", "issued", "expected"),
    [
        pytest.param(
            "B1",
            "female",
            D(1980, 6, 15),
            D(2015, 1, 1),
            D(2035, 6, 15),
            id="R-VALID-B1-female-to-55th",
        ),
        pytest.param(
            "B1",
            "female",
            D(1980, 6, 15),
            D(2025, 6, 14),
            D(2035, 6, 15),
            id="R-VALID-B1-day-before-45th",
        ),
        pytest.param(
            "B1",
            "female",
            D(1980, 6, 15),
            D(2025, 6, 15),
            D(2035, 6, 15),
            id="R-VALID-B1-on-45th-birthday",
        ),
        pytest.param(
            "B1",
            "female",
            D(1980, 6, 15),
            D(2025, 6, 16),
            D(2035, 6, 16),
            id="R-VALID-B1-day-after-45th-10-years",
        ),
        pytest.param(
            "B1TD",
            "female",
            D(1980, 6, 15),
            D(2025, 6, 16),
            D(2035, 6, 16),
            id="R-VALID-B1TD-after-45th",
        ),
        pytest.param(
            "B1",
            "male",
            D(1970, 3, 10),
            D(2000, 1, 1),
            D(2030, 3, 10),
            id="R-VALID-B1-male-to-60th",
        ),
        pytest.param(
            "B1",
            "male",
            D(1970, 3, 10),
            D(2020, 3, 9),
            D(2030, 3, 10),
            id="R-VALID-B1-day-before-50th",
        ),
        pytest.param(
            "B1",
            "male",
            D(1970, 3, 10),
            D(2020, 3, 10),
            D(2030, 3, 10),
            id="R-VALID-B1-on-50th-birthday",
        ),
        pytest.param(
            "B1",
            "male",
            D(1970, 3, 10),
            D(2020, 3, 11),
            D(2030, 3, 11),
            id="R-VALID-B1-day-after-50th-10-years",
        ),
        pytest.param(
            "B1TD",
            "male",
            D(1970, 3, 10),
            D(2010, 5, 5),
            D(2030, 3, 10),
            id="R-VALID-B1TD-male-to-60th",
        ),
        pytest.param(
            "B1",
            "female",
            D(1960, 1, 1),
            D(2020, 1, 1),
            D(2030, 1, 1),
            id="R-VALID-B1-issued-after-55th",
        ),
        pytest.param(
            "B1",
            "female",
            D(1972, 2, 29),
            D(2010, 1, 1),
            D(2027, 2, 28),
            id="R-VALID-B1-born-29-feb",
        ),
        pytest.param(
            "B1",
            "male",
            D(1976, 2, 29),
            D(2026, 2, 28),
            D(2036, 2, 29),
            id="R-VALID-B1-born-29-feb-on-50th-28-feb",
        ),
        pytest.param(
            "B1",
            "male",
            D(1976, 2, 29),
            D(2026, 3, 1),
            D(2036, 3, 1),
            id="R-VALID-B1-born-29-feb-after-50th",
        ),
    ],
)
def test_vn_2017_B1_age_rule(code, sex, dob, issued, expected):
    assert valid_until("vn-2017", code, issued, sex, dob) == expected


@pytest.mark.parametrize(
    ("regime", "code", "issued", "expected"),
    [
        pytest.param(
            "vn-2017", "B2", D(2024, 2, 29), D(2034, 2, 28), id="R-VALID-29-feb-plus-10"
        ),
        pytest.param(
            "vn-2017", "C", D(2024, 2, 29), D(2029, 2, 28), id="R-VALID-29-feb-plus-5"
        ),
        pytest.param(
            "vn-2025", "B", D(2028, 2, 29), D(2038, 2, 28), id="R-VALID-2025-29-feb"
        ),
        pytest.param(
            "vn-2025", "C", D(2028, 2, 29), D(2033, 2, 28), id="R-VALID-2025-29-feb-5"
        ),
    ],
)
def test_29_february_issue_date(regime, code, issued, expected):
    assert valid_until(regime, code, issued) == expected


def test_A1_and_B1_differ_between_regimes_R_VALID_R_CLASS():
    assert valid_until("vn-2025", "B1", ISSUED) is None
    assert valid_until("vn-2017", "B1", ISSUED, "male", D(1990, 1, 1)) == D(2050, 1, 1)


@pytest.mark.parametrize(
    ("regime", "code", "sex", "dob"),
    [
        pytest.param("vn-2017", "B1", None, D(1990, 1, 1), id="B1-without-sex"),
        pytest.param("vn-2017", "B1TD", "male", None, id="B1TD-without-dob"),
        pytest.param("vn-2017", "B1", "other", D(1990, 1, 1), id="B1-unknown-sex"),
        pytest.param("vn-2025", "A2", None, None, id="old-code-under-new-regime"),
        pytest.param("vn-2017", "C1", None, None, id="new-code-under-old-regime"),
    ],
)
def test_invalid_inputs_raise(regime, code, sex, dob):
    with pytest.raises(ValueError):
        valid_until(regime, code, ISSUED, sex, dob)


def test_validity_table_covers_every_class_of_each_regime_R_VALID():
    assert set(VALIDITY_TABLE["vn-2025"]) == NEW_CLASSES
    assert set(VALIDITY_TABLE["vn-2017"]) == OLD_CLASSES
