"""R-ID: citizen ID structure and cross-checks, licence numbers, province codes."""

import datetime as dt

import pytest

from licence_service.domain.identifiers import (
    BIRTH_PROVINCE_CODES,
    PROVINCE_CODES_2025,
    citizen_id_problems,
    is_licence_number,
)

MALE_1989 = ("male", dt.date(1989, 5, 17))


@pytest.mark.parametrize(
    ("citizen_id", "sex", "dob", "problems"),
    [
        pytest.param("001089012345", *MALE_1989, [], id="R-ID-male-1900s"),
        pytest.param(
            "031197044867", "female", dt.date(1997, 1, 22), [], id="R-ID-female-1900s"
        ),
        pytest.param(
            "001203000001", "male", dt.date(2003, 1, 1), [], id="R-ID-male-2000s"
        ),
        pytest.param(
            "079305000001", "female", dt.date(2005, 1, 1), [], id="R-ID-female-2000s"
        ),
        pytest.param(
            "001400000001", "male", dt.date(2100, 1, 1), [], id="R-ID-male-2100s"
        ),
        pytest.param(
            "001089012345", None, None, [], id="R-ID-no-cross-check-without-facts"
        ),
        pytest.param(
            "101089012345", *MALE_1989, [], id="R-ID-abroad-non-zero-first-digit"
        ),
        pytest.param(
            "00108901234", *MALE_1989, ["must be 12 digits"], id="R-ID-11-digits"
        ),
        pytest.param(
            "0010890123456", *MALE_1989, ["must be 12 digits"], id="R-ID-13-digits"
        ),
        pytest.param(
            "00108901234a", *MALE_1989, ["must be 12 digits"], id="R-ID-letter"
        ),
        pytest.param(
            "٠٠١٠٨٩٠١٢٣٤٥",
            *MALE_1989,
            ["must be 12 digits"],
            id="R-ID-non-ascii-digits",
        ),
        pytest.param("", *MALE_1989, ["must be 12 digits"], id="R-ID-empty"),
        pytest.param(
            "003089012345",
            *MALE_1989,
            ["unknown province code"],
            id="R-ID-unknown-province",
        ),
        pytest.param(
            "001189012345", *MALE_1989, ["does not match sex"], id="R-ID-G-says-female"
        ),
        pytest.param(
            "001088012345",
            *MALE_1989,
            ["does not match date_of_birth"],
            id="R-ID-YY-wrong",
        ),
        pytest.param(
            "001289012345",
            *MALE_1989,
            ["does not match date_of_birth"],
            id="R-ID-G-says-2089-century",
        ),
        pytest.param(
            "001689012345",
            *MALE_1989,
            ["unknown century/sex digit"],
            id="R-ID-G-out-of-range",
        ),
        pytest.param(
            "003388012345",
            *MALE_1989,
            [
                "unknown province code",
                "does not match date_of_birth",
                "does not match sex",
            ],
            id="R-ID-every-problem-reported",
        ),
    ],
)
def test_citizen_id_problems(citizen_id, sex, dob, problems):
    assert citizen_id_problems(citizen_id, sex, dob) == problems


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("010123456789", True, id="R-ID-12-digits"),
        pytest.param("01 0123 456789", False, id="R-ID-spaces-are-not-normalised-here"),
        pytest.param("01012345678", False, id="R-ID-11-digits"),
        pytest.param("AB0123456789", False, id="R-ID-old-paper-format"),
        pytest.param(10123456789, False, id="R-ID-integer"),
        pytest.param(None, False, id="R-ID-none"),
    ],
)
def test_is_licence_number(value, expected):
    assert is_licence_number(value) is expected


def test_birth_province_codes_are_the_63_listed_three_digit_codes_R_ID():
    assert len(BIRTH_PROVINCE_CODES) == 63
    assert all(len(c) == 3 and c.isdigit() for c in BIRTH_PROVINCE_CODES)
    assert {
        "001",
        "033",
        "038",
        "044",
        "046",
        "066",
        "068",
        "082",
        "084",
        "091",
        "096",
    } <= (BIRTH_PROVINCE_CODES)
    assert not {"003", "039", "050", "090", "097"} & BIRTH_PROVINCE_CODES


def test_2025_province_codes_are_the_34_merged_provinces_R_ID():
    assert len(PROVINCE_CODES_2025) == 34
    assert all(len(c) == 2 and c.isdigit() for c in PROVINCE_CODES_2025)
    assert {"01", "79"} <= PROVINCE_CODES_2025  # Hà Nội, Hồ Chí Minh City
