"""The row parser: one export row → a normalised `Staged` row with every problem; the header check."""

from __future__ import annotations

import datetime
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from licence_service.legacy.rows import COLUMNS, MalformedFileError, RowParser, column_indexes, decode_problems

TODAY = datetime.date(2026, 11, 27)
GOOD = {
    "SO_GPLX": "01 2601 030205", "SO_PHOI": "706704305732", "HO_TEN": "đỗ  thanh  quân", "NGAY_SINH": "5/9/1987",
    "GIOI_TINH": "NAM", "SO_CCCD": "031087068711", "SO_CMND": "", "QUOC_TICH": "",
    "NOI_CU_TRU": "Số 60 Láng Hạ, Hà Nội",
    "MA_TINH": "01", "HANG": "B1 số tự động", "NGAY_TRUNG_TUYEN": "27/12/2024", "NGAY_CAP": "31/12/2024",
    "NGAY_HET_HAN": "Không thời hạn", "TRANG_THAI": "Thu hồi", "DIEM": "",
}
# Every reason code a row can carry; the fuzz test checks nothing else ever appears.
ROW_REASONS = {
    "bad_licence_number", "bad_card_serial", "missing_name", "bad_name", "bad_date_of_birth", "bad_sex",
    "bad_citizen_id", "bad_legacy_id", "missing_identity", "unknown_nationality", "bad_province_code",
    "unknown_class", "bad_pass_date", "bad_issue_date", "bad_expiry_date", "unknown_status", "bad_points",
    "issued_after_2024", "issued_before_passed", "expiry_before_issue", "passed_before_birth", "wrong_field_count",
}


def parse(changes=None, header=COLUMNS, line=7):
    row = {**GOOD, **(changes or {})}
    return RowParser(list(header), TODAY).parse([row[c] for c in header], line)


def codes(staged):
    return [code for code, _ in decode_problems(staged.problems)]


def test_a_quirky_row_is_normalised_into_the_national_model():
    row = parse()
    assert row.problems == ""
    assert (row.line, row.number, row.card_serial) == (7, "012601030205", "706704305732")
    assert (row.full_name, row.date_of_birth, row.birth_year, row.sex) == ("ĐỖ THANH QUÂN", "1987-09-05", 1987, "male")
    assert (row.citizen_id, row.legacy_id, row.nationality) == ("031087068711", None, "VN")
    assert (row.province_code, row.residence) == ("01", "Số 60 Láng Hạ, Hà Nội")
    assert (row.class_code, row.passed_on, row.issued_on, row.valid_until) == ("B1TD", "2024-12-27", "2024-12-31", None)
    assert (row.status, row.points) == ("revoked", 12)


def test_columns_may_come_in_any_order_with_extra_columns():
    header = ["GHI_CHU", *reversed(COLUMNS)]
    parser = RowParser(header, TODAY)
    row = parser.parse(["ignored", *[GOOD[c] for c in reversed(COLUMNS)]], 2)
    assert row.problems == "" and row.number == "012601030205" and row.class_code == "B1TD"


def test_year_only_birth_date_is_kept_as_a_year():
    row = parse({"NGAY_SINH": "1987"})
    assert (row.date_of_birth, row.birth_year, row.problems) == (None, 1987, "")


def test_cmnd_without_cccd_is_a_legacy_id():
    row = parse({"SO_CCCD": "", "SO_CMND": "192364717"})
    assert (row.citizen_id, row.legacy_id, row.problems) == (None, "192364717", "")


def test_no_identity_at_all_is_a_problem():
    assert codes(parse({"SO_CCCD": "", "SO_CMND": ""})) == ["missing_identity"]


def test_citizen_id_must_agree_with_sex_and_birth_year():
    # 031087068711: G=0 (male, 1900s), YY=87.
    row = parse({"GIOI_TINH": "Nữ", "NGAY_SINH": "1988"})
    details = [detail for _, detail in decode_problems(row.problems)]
    assert codes(row) == ["bad_citizen_id", "bad_citizen_id"]
    assert any("sex" in d for d in details) and any("date_of_birth" in d for d in details)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"NGAY_CAP": "05/03/2025", "NGAY_HET_HAN": ""}, ["issued_after_2024"]),
        ({"NGAY_TRUNG_TUYEN": "02/01/2020", "NGAY_CAP": "01/01/2020", "NGAY_HET_HAN": ""}, ["issued_before_passed"]),
        ({"NGAY_HET_HAN": "30/12/2024"}, ["expiry_before_issue"]),
        ({"NGAY_SINH": "1990", "SO_CCCD": "031090068711", "NGAY_TRUNG_TUYEN": "01/01/1989", "NGAY_CAP": "01/02/1989"},
         ["passed_before_birth"]),
    ],
)
def test_dates_must_agree_with_each_other(changes, expected):
    assert codes(parse(changes)) == expected


def test_every_problem_of_a_row_is_reported_not_just_the_first():
    row = parse({"NGAY_CAP": "31/02/2019", "HANG": "Z9", "DIEM": "15", "GIOI_TINH": "X"})
    assert set(codes(row)) == {"bad_issue_date", "unknown_class", "bad_points", "bad_sex"}
    assert row.number == "012601030205"  # still groupable with its licence's other rows


def test_unreadable_licence_number_keeps_the_raw_text_for_the_report():
    row = parse({"SO_GPLX": "01 2345"})
    assert (row.number, row.raw_number, codes(row)) == ("", "01 2345", ["bad_licence_number"])


def test_wrong_number_of_fields_is_one_problem_with_the_number_kept():
    parser = RowParser(list(COLUMNS), TODAY)
    row = parser.parse(["010123456789", "x", "y"], 9)
    assert (row.number, codes(row)) == ("010123456789", ["wrong_field_count"])


def test_the_same_bad_value_is_reported_every_time_it_occurs():
    # Good values are memoised; a bad one must not be served from the memo as if it were good.
    parser = RowParser(list(COLUMNS), TODAY)
    rows = [parser.parse([{**GOOD, "NGAY_CAP": "31/02/2019"}[c] for c in COLUMNS], n) for n in (2, 3)]
    assert [codes(r) for r in rows] == [["bad_issue_date"], ["bad_issue_date"]]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ([c for c in COLUMNS if c != "HANG"], "missing column(s) HANG"),
        ([*COLUMNS, "HANG"], "given twice HANG"),
        (["so_gplx", "a"], "missing column(s) SO_PHOI"),
    ],
)
def test_a_wrong_header_is_a_malformed_file(header, message):
    with pytest.raises(MalformedFileError, match=re.escape(message)):
        column_indexes(header)


def test_header_names_are_trimmed_and_case_insensitive_with_a_stray_bom():
    header = ["\ufeff so_gplx ", *COLUMNS[1:]]
    assert column_indexes(header)["SO_GPLX"] == 0


field_text = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", "1986", "31/02/2019", "Không thời hạn", "B1 TĐ", "NU", "01 0123 456789", "٠١"]),
)


# The machine running the suite may be busy: generation being slow is not a failure here.
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(field_text, min_size=0, max_size=20), st.integers(min_value=2, max_value=10**7))
def test_fuzz_parser_never_raises_and_only_reports_known_reasons(fields, line):
    row = RowParser(list(COLUMNS), TODAY).parse(fields, line)
    assert row.line == line
    assert set(codes(row)) <= ROW_REASONS
    if not row.problems:
        # A row without problems carries everything a licence needs.
        assert row.number and row.full_name and row.sex and row.class_code and row.issued_on and row.passed_on
        assert row.status is not None and row.points is not None and (row.citizen_id or row.legacy_id)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(COLUMNS), field_text))
def test_fuzz_one_field_at_a_time_from_a_good_row(changes):
    row = parse(changes)
    assert set(codes(row)) <= ROW_REASONS
