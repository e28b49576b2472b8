"""R-ELIG: every renewal reason the API accepts (PORTAL.md) is one the intake decision understands,
so no submission that passed validation can make the checks stage fail."""

from __future__ import annotations

import datetime as dt

import pytest

from licence_service.domain import eligibility
from schemas.applications import REASONS
from tests.unit.domain.builders import person


@pytest.mark.parametrize("reason", REASONS)
def test_every_reason_the_api_accepts_is_a_renewal_reason(reason):
    facts = eligibility.ApplicationFacts(procedure="licence_renewal", reason=reason,
                                         received_on=dt.date(2026, 11, 27), regime="vn-2025",
                                         licence_number="010123456789", applicant=person())
    assert facts.reason == reason
    assert reason in eligibility.RENEWAL_REASONS
