"""The rows of one licence number become one licence, or are rejected with every reason."""

from __future__ import annotations

import datetime

from licence_service.legacy.grouping import build_licence, view
from licence_service.legacy.rows import COLUMNS, RowParser
from tests.unit.legacy.exports import row

TODAY = datetime.date(2026, 11, 27)


def staged(*rows):
    parser = RowParser(list(COLUMNS), TODAY)
    return [parser.parse([r[c] for c in COLUMNS], line) for line, r in enumerate(rows, start=2)]


def build(*rows):
    record, rejects = build_licence(staged(*rows))
    return (view(record) if record is not None else None), {r.line: dict(r.reasons) for r in rejects}


def test_class_rows_of_one_licence_become_one_licence_with_its_classes():
    licence, rejects = build(
        row(HANG="B2", NGAY_TRUNG_TUYEN="01/06/1990", NGAY_CAP="14/11/2021", NGAY_HET_HAN="14/11/2031",
            SO_PHOI="900000000099"),
        row(SO_GPLX="01.9000.000011", HANG="A1", HO_TEN="trần  văn  năm"),
    )
    assert rejects == {}
    assert licence.number == "019000000011" and licence.lines == (2, 3)
    assert [c.code for c in licence.classes] == ["A1", "B2"]  # R-CLASS printing order
    b2 = licence.classes[1]
    assert (b2.passed_on, b2.issued_on, b2.valid_until) == ("1990-06-01", "2021-11-14", "2031-11-14")
    assert b2.restrictions == "[]"
    # The card is the one on the most recently issued row; the licence's issue date is the latest.
    assert (licence.issued_on, licence.card_serial) == ("2021-11-14", "900000000099")
    assert licence.person.full_name == "TRẦN VĂN NĂM"


def test_a_row_contradicting_the_person_is_rejected_with_every_reason():
    licence, rejects = build(
        row(HANG="A1"),
        row(HANG="B2", HO_TEN="TRẦN VĂN TÁM", GIOI_TINH="Nữ", NGAY_CAP="31/02/2010", NGAY_TRUNG_TUYEN="01/01/2010",
            NGAY_HET_HAN=""),
    )
    assert [c.code for c in licence.classes] == ["A1"]
    reasons = rejects[3]
    assert set(reasons) == {"bad_issue_date", "bad_citizen_id", "conflicting_person"}
    assert "TRẦN VĂN TÁM" in reasons["conflicting_person"] and "sex female" in reasons["conflicting_person"]


def test_year_only_and_full_birth_date_of_the_same_year_agree_and_the_full_date_wins():
    licence, rejects = build(row(HANG="A1", NGAY_SINH="1960"), row(HANG="B2", NGAY_CAP="20/04/1990",
                                                                   NGAY_TRUNG_TUYEN="01/04/1990", NGAY_HET_HAN=""))
    assert rejects == {}
    assert (licence.person.date_of_birth, licence.person.birth_year) == ("1960-03-12", None)


def test_a_year_only_birth_date_alone_is_kept_as_a_year():
    licence, _ = build(row(NGAY_SINH="1960"))
    assert (licence.person.date_of_birth, licence.person.birth_year) == (None, 1960)


def test_a_different_year_of_birth_contradicts():
    _, rejects = build(row(HANG="A1"), row(HANG="A2", NGAY_SINH="1961", SO_CCCD=""))
    assert "year of birth 1961 is not 1960" in rejects[3]["conflicting_person"]


def test_an_empty_citizen_id_is_not_a_contradiction_and_a_later_one_completes_the_person():
    licence, rejects = build(row(HANG="A1", SO_CCCD="", SO_CMND="192364717"), row(HANG="A2"))
    assert rejects == {}
    assert (licence.person.citizen_id, licence.person.legacy_id) == ("001060123456", "192364717")


def test_two_different_citizen_ids_contradict():
    _, rejects = build(row(HANG="A1"), row(HANG="A2", SO_CCCD="001060123457"))
    assert "citizen ID 001060123457 is not 001060123456" in rejects[3]["conflicting_person"]


def test_the_same_class_twice_keeps_the_first():
    licence, rejects = build(row(HANG="A1"), row(HANG="a1", NGAY_CAP="21/04/1985"))
    assert [c.issued_on for c in licence.classes] == ["1985-04-20"]
    assert rejects[3] == {"duplicate_class": "A1 is already on line 2"}


def test_the_reference_person_is_the_first_row_without_problems():
    # Line 2 is bad on its own; line 3 defines the person; line 2 is also checked against it.
    licence, rejects = build(row(HANG="Z9", HO_TEN="AI ĐÓ"), row(HANG="A1"))
    assert licence.lines == (3,)
    assert set(rejects[2]) == {"unknown_class", "conflicting_person"}


def test_when_every_row_is_bad_there_is_no_licence():
    licence, rejects = build(row(HANG="Z9"), row(DIEM="13", HANG="A2"))
    assert licence is None
    assert rejects == {2: {"unknown_class": "'Z9' is not a vn-2017 class"}, 3: {"bad_points": "'13' is not 0-12"}}


def test_rows_disagreeing_on_status_or_points_keep_the_most_severe():
    licence, _ = build(row(HANG="A1", TRANG_THAI="Hoạt động", DIEM="8"),
                       row(HANG="A2", TRANG_THAI="Tạm giữ", DIEM="12"))
    assert (licence.status, licence.points) == ("confiscated", 8)


def test_residence_differences_do_not_reject_and_the_first_row_s_residence_is_kept():
    licence, rejects = build(row(HANG="A1"), row(HANG="A2", NOI_CU_TRU="Số 2 Kim Mã, Hà Nội"))
    assert rejects == {} and licence.person.residence == "Số 1 Hàng Bài, Hà Nội"
