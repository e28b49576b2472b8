"""R-TIME: working days and the appointment date (NgayHenTra)."""

import datetime as dt

import holidays
import pytest
from hypothesis import given
from hypothesis import strategies as st

from licence_service.domain.calendar import (
    TimeLimits,
    add_working_days,
    appointment_date,
    is_working_day,
    unpaid_stop_date,
)

D = dt.date
VN = holidays.country_holidays("VN", years=range(2020, 2041))


@pytest.mark.parametrize(
    ("accepted", "expected"),
    [
        pytest.param(
            D(2026, 10, 5), D(2026, 10, 12), id="R-TIME-monday-to-next-monday"
        ),
        pytest.param(
            D(2026, 10, 9), D(2026, 10, 16), id="R-TIME-friday-to-next-friday"
        ),
        pytest.param(
            D(2026, 10, 10), D(2026, 10, 16), id="R-TIME-saturday-counts-from-monday"
        ),
        pytest.param(
            D(2026, 10, 11), D(2026, 10, 16), id="R-TIME-sunday-counts-from-monday"
        ),
        # Tết 2027: 4-10 Feb are holidays (Thu-Wed).
        pytest.param(D(2027, 2, 3), D(2027, 2, 17), id="R-TIME-tet-2027-week-skipped"),
        pytest.param(
            D(2027, 2, 8), D(2027, 2, 17), id="R-TIME-accepted-during-tet-2027"
        ),
        # Tết 2026: 16-20 Feb are holidays (Mon-Fri).
        pytest.param(D(2026, 2, 13), D(2026, 2, 27), id="R-TIME-tet-2026-week-skipped"),
        # 30 April and 1 May 2026 are Thursday and Friday.
        pytest.param(
            D(2026, 4, 29), D(2026, 5, 8), id="R-TIME-reunification-and-labour-day"
        ),
    ],
)
def test_appointment_date_is_five_working_days_after_acceptance(accepted, expected):
    assert appointment_date(accepted) == expected


def test_working_days_are_configurable_R_TIME():
    assert appointment_date(D(2026, 10, 5), working_days=2) == D(2026, 10, 7)


def test_holiday_calendar_can_be_injected_R_TIME():
    assert appointment_date(D(2027, 2, 3), is_holiday=lambda _d: False) == D(
        2027, 2, 10
    )


@pytest.mark.parametrize(
    ("day", "working"),
    [
        pytest.param(D(2026, 10, 6), True, id="R-TIME-tuesday"),
        pytest.param(D(2026, 10, 10), False, id="R-TIME-saturday"),
        pytest.param(D(2026, 10, 11), False, id="R-TIME-sunday"),
        pytest.param(D(2027, 2, 8), False, id="R-TIME-tet-monday"),
        pytest.param(D(2026, 9, 2), False, id="R-TIME-national-day"),
        pytest.param(D(2026, 1, 1), False, id="R-TIME-new-year"),
    ],
)
def test_is_working_day(day, working):
    assert is_working_day(day) is working


def test_add_zero_working_days_is_the_same_day_and_negative_is_rejected():
    assert add_working_days(D(2026, 10, 10), 0) == D(2026, 10, 10)
    with pytest.raises(ValueError):
        add_working_days(D(2026, 10, 10), -1)
    with pytest.raises(ValueError):
        appointment_date(D(2026, 10, 10), working_days=0)


@pytest.mark.parametrize(
    ("since", "days", "expected"),
    [
        pytest.param(
            D(2026, 11, 27), 30, D(2026, 12, 27), id="R-TIME-unpaid-default-30-days"
        ),
        pytest.param(
            D(2027, 1, 20),
            30,
            D(2027, 2, 19),
            id="R-TIME-unpaid-calendar-days-over-tet",
        ),
        pytest.param(D(2026, 11, 27), 7, D(2026, 12, 4), id="R-TIME-unpaid-configured"),
    ],
)
def test_unpaid_stop_date(since, days, expected):
    assert unpaid_stop_date(since, days) == expected


def test_time_limit_defaults_are_the_rule_book_values_R_TIME():
    assert TimeLimits() == TimeLimits(5, 2, 30)
    assert unpaid_stop_date(D(2026, 1, 1)) == D(2026, 1, 31)
    with pytest.raises(ValueError):
        unpaid_stop_date(D(2026, 1, 1), 0)


@given(st.dates(min_value=D(2020, 1, 1), max_value=D(2039, 12, 1)), st.integers(1, 15))
def test_appointment_never_falls_on_a_weekend_or_holiday_R_TIME(accepted, days):
    result = appointment_date(accepted, working_days=days)
    assert result.weekday() < 5
    assert result not in VN
    between = [
        accepted + dt.timedelta(days=i) for i in range(1, (result - accepted).days + 1)
    ]
    assert sum(d.weekday() < 5 and d not in VN for d in between) == days
