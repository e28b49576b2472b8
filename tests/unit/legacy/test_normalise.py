"""Each field normaliser of the legacy export, table-driven (NATIONAL-MODEL.md, the export's table)."""

from __future__ import annotations

import datetime
import unicodedata

import pytest

from licence_service.legacy import normalise as nz

TODAY = datetime.date(2026, 11, 27)
NFD = unicodedata.normalize("NFD", "Nguyễn Văn Ân")


def _code(fn, raw):
    with pytest.raises(nz.FieldError) as caught:
        fn(raw)
    return caught.value.code


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("010123456789", "010123456789"),
        ("01 0123 456789", "010123456789"),
        ("01.0123.456789", "010123456789"),
        (" 010123456789 ", "010123456789"),
        ("01 . 0123 456789", "010123456789"),
    ],
)
def test_licence_number_accepts_spaces_and_dots(raw, expected):
    assert nz.licence_number(raw) == expected


@pytest.mark.parametrize("raw", ["", "0101234567", "0101234567890", "01-0123-456789", "01012345678x", "٠١٠١٢٣٤٥٦٧٨٩"])
def test_licence_number_refuses_anything_but_12_ascii_digits(raw):
    assert _code(nz.licence_number, raw) == "bad_licence_number"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("706704305732", "706704305732"), ("", None), ("  ", None), (" AB12 ", "AB12")],
)
def test_card_serial_is_optional(raw, expected):
    assert nz.card_serial(raw) == expected


@pytest.mark.parametrize("raw", ["7067-0430", "1" * 17, "số1"])
def test_card_serial_refuses_what_the_register_cannot_hold(raw):
    assert _code(nz.card_serial, raw) == "bad_card_serial"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("001089012345", "001089012345"), ("", None), (" 001089012345 ", "001089012345")],
)
def test_citizen_id_is_12_digits_or_absent(raw, expected):
    assert nz.citizen_id(raw) == expected


@pytest.mark.parametrize("raw", ["00108901234", "0010890123456", "00108901234X"])
def test_citizen_id_refuses_other_lengths(raw):
    assert _code(nz.citizen_id, raw) == "bad_citizen_id"


@pytest.mark.parametrize(("raw", "expected"), [("192364717", "192364717"), ("", None)])
def test_legacy_id_is_the_9_digit_cmnd(raw, expected):
    assert nz.legacy_id(raw) == expected


@pytest.mark.parametrize("raw", ["19236471", "1923647170", "19236471x"])
def test_legacy_id_refuses_other_lengths(raw):
    assert _code(nz.legacy_id, raw) == "bad_legacy_id"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ĐỖ THANH QUÂN", "ĐỖ THANH QUÂN"),
        ("lê  thu  yến", "LÊ THU YẾN"),
        ("Ngô Minh Thảo", "NGÔ MINH THẢO"),
        (NFD, "NGUYỄN VĂN ÂN"),
        ("  phan\tthanh  hải ", "PHAN THANH HẢI"),
    ],
)
def test_full_name_is_upper_case_nfc_with_single_spaces(raw, expected):
    name = nz.full_name(raw)
    assert name == expected
    assert unicodedata.is_normalized("NFC", name)


@pytest.mark.parametrize(("raw", "code"), [("", "missing_name"), ("   ", "missing_name"), ("NGUYỄN VĂN 2", "bad_name")])
def test_full_name_refuses_empty_and_non_names(raw, code):
    assert _code(nz.full_name, raw) == code


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("05/09/1987", (datetime.date(1987, 9, 5), 1987)),
        ("4/2/1950", (datetime.date(1950, 2, 4), 1950)),
        ("1986", (None, 1986)),
        (" 1986 ", (None, 1986)),
    ],
)
def test_date_of_birth_full_short_or_year_only(raw, expected):
    assert nz.date_of_birth(raw, TODAY) == expected


@pytest.mark.parametrize("raw", ["", "31/02/1990", "1990-05-17", "05/09/87", "1899", "2027", "5/9/1987/1", "١٩٨٦"])
def test_date_of_birth_refuses_impossible_or_foreign_forms(raw):
    assert _code(lambda r: nz.date_of_birth(r, TODAY), raw) == "bad_date_of_birth"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Nam", "male"), ("NAM", "male"), ("nam", "male"), ("Nữ", "female"), ("NU", "female"), ("nu", "female"),
     (unicodedata.normalize("NFD", "Nữ"), "female"), ("NỮ", "female")],
)
def test_sex_spellings(raw, expected):
    assert nz.sex(raw) == expected


@pytest.mark.parametrize("raw", ["", "X", "M", "Nam Nữ"])
def test_sex_refuses_anything_else(raw):
    assert _code(nz.sex, raw) == "bad_sex"


@pytest.mark.parametrize("raw", ["Việt Nam", "", "VIỆT NAM", "Viet Nam", "VN"])
def test_nationality_viet_nam_or_empty_is_vn(raw):
    assert nz.nationality(raw) == "VN"


def test_nationality_refuses_other_countries():
    assert _code(nz.nationality, "Lào") == "unknown_nationality"


@pytest.mark.parametrize(("raw", "expected"), [("01", "01"), ("26", "26"), ("79", "79"), ("", None)])
def test_province_code_pre_or_post_2025(raw, expected):
    # 26 (Vĩnh Phúc) exists only before the 2025 merger; it is kept as written.
    assert nz.province_code(raw) == expected


@pytest.mark.parametrize("raw", ["1", "001", "03", "99", "HN"])
def test_province_code_refuses_unknown_codes(raw):
    assert _code(nz.province_code, raw) == "bad_province_code"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Số 60 Láng Hạ,  Hà Nội", "Số 60 Láng Hạ, Hà Nội"), ("", None),
     (unicodedata.normalize("NFD", "Hà Nội"), "Hà Nội")],
)
def test_residence_is_free_text_in_nfc(raw, expected):
    assert nz.residence(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("A1", "A1"), ("a1", "A1"), (" B2 ", "B2"), ("FB2", "FB2"), ("E", "E"),
        ("B1 số tự động", "B1TD"), ("B1TD", "B1TD"), ("B1 TĐ", "B1TD"), ("b1 tđ", "B1TD"),
        (unicodedata.normalize("NFD", "B1 số tự động"), "B1TD"), ("B1", "B1"),
    ],
)
def test_class_code_and_the_b1_automatic_spellings(raw, expected):
    assert nz.class_code(raw) == expected


@pytest.mark.parametrize("raw", ["", "B", "C1", "Z9", "A 5"])
def test_class_code_refuses_non_vn_2017_classes(raw):
    # B and C1 are vn-2025 classes: the Department issued none (its last card was 2024-12-31).
    assert _code(nz.class_code, raw) == "unknown_class"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("23/10/2017", datetime.date(2017, 10, 23)), ("9/11/2015", datetime.date(2015, 11, 9)),
     (" 11/7/2021 ", datetime.date(2021, 7, 11))],
)
def test_class_date(raw, expected):
    assert nz.class_date(raw, "bad_issue_date") == expected


@pytest.mark.parametrize("raw", ["", "31/02/2019", "2019-02-01", "not a date", "1/1/19"])
def test_class_date_errors_name_the_field(raw):
    assert _code(lambda r: nz.class_date(r, "bad_pass_date"), raw) == "bad_pass_date"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("31/12/2029", datetime.date(2029, 12, 31)), ("Không thời hạn", None), ("", None),
     ("KHÔNG THỜI HẠN", None), ("khong thoi han", None), (unicodedata.normalize("NFD", "Không thời hạn"), None)],
)
def test_expiry_or_no_expiry(raw, expected):
    assert nz.expiry(raw) == expected


def test_expiry_refuses_other_text():
    assert _code(nz.expiry, "vĩnh viễn") == "bad_expiry_date"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Hoạt động", "valid"), ("", "valid"), ("Tạm giữ", "confiscated"), ("Thu hồi", "revoked"),
     ("THU HỒI", "revoked"), (unicodedata.normalize("NFD", "Tạm giữ"), "confiscated")],
)
def test_status_mapping(raw, expected):
    assert nz.status(raw) == expected


def test_status_refuses_unknown_words():
    assert _code(nz.status, "Đã hủy") == "unknown_status"


@pytest.mark.parametrize(("raw", "expected"), [("", 12), ("12", 12), ("8", 8), ("0", 0), (" 5 ", 5)])
def test_points_empty_is_twelve(raw, expected):
    assert nz.points(raw) == expected


@pytest.mark.parametrize("raw", ["13", "15", "-1", "8.5", "tám"])
def test_points_refuses_outside_0_to_12(raw):
    assert _code(nz.points, raw) == "bad_points"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Nữ", "nu"), ("  B1   TĐ ", "b1 td"), ("Không thời hạn", "khong thoi han"), ("ĐỖ", "do")],
)
def test_fold_strips_case_diacritics_and_extra_space(raw, expected):
    assert nz.fold(raw) == expected
