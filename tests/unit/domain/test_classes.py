"""R-CLASS sets and R-CONV conversion (a table, applied by convert_classes), plus covered_by."""

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from licence_service.domain.classes import (
    CONVERSION_TABLE,
    NEW_CLASSES,
    OLD_CLASS_ORDER,
    OLD_CLASSES,
    ConversionResult,
    convert_classes,
    covered_by,
)

from .builders import cls

PASSED = dt.date(2010, 1, 1)


@pytest.mark.parametrize(
    ("old", "new", "restrictions"),
    [
        pytest.param("A1", "A", ("MC_LT_175CC",), id="R-CONV-1"),
        pytest.param("A2", "A", (), id="R-CONV-2"),
        pytest.param("A3", "B1", (), id="R-CONV-3"),
        pytest.param("B1TD", "B", ("AUTOMATIC_ONLY",), id="R-CONV-5"),
        pytest.param("B1", "B", (), id="R-CONV-6-B1"),
        pytest.param("B2", "B", (), id="R-CONV-6-B2"),
        pytest.param("C", "C", (), id="R-CONV-7"),
        pytest.param("D", "D2", (), id="R-CONV-8"),
        pytest.param("E", "D", (), id="R-CONV-9"),
        pytest.param("FB2", "BE", (), id="R-CONV-10-FB2"),
        pytest.param("FC", "CE", (), id="R-CONV-10-FC"),
        pytest.param("FD", "D2E", (), id="R-CONV-10-FD"),
        pytest.param("FE", "DE", (), id="R-CONV-10-FE"),
    ],
)
def test_old_class_converts_under_vn_2025(old, new, restrictions):
    result = convert_classes(
        "vn-2017", [cls(old, dt.date(2026, 1, 1))], "vn-2025", None
    )
    assert result == ConversionResult(
        (cls(new, None, PASSED, restrictions),), not_renewable=()
    )


def test_A4_is_not_renewable_and_the_other_classes_still_convert_R_CONV_4():
    result = convert_classes("vn-2017", [cls("A4"), cls("B2")], "vn-2025", None)
    assert result.not_renewable == ("A4",)
    assert [c.code for c in result.classes] == ["B"]


@pytest.mark.parametrize(
    ("old", "requested", "new", "ignored"),
    [
        pytest.param("B1", "C1", "C1", (), id="R-CONV-6-B1-asks-C1"),
        pytest.param("B2", "C1", "C1", (), id="R-CONV-6-B2-asks-C1"),
        pytest.param("B2", "B", "B", (), id="R-CONV-6-B2-asks-default"),
        pytest.param(
            "B1TD", "C1", "B", (("B1TD", "C1"),), id="R-CONV-5-automatic-cannot-ask-C1"
        ),
        pytest.param(
            "B2", "C", "B", (("B2", "C"),), id="R-CONV-6-only-C1-is-an-alternative"
        ),
        pytest.param("A1", "A1", "A", (("A1", "A1"),), id="R-CONV-1-no-alternative"),
    ],
)
def test_requested_classes_change_only_B1_B2_to_C1(old, requested, new, ignored):
    result = convert_classes("vn-2017", [cls(old)], "vn-2025", {old: requested})
    assert [c.code for c in result.classes] == [new]
    assert result.ignored_requests == ignored


def test_request_for_a_class_not_on_the_licence_is_reported_as_ignored_R_CONV_6():
    result = convert_classes("vn-2017", [cls("A1")], "vn-2025", {"B2": "C1"})
    assert [c.code for c in result.classes] == ["A"]
    assert result.ignored_requests == (("B2", "C1"),)


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        pytest.param(
            [
                cls("A1", passed_on=dt.date(2005, 1, 1)),
                cls("A2", passed_on=dt.date(2012, 1, 1)),
            ],
            cls("A", None, dt.date(2012, 1, 1), ()),
            id="R-CONV-1-2-A1-and-A2-give-one-unrestricted-A",
        ),
        pytest.param(
            [
                cls("B1TD", passed_on=dt.date(2015, 1, 1)),
                cls("B2", passed_on=dt.date(2018, 1, 1)),
            ],
            cls("B", None, dt.date(2018, 1, 1), ()),
            id="R-CONV-5-6-B1TD-and-B2-give-one-unrestricted-B",
        ),
        pytest.param(
            [
                cls("B1", passed_on=dt.date(2015, 1, 1)),
                cls("B2", passed_on=dt.date(2011, 1, 1)),
            ],
            cls("B", None, dt.date(2011, 1, 1), ()),
            id="R-CONV-6-B1-and-B2-keep-the-earlier-pass-date",
        ),
    ],
)
def test_two_old_classes_becoming_one_new_class_keep_the_widest_right(
    sources, expected
):
    result = convert_classes("vn-2017", sources, "vn-2025", None)
    assert result.classes == (expected,)


def test_converted_classes_are_in_printing_order_and_keep_pass_dates_R_CONV():
    old = [
        cls("C", passed_on=dt.date(2012, 3, 4)),
        cls("A1", passed_on=dt.date(2001, 2, 3)),
    ]
    result = convert_classes("vn-2017", old, "vn-2025", None)
    assert [(c.code, c.passed_on) for c in result.classes] == [
        ("A", dt.date(2001, 2, 3)),
        ("C", dt.date(2012, 3, 4)),
    ]
    assert all(c.valid_until is None for c in result.classes)


@pytest.mark.parametrize(
    ("regime", "classes"),
    [
        pytest.param(
            "vn-2017",
            [cls("A4"), cls("B1"), cls("FE")],
            id="R-CONV-vn-2017-keeps-classes",
        ),
        pytest.param(
            "vn-2025",
            [cls("A", restrictions=("MC_LT_175CC",)), cls("B1"), cls("C1")],
            id="R-CONV-vn-2025-class-for-class",
        ),
    ],
)
def test_same_regime_renews_class_for_class(regime, classes):
    result = convert_classes(regime, classes, regime, {"B1": "C1"})
    assert [(c.code, c.restrictions) for c in result.classes] == [
        (c.code, c.restrictions) for c in classes
    ]
    assert result.not_renewable == ()
    assert result.ignored_requests == (("B1", "C1"),)


@pytest.mark.parametrize(
    ("licence_regime", "classes", "target"),
    [
        pytest.param(
            "vn-2025", [cls("B")], "vn-2017", id="new-licence-under-old-regime"
        ),
        pytest.param("vn-2017", [cls("B")], "vn-2025", id="new-code-on-old-licence"),
        pytest.param("vn-2017", [cls("A1")], "vn-2030", id="unknown-regime"),
    ],
)
def test_impossible_conversions_raise(licence_regime, classes, target):
    with pytest.raises(ValueError):
        convert_classes(licence_regime, classes, target, None)


def test_conversion_table_covers_exactly_the_old_classes_R_CONV_R_CLASS():
    assert set(CONVERSION_TABLE) == OLD_CLASSES
    for row in CONVERSION_TABLE.values():
        assert row.new_code is None or row.new_code in NEW_CLASSES
        assert row.on_request <= NEW_CLASSES


@pytest.mark.parametrize(
    ("fit_for", "code", "regime", "expected"),
    [
        pytest.param({"B"}, "B2", "vn-2017", True, id="old-B2-covered-by-B"),
        pytest.param({"A"}, "A1", "vn-2017", True, id="old-A1-covered-by-A"),
        pytest.param({"B1"}, "A3", "vn-2017", True, id="old-A3-covered-by-new-B1"),
        pytest.param({"B1"}, "B1", "vn-2017", False, id="old-B1-is-a-car-not-new-B1"),
        pytest.param({"B"}, "B1", "vn-2017", True, id="old-B1-covered-by-B"),
        pytest.param({"C1"}, "B2", "vn-2017", False, id="C1-does-not-imply-B"),
        pytest.param({"D2"}, "D", "vn-2017", True, id="old-D-covered-by-D2"),
        pytest.param({"D"}, "D", "vn-2017", False, id="old-D-is-not-new-D"),
        pytest.param({"A4"}, "A4", "vn-2017", True, id="A4-by-literal-code"),
        pytest.param(set(), "A4", "vn-2017", False, id="A4-not-listed"),
        pytest.param({"B1"}, "B1", "vn-2025", True, id="new-B1-literal"),
        pytest.param({"B"}, "C1", "vn-2025", False, id="new-C1-needs-C1"),
    ],
)
def test_covered_by_reads_old_classes_through_the_conversion_R_HEALTH_R_CONV(
    fit_for, code, regime, expected
):
    assert covered_by(fit_for, code, regime) is expected


old_class_sets = st.lists(st.sampled_from(OLD_CLASS_ORDER), min_size=1, unique=True)
requests = st.dictionaries(
    st.sampled_from(OLD_CLASS_ORDER), st.sampled_from(sorted(NEW_CLASSES)), max_size=4
)


@given(old_class_sets, requests)
def test_conversion_is_total_over_the_old_classes_R_CONV(codes, requested):
    result = convert_classes("vn-2017", [cls(c) for c in codes], "vn-2025", requested)
    produced = {c.code for c in result.classes}
    assert produced <= NEW_CLASSES
    for code in codes:
        row = CONVERSION_TABLE[code]
        if row.new_code is None:
            assert code in result.not_renewable
        else:
            wanted = requested.get(code)
            target = wanted if wanted in row.on_request else row.new_code
            assert target in produced
    assert set(result.not_renewable) == {
        c for c in codes if CONVERSION_TABLE[c].new_code is None
    }
    assert len(produced) == len(result.classes)
