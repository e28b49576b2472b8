"""The import's shortcuts give exactly the answers of the plain rules they stand in for.

The row parser memoises normalised values and takes "already clean" values as they are; grouping
decides licences whose rows all agree without comparing them, and picks a licence's issue date,
card, status and points in one pass. Each is checked here against the plain computation, on the
sample's quirks and on generated rows.
"""

from __future__ import annotations

import datetime
import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from licence_service.legacy import grouping
from licence_service.legacy import normalise as nz
from licence_service.legacy.grouping import _SEVERITY, NO_RESTRICTIONS, build_licence
from licence_service.legacy.rows import COLUMNS, ExportReader, RowParser
from tests.unit.legacy.exports import row

TODAY = datetime.date(2026, 11, 27)
SAMPLE = Path(__file__).resolve().parents[3] / "data" / "hanoi-legacy-sample.csv"


def sample_fields() -> list[list[str]]:
    with ExportReader(SAMPLE) as reader:
        return [fields for _, fields in reader]


# Field values with the sample's quirks, good and bad, for generated rows.
QUIRKS = {
    "SO_GPLX": ["012601030205", "01 2601 030205", "01.2601.030205", "0126010302", "", "٠١٢٦٠١٠٣٠٢٠٥"],
    "SO_PHOI": ["706704305732", "", " 706704305732 ", "7067-0430", "x" * 17],
    "HO_TEN": ["ĐỖ THANH QUÂN", "đỗ  thanh  quân", "Đỗ Thanh Quân", "", "QUÂN 2"],
    "NGAY_SINH": ["05/09/1987", "5/9/1987", "1987", "31/02/1987", "1850", ""],
    "GIOI_TINH": ["Nam", "NAM", "Nữ", "NU", "nu", "X", ""],
    "SO_CCCD": ["031087068711", "031187068711", "", "03108706871", " 031087068711"],
    "SO_CMND": ["", "192364717", "19236471", " 192364717 "],
    "QUOC_TICH": ["Việt Nam", "", "VN", "Lào"],
    "NOI_CU_TRU": ["Số 60 Láng Hạ, Hà Nội", "Số 60  Láng Hạ,\r\nHà Nội", ""],
    "MA_TINH": ["01", "", "99", " 01"],
    "HANG": ["A1", "B2", "B1 số tự động", "B1TD", "B1 TĐ", "b2", "Z9"],
    "NGAY_TRUNG_TUYEN": ["23/10/2017", "1/2/2016", "31/12/2024", "not a date", ""],
    "NGAY_CAP": ["15/12/2017", "5/1/2018", "05/03/2025", "31/02/2019", ""],
    "NGAY_HET_HAN": ["Không thời hạn", "", "31/12/2029", "14/11/2016", "31/13/2030"],
    "TRANG_THAI": ["Hoạt động", "", "Tạm giữ", "Thu hồi", "Mất"],
    "DIEM": ["", "0", "8", "12", "13", "x"],
}
quirky_row = st.fixed_dictionaries({c: st.sampled_from(v) for c, v in QUIRKS.items()})


def test_a_warm_parser_parses_every_sample_row_as_a_fresh_one_does():
    # A fresh parser per row has empty memos: every field goes through its normaliser.
    rows = sample_fields()
    warm = RowParser(list(COLUMNS), TODAY)
    for line, fields in itertools.chain(enumerate(rows, 2), enumerate(rows, 2)):  # twice: all memo hits
        assert warm.parse(fields, line) == RowParser(list(COLUMNS), TODAY).parse(fields, line)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(quirky_row, min_size=1, max_size=30))
def test_a_warm_parser_parses_generated_quirky_rows_as_a_fresh_one_does(rows):
    warm = RowParser(list(COLUMNS), TODAY)
    for line, r in itertools.chain(enumerate(rows, 2), enumerate(rows, 2)):
        fields = [r[c] for c in COLUMNS]
        assert warm.parse(fields, line) == RowParser(list(COLUMNS), TODAY).parse(fields, line)


def test_columns_in_another_order_parse_as_in_the_department_s_order():
    header = ["GHI_CHU", *reversed(COLUMNS)]
    ordered, shuffled = RowParser(list(COLUMNS), TODAY), RowParser(header, TODAY)
    for line, fields in enumerate(sample_fields(), 2):
        by_name = dict(zip(COLUMNS, fields, strict=True))
        assert shuffled.parse(["x", *[by_name[c] for c in reversed(COLUMNS)]], line) == ordered.parse(fields, line)


@given(st.text(alphabet="0123456789", min_size=12, max_size=12))
def test_a_clean_twelve_digit_value_is_its_own_licence_number_and_citizen_id(value):
    assert nz.licence_number(value) == value
    assert nz.citizen_id(value) == value


@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_a_clean_nine_digit_value_is_its_own_cmnd(value):
    assert nz.legacy_id(value) == value


@given(st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", min_size=1, max_size=16))
def test_a_clean_serial_is_its_own_card_serial(value):
    assert nz.card_serial(value) == value


def test_empty_identifiers_are_none_as_the_normalisers_say():
    assert nz.citizen_id("") is None and nz.legacy_id("") is None


def _by_rules(rows):
    """`build_licence` without the shortcut for rows that all agree."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(grouping, "_in_agreement", lambda rows: False)
        return build_licence(rows)


def test_every_sample_licence_is_decided_as_the_rules_decide_it():
    parser = RowParser(list(COLUMNS), TODAY)
    staged = [parser.parse(fields, line) for line, fields in enumerate(sample_fields(), 2)]
    groups = {}
    for s in staged:
        groups.setdefault(s.number, []).append(s)
    shortcut = 0
    for rows in groups.values():
        if len(rows) > 1:
            shortcut += grouping._in_agreement(rows)
            assert build_licence(rows) == _by_rules(rows)
    assert shortcut > 0  # the sample has licences the shortcut decides


# Rows of one licence that agree on the person, or nearly (a second spelling, a year-only date).
licence_row = st.fixed_dictionaries({
    "HO_TEN": st.sampled_from(["ĐỖ THANH QUÂN", "đỗ  thanh  quân", "ĐỖ THANH QUÂN KHÁC"]),
    "NGAY_SINH": st.sampled_from(["05/09/1987", "5/9/1987", "1987"]),
    "GIOI_TINH": st.sampled_from(["Nam", "NAM", "Nữ"]),
    "SO_CCCD": st.sampled_from(["031087068711", ""]),
    "SO_CMND": st.sampled_from(["", "192364717"]),
    "SO_PHOI": st.sampled_from(["706704305732", "706704305733", ""]),
    "HANG": st.sampled_from(["A1", "B2", "B1TD", "B1 TĐ", "C", "Z9"]),
    "NGAY_CAP": st.sampled_from(["15/12/2017", "14/11/2021", "14/11/2021", "31/02/2019"]),
    "TRANG_THAI": st.sampled_from(["Hoạt động", "Tạm giữ", "Thu hồi", ""]),
    "DIEM": st.sampled_from(["", "0", "8"]),
}).map(lambda changes: row(SO_GPLX="012601030205", NGAY_TRUNG_TUYEN="23/10/2017", NGAY_HET_HAN="",
                           **changes))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(licence_row, min_size=2, max_size=5))
def test_generated_licences_are_decided_as_the_rules_decide_them(rows):
    parser = RowParser(list(COLUMNS), TODAY)
    staged = [parser.parse([r[c] for c in COLUMNS], line) for line, r in enumerate(rows, 2)]
    assert build_licence(staged) == _by_rules(staged)


# Rows of one licence with one person (written the same way on every row) and their own classes.
agreeing_rows = st.tuples(
    st.fixed_dictionaries({k: st.sampled_from(v) for k, v in {
        "HO_TEN": ["ĐỖ THANH QUÂN", "đỗ  thanh  quân"], "NGAY_SINH": ["05/09/1987", "1987"],
    }.items()}).flatmap(lambda person: st.sampled_from([
        {**person, "SO_CCCD": "031087068711", "SO_CMND": ""}, {**person, "SO_CCCD": "", "SO_CMND": "192364717"},
        {**person, "SO_CCCD": "031087068711", "SO_CMND": "192364717"},
    ])),
    st.lists(st.fixed_dictionaries({k: st.sampled_from(v) for k, v in {
        "HANG": ["A1", "B2", "B1TD", "C", "D"], "NGAY_CAP": ["15/12/2017", "14/11/2021"],
        "SO_PHOI": ["706704305732", "706704305733", ""], "TRANG_THAI": ["Hoạt động", "Tạm giữ", "Thu hồi", ""],
        "DIEM": ["", "0", "8"],
    }.items()}), min_size=2, max_size=4, unique_by=lambda r: r["HANG"]),
).map(lambda drawn: [row(SO_GPLX="012601030205", NGAY_TRUNG_TUYEN="23/10/2017", NGAY_HET_HAN="", **drawn[0], **r)
                     for r in drawn[1]])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(agreeing_rows)
def test_licences_whose_rows_agree_take_the_shortcut_and_are_decided_as_the_rules_decide_them(rows):
    parser = RowParser(list(COLUMNS), TODAY)
    staged = [parser.parse([r[c] for c in COLUMNS], line) for line, r in enumerate(rows, 2)]
    assert grouping._in_agreement(staged)
    assert build_licence(staged) == _by_rules(staged)


def _licence_by_sorting(number, accepted, person):
    # The licence's choices spelled out with sorts, as they are described in grouping's docstring.
    by_issue = sorted(accepted, key=lambda r: (r.issued_on, -r.line), reverse=True)
    classes = sorted(
        [(number, r.class_code, r.passed_on, r.issued_on, r.valid_until, NO_RESTRICTIONS) for r in accepted],
        key=lambda c: grouping._CLASS_RANK[c[1]],
    )
    return (
        number, tuple(r.line for r in accepted), tuple(person), by_issue[0].issued_on,
        max((r.status for r in accepted), key=_SEVERITY.__getitem__), min(r.points for r in accepted),
        next((r.card_serial for r in by_issue if r.card_serial), None), tuple(classes),
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(licence_row, min_size=1, max_size=6))
def test_the_one_pass_licence_chooses_as_the_sorted_rules_do(rows):
    parser = RowParser(list(COLUMNS), TODAY)
    staged = [parser.parse([r[c] for c in COLUMNS], line) for line, r in enumerate(rows, 2)]
    accepted = [s for s in staged if not s.problems]
    assume(accepted)
    person = grouping._person_tuple(accepted[0])
    assert grouping._licence(accepted[0].number, accepted, person) == _licence_by_sorting(
        accepted[0].number, accepted, person
    )
