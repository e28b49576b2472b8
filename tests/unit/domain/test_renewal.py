"""R-CONV + R-VALID: the classes printed on the renewed licence."""

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from licence_service.domain.classes import NEW_CLASS_ORDER, OLD_CLASS_ORDER
from licence_service.domain.renewal import renew

from .builders import cls, licence, person

D = dt.date
ISSUED = D(2026, 12, 1)


def test_old_licence_renewed_under_vn_2025_converts_and_restarts_validity():
    lic = licence(cls("A1"), cls("B2", D(2026, 12, 5)), cls("C", D(2030, 1, 1)))
    renewed = renew(lic, ISSUED, "vn-2025")
    assert [(c.code, c.valid_until, c.restrictions) for c in renewed] == [
        ("A", None, ("MC_LT_175CC",)),
        ("B", D(2036, 12, 1), ()),  # the old 2026-12-05 expiry does not carry over
        ("C", D(2031, 12, 1), ()),  # nor does the later 2030-01-01 one
    ]


def test_pass_dates_are_kept_R_CONV():
    lic = licence(cls("B2", D(2027, 1, 1), passed_on=D(2003, 4, 5)))
    assert renew(lic, ISSUED, "vn-2025")[0].passed_on == D(2003, 4, 5)


def test_requested_C1_is_valid_ten_years_R_CONV_6_R_VALID():
    renewed = renew(licence(cls("B2", D(2027, 1, 1))), ISSUED, "vn-2025", {"B2": "C1"})
    assert [(c.code, c.valid_until) for c in renewed] == [("C1", D(2036, 12, 1))]


@pytest.mark.parametrize(
    ("sex", "dob", "expected"),
    [
        pytest.param(None, None, D(2049, 5, 17), id="R-VALID-holder-male-60th"),
        pytest.param(
            "female", D(1980, 6, 15), D(2035, 6, 15), id="R-VALID-override-female-55th"
        ),
    ],
)
def test_vn_2017_B1_uses_holder_or_given_details(sex, dob, expected):
    lic = licence(cls("B1", D(2020, 1, 1)))
    renewed = renew(lic, D(2024, 6, 1), "vn-2017", sex=sex, date_of_birth=dob)
    assert renewed[0].valid_until == expected


def test_vn_2025_licence_renews_class_for_class_keeping_restrictions_R_CONV():
    lic = licence(
        cls("A", restrictions=("MC_LT_175CC",)),
        cls("B", D(2035, 1, 1), restrictions=("AUTOMATIC_ONLY",)),
        regime="vn-2025",
    )
    renewed = renew(lic, ISSUED, "vn-2025")
    assert [(c.code, c.valid_until, c.restrictions) for c in renewed] == [
        ("A", None, ("MC_LT_175CC",)),
        ("B", D(2036, 12, 1), ("AUTOMATIC_ONLY",)),
    ]


def test_A4_cannot_be_renewed_under_vn_2025_R_CONV_4():
    with pytest.raises(ValueError, match="A4"):
        renew(licence(cls("A4", D(2030, 1, 1)), cls("B2")), ISSUED, "vn-2025")


issue_dates = st.dates(min_value=D(2000, 1, 1), max_value=D(2060, 12, 31))
births = st.dates(min_value=D(1920, 1, 1), max_value=D(1990, 12, 31))
sexes = st.sampled_from(["male", "female"])


@given(
    st.lists(
        st.sampled_from([c for c in OLD_CLASS_ORDER if c != "A4"]),
        min_size=1,
        unique=True,
    ),
    st.sampled_from(["vn-2017", "vn-2025"]),
    issue_dates,
    births,
    sexes,
    st.booleans(),
)
def test_renewed_old_class_never_expires_before_its_issue_date_R_VALID(
    codes, target, issued, dob, sex, ask_c1
):
    lic = licence(*(cls(c) for c in codes), holder=person(sex=sex, date_of_birth=dob))
    requested = {"B1": "C1", "B2": "C1"} if ask_c1 else None
    for c in renew(lic, issued, target, requested):
        assert c.valid_until is None or c.valid_until >= issued


@given(
    st.lists(st.sampled_from(NEW_CLASS_ORDER), min_size=1, unique=True),
    issue_dates,
)
def test_renewed_new_class_never_expires_before_its_issue_date_R_VALID(codes, issued):
    lic = licence(*(cls(c) for c in codes), regime="vn-2025")
    for c in renew(lic, issued, "vn-2025"):
        assert c.valid_until is None or c.valid_until >= issued
