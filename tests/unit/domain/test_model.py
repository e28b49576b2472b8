"""R-PORTAL status codes and immutability of the national-model values."""

import dataclasses
import datetime as dt

import pytest

from licence_service.domain.model import (
    FINAL_STATUSES,
    OPEN_STATUSES,
    PORTAL_STATUS,
    HealthCertificate,
    LicenceClass,
)

from .builders import licence


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("received", 1),
        ("accepted", 2),
        ("refused", 3),
        ("processing", 4),
        ("needs_supplement", 5),
        ("awaiting_payment", 6),
        ("withdrawn", 7),
        ("stopped", 8),
        ("issued", 9),
        ("delivered", 10),
    ],
    ids=lambda v: f"R-PORTAL-{v}",
)
def test_portal_status_code(status, code):
    assert PORTAL_STATUS[status] == code


def test_portal_codes_are_one_to_ten_without_duplicates_R_PORTAL():
    assert sorted(PORTAL_STATUS.values()) == list(range(1, 11))


def test_final_and_open_statuses_partition_the_statuses_R_ELIG_5():
    assert FINAL_STATUSES | OPEN_STATUSES == set(PORTAL_STATUS)
    assert not FINAL_STATUSES & OPEN_STATUSES
    assert {
        "received",
        "accepted",
        "needs_supplement",
        "awaiting_payment",
    } <= OPEN_STATUSES


def test_portal_mapping_is_read_only():
    with pytest.raises(TypeError):
        PORTAL_STATUS["received"] = 99  # type: ignore[index]


def test_values_are_frozen_and_collections_become_immutable():
    lic = licence(classes=[LicenceClass("A1", None, None, ["X"])])
    assert isinstance(lic.classes, tuple)
    assert lic.classes[0].restrictions == ("X",)
    cert = HealthCertificate("K", "001089012345", dt.date(2026, 1, 1), "F", ["B"])
    assert cert.fit_for == frozenset({"B"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        lic.points = 0  # type: ignore[misc]
