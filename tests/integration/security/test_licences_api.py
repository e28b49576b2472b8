"""GET /api/v1/licences/{number}: the national record, whole, for registry readers only, never cached."""

from __future__ import annotations

import datetime as dt

import pytest

from licence_service.store import models
from tests.conftest import COLLECTION_TOKEN_TTL, token_for
from tests.integration.security.conftest import assert_problem, bearer
from tests.support.data import AN, seed_an

URL = "/api/v1/licences"
READER = bearer(token_for("registry:read", client="registry-reader", ttl_seconds=COLLECTION_TOKEN_TTL))


def test_record_is_returned_whole_with_its_holder_classes_cards_and_permits_and_never_cached(client, services):
    seed_an(services.uow())
    with services.session_factory() as s:
        s.add(models.InternationalPermit(number="VN010123456789", licence_number="010123456789", classes=["B2"],
                                         issued_on=dt.date(2026, 1, 5), valid_until=dt.date(2027, 1, 10),
                                         application_id="00000000-0000-4000-8000-0000000000aa"))
        s.commit()
    response = client.get(f"{URL}/010123456789", headers=READER)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    record = response.get_json()
    # Authorised readers see the holder unmasked: the register is what they are authorised for.
    assert record["holder"]["citizen_id"] == AN["citizen_id"]
    assert record["holder"]["full_name"] == AN["full_name"]
    assert record["holder"]["date_of_birth"] == AN["date_of_birth"]
    assert record["number"] == "010123456789" and record["regime"] == "vn-2017" and record["status"] == "valid"
    assert record["card_serial"] == "AN0000000001"
    assert [c["code"] for c in record["classes"]] == ["B2"]
    assert record["classes"][0]["valid_until"] == "2027-01-10"
    assert record["cards"] == [{"serial": "AN0000000001", "issued_on": "2017-01-10", "status": "valid"}]
    assert record["international_permits"] == [{"number": "VN010123456789", "classes": ["B2"],
                                                 "issued_on": "2026-01-05", "valid_until": "2027-01-10"}]


def test_unknown_licence_is_404_problem(client):
    problem = assert_problem(client.get(f"{URL}/019999999999", headers=READER), 404)
    assert problem["detail"] == "No licence has this number."


@pytest.mark.parametrize("number", ["12345", "01012345678X", "0101234567890", "０１０１２３４５６７８９",
                                    "010123456789%0A"])
def test_malformed_number_is_422_problem_naming_the_field(client, number):
    problem = assert_problem(client.get(f"{URL}/{number}", headers=READER), 422)
    assert problem["errors"] == {"number": ["must be 12 digits"]}


def test_the_portals_token_cannot_read_the_register(client, portal_headers):
    assert_problem(client.get(f"{URL}/010123456789", headers=portal_headers), 403)


def test_no_token_is_401(client):
    assert_problem(client.get(f"{URL}/010123456789"), 401)
