"""Calendar-year and calendar-month arithmetic (R-REGIME "years are calendar years", R-VALID)."""

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from licence_service.domain.dates import add_months, add_years

D = dt.date


@pytest.mark.parametrize(
    ("start", "years", "expected"),
    [
        pytest.param(D(2026, 2, 28), 10, D(2036, 2, 28), id="R-REGIME-example-28-feb"),
        pytest.param(
            D(2024, 2, 29), 5, D(2029, 2, 28), id="R-REGIME-29-feb-to-common-year"
        ),
        pytest.param(D(2024, 2, 29), 4, D(2028, 2, 29), id="29-feb-to-leap-year"),
        pytest.param(D(2023, 3, 1), 1, D(2024, 3, 1), id="plain"),
        pytest.param(D(2024, 2, 29), -1, D(2023, 2, 28), id="backwards-29-feb"),
    ],
)
def test_add_years(start, years, expected):
    assert add_years(start, years) == expected


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        pytest.param(D(2025, 1, 31), 1, D(2025, 2, 28), id="clamp-common-feb"),
        pytest.param(D(2024, 1, 31), 1, D(2024, 2, 29), id="clamp-leap-feb"),
        pytest.param(D(2025, 3, 31), -1, D(2025, 2, 28), id="backwards-clamp"),
        pytest.param(D(2025, 12, 15), 1, D(2026, 1, 15), id="year-rollover"),
        pytest.param(D(2026, 1, 15), -13, D(2024, 12, 15), id="backwards-over-a-year"),
        pytest.param(
            D(2024, 2, 29), 12, D(2025, 2, 28), id="twelve-months-from-29-feb"
        ),
    ],
)
def test_add_months(start, months, expected):
    assert add_months(start, months) == expected


@given(
    st.dates(min_value=D(1900, 1, 1), max_value=D(2200, 12, 31)), st.integers(0, 100)
)
def test_add_years_keeps_month_and_day_except_29_february(start, years):
    result = add_years(start, years)
    assert result.year == start.year + years
    assert result.month == start.month
    if (start.month, start.day) == (2, 29):
        assert result.day in (28, 29)
    else:
        assert result.day == start.day
