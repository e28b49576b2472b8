"""R-REGIME: regime chosen from received_at in Asia/Ho_Chi_Minh."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from licence_service.domain.regime import local_date, regime_for, regime_for_date

UTC = dt.UTC
HCM = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.mark.parametrize(
    ("received_at", "regime"),
    [
        pytest.param(
            dt.datetime(2024, 12, 31, 16, 59, 59, tzinfo=UTC),
            "vn-2017",
            id="utc-last-second-2024-local",
        ),
        pytest.param(
            dt.datetime(2024, 12, 31, 17, 0, 0, tzinfo=UTC),
            "vn-2025",
            id="utc-first-second-2025-local",
        ),
        pytest.param(
            dt.datetime(2024, 12, 31, 23, 59, tzinfo=HCM),
            "vn-2017",
            id="local-2024-12-31",
        ),
        pytest.param(
            dt.datetime(2025, 1, 1, 0, 0, tzinfo=HCM), "vn-2025", id="local-2025-01-01"
        ),
        pytest.param(
            dt.datetime(
                2024, 12, 31, 20, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))
            ),
            "vn-2025",
            id="new-york-evening-is-next-day-in-hanoi",
        ),
        pytest.param(
            dt.datetime(2017, 6, 1, 9, 0, tzinfo=HCM),
            "vn-2017",
            id="old-application-replayed",
        ),
        pytest.param(
            dt.datetime(2026, 11, 27, 9, 0, tzinfo=HCM), "vn-2025", id="current"
        ),
    ],
)
def test_regime_for_uses_local_date_R_REGIME(received_at, regime):
    assert regime_for(received_at) == regime


def test_local_date_converts_to_asia_ho_chi_minh_R_REGIME():
    assert local_date(dt.datetime(2026, 3, 1, 18, 30, tzinfo=UTC)) == dt.date(
        2026, 3, 2
    )


def test_naive_datetime_is_rejected_R_REGIME():
    with pytest.raises(ValueError, match="naive"):
        regime_for(dt.datetime(2025, 1, 1, 12, 0))


def test_plain_date_is_rejected_by_regime_for_R_REGIME():
    with pytest.raises(TypeError):
        regime_for(dt.date(2025, 1, 1))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("day", "regime"),
    [(dt.date(2024, 12, 31), "vn-2017"), (dt.date(2025, 1, 1), "vn-2025")],
    ids=["R-REGIME-day-before-cutover", "R-REGIME-cutover-day"],
)
def test_regime_for_date(day, regime):
    assert regime_for_date(day) == regime
