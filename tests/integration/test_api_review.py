"""Settling an application held in needs_supplement (portal 5): the officer's decision and the
citizen's supplements, through the Flask test client on a real migrated database, with the stages run
in-process."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from typing import Any

import pytest
from sqlalchemy import func, select

from licence_service.domain import calendar
from licence_service.messaging.envelope import Event
from licence_service.messaging.names import RoutingKeys
from licence_service.services import stages
from licence_service.store import models
from tests.conftest import token_for
from tests.support.data import PHOTO, application_for, citizen, png_bytes, seed_citizen, today_local
from workers.context import stage_context

URL = "/api/v1/applications"
OFFICER = "officer-hanoi-07"
BINH = citizen("001190000201", "TRẦN THỊ BÌNH", "1990-03-04", "female")
LICENCE = "010200000201"
UNKNOWN = "00000000-0000-4000-8000-000000000000"
PNG = base64.b64encode(png_bytes()).decode()  # well formed: the photo check reads its structure


@pytest.fixture
def officer_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for('applications:review', client=OFFICER)}"}


def run_checks(services: Any, application_id: str, event_type: str = RoutingKeys.RECEIVED) -> bool:
    return stages.checks(stage_context(services), Event(type=event_type, application_id=application_id))


def submit_for_review(client: Any, services: Any, headers: dict[str, str], dossier: str = "G01.99-REVIEW-1") -> str:
    """R-ELIG-6: vn-2025, the B2 class expired 10 days before receipt, force majeure declared: the
    checks hold it for an officer (needs_supplement)."""
    today = today_local()
    certificate = {"number": "KSK-BINH-1", "issued_on": today - dt.timedelta(days=30), "fit_for": ["B"]}
    seed_citizen(services.uow(), BINH, licence_number=LICENCE, certificate=certificate, classes=[
        {"code": "B2", "passed_on": "2016-11-01", "valid_until": (today - dt.timedelta(days=10)).isoformat()}])
    body = application_for(BINH, LICENCE, dossier, reason="expired", force_majeure=True, certificate=certificate)
    created = client.post(URL, json=body, headers=headers)
    assert created.status_code == 202, created.get_data(as_text=True)
    application_id = created.get_json()["id"]
    assert run_checks(services, application_id)
    return application_id


@pytest.fixture
def held(client, services, portal_headers) -> str:
    application_id = submit_for_review(client, services, portal_headers)
    doc = client.get(f"{URL}/{application_id}", headers=portal_headers).get_json()
    assert (doc["status"], doc["portal_status"]) == ("needs_supplement", 5)
    return application_id


def stored(services: Any, application_id: str) -> dict[str, Any]:
    """Everything a request could change: the application row and the rows written beside it."""
    with services.session_factory() as s:
        a = s.get(models.Application, application_id)
        row = {k: getattr(a, k) for k in ("status", "portal_status", "refusal_reasons", "accepted_at",
                                          "appointment_date", "details", "photo_sha256", "updated_at")}
        for table in (models.ApplicationHistory, models.OutboxMessage, models.PortalSyncItem, models.Photo):
            row[table.__tablename__] = s.scalar(select(func.count()).select_from(table))
        return row


def last_history(services: Any, application_id: str) -> models.ApplicationHistory:
    with services.session_factory() as s:
        return s.scalars(select(models.ApplicationHistory).where(
            models.ApplicationHistory.application_id == application_id)
            .order_by(models.ApplicationHistory.id.desc())).first()


def outbox_keys(services: Any) -> list[str]:
    with services.session_factory() as s:
        return list(s.scalars(select(models.OutboxMessage.routing_key).order_by(models.OutboxMessage.id)))


def decide(client: Any, headers: dict[str, str], application_id: str, body: Any) -> Any:
    return client.post(f"{URL}/{application_id}/decision", json=body, headers=headers)


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["status"] == status
    return problem


# ------------------------------------------------------------------------------------------------
# decision


def test_officer_accept_fixes_acceptance_and_appointment_then_the_fee_stage_asks_for_payment(
        client, services, portal_headers, officer_headers, held):
    response = decide(client, officer_headers, held, {"decision": "accept", "note": "hospital record seen"})
    assert response.status_code == 202
    assert response.get_json() == {"id": held, "status": "accepted", "portal_status": 2}

    doc = client.get(f"{URL}/{held}", headers=portal_headers).get_json()
    assert doc["accepted_at"] is not None
    # R-TIME: the officer's acceptance date + 5 working days.
    assert doc["appointment_date"] == calendar.appointment_date(today_local(), 5).isoformat()
    assert doc["history"][-1]["note"] == "officer decision: accept — hospital record seen"
    entry = last_history(services, held)
    assert (entry.status, entry.actor) == ("accepted", OFFICER)
    # The same hand-over as a clean dossier: ACCEPTED for the fee stage, a portal sync for status 2.
    assert outbox_keys(services)[-2:] == [RoutingKeys.STATUS_CHANGED, RoutingKeys.ACCEPTED]

    assert stages.fee(stage_context(services), Event(type=RoutingKeys.ACCEPTED, application_id=held))
    doc = client.get(f"{URL}/{held}", headers=portal_headers).get_json()
    assert (doc["status"], doc["fee"]["amount"]) == ("awaiting_payment", 135000)


def test_officer_refusal_is_refused_with_the_reason_the_checks_held_it_for(
        client, services, portal_headers, officer_headers, held):
    response = decide(client, officer_headers, held, {"decision": "refuse", "note": "no evidence of illness"})
    assert response.status_code == 202
    assert response.get_json() == {"id": held, "status": "refused", "portal_status": 3}
    doc = client.get(f"{URL}/{held}", headers=portal_headers).get_json()
    assert doc["refusal_reasons"] == ["licence_expired"]
    assert doc["accepted_at"] is None and doc["appointment_date"] is None
    entry = last_history(services, held)
    assert (entry.status, entry.actor, entry.note) == ("refused", OFFICER,
                                                       "officer decision: refuse — no evidence of illness")
    assert RoutingKeys.ACCEPTED not in outbox_keys(services)


def test_decision_without_a_note_is_accepted(client, officer_headers, held):
    assert decide(client, officer_headers, held, {"decision": "accept"}).status_code == 202


@pytest.mark.parametrize("body, errors", [
    ({"note": "forgot the decision"}, {"decision": ["Missing data for required field."]}),
    ({"decision": "maybe"}, {"decision": ["Must be one of: accept, refuse."]}),
    ({"decision": "accept", "note": "", "extra": 1},
     {"note": ["Length must be between 1 and 1000."], "extra": ["Unknown field."]}),
])
def test_missing_or_invalid_decision_is_422_naming_each_problem_and_changes_nothing(
        client, services, officer_headers, held, body, errors):
    before = stored(services, held)
    problem = assert_problem(decide(client, officer_headers, held, body), 422)
    assert problem["errors"] == errors
    assert stored(services, held) == before


def test_decision_with_the_portals_token_is_403_and_changes_nothing(client, services, portal_headers, held):
    before = stored(services, held)
    assert_problem(decide(client, portal_headers, held, {"decision": "accept"}), 403)
    assert stored(services, held) == before


def test_decision_without_a_token_is_401(client, services, held):
    before = stored(services, held)
    assert_problem(decide(client, {}, held, {"decision": "accept"}), 401)
    assert stored(services, held) == before


def test_decision_on_an_unknown_application_is_404(client, services, officer_headers, held):
    before = stored(services, held)
    assert_problem(decide(client, officer_headers, UNKNOWN, {"decision": "accept"}), 404)
    assert stored(services, held) == before


def test_decision_on_an_application_not_held_is_409_and_changes_nothing(client, services, portal_headers,
                                                                        officer_headers, held):
    assert decide(client, officer_headers, held, {"decision": "refuse"}).status_code == 202
    before = stored(services, held)
    problem = assert_problem(decide(client, officer_headers, held, {"decision": "accept"}), 409)
    assert problem["detail"] == "application is refused, not needs_supplement"
    assert stored(services, held) == before


def test_decision_on_a_received_application_is_409(client, services, portal_headers, officer_headers):
    body = application_for(BINH, LICENCE, "G01.99-REVIEW-2")
    application_id = client.post(URL, json=body, headers=portal_headers).get_json()["id"]
    before = stored(services, application_id)
    assert_problem(decide(client, officer_headers, application_id, {"decision": "accept"}), 409)
    assert stored(services, application_id) == before


# ------------------------------------------------------------------------------------------------
# supplements


def supplement(client: Any, headers: dict[str, str], application_id: str, body: Any) -> Any:
    return client.post(f"{URL}/{application_id}/supplements", json=body, headers=headers)


NEW_CERTIFICATE = {"number": "KSK-BINH-2", "issued_on": (today_local() - dt.timedelta(days=7)).isoformat(),
                   "facility_code": "01-BVBM", "fit_for": ["B"]}


def test_supplement_stores_the_documents_and_sends_the_application_back_through_the_checks(
        client, services, portal_headers, held):
    before = stored(services, held)
    response = supplement(client, portal_headers, held,
                          {"health_certificate": NEW_CERTIFICATE, "photo": {"content_type": "image/png", "data": PNG}})
    assert response.status_code == 202
    assert response.get_json() == {"id": held, "status": "received", "portal_status": 1}

    after = stored(services, held)
    assert after["details"]["health_certificate"] == NEW_CERTIFICATE
    assert "review_reasons" not in after["details"]
    assert after["photo_sha256"] == hashlib.sha256(base64.b64decode(PNG)).hexdigest() != before["photo_sha256"]
    assert after["photos"] == before["photos"] + 1  # kept like a submitted photo, for the card
    entry = last_history(services, held)
    assert (entry.status, entry.actor, entry.note) == ("received", "portal",
                                                       "supplemented: health certificate KSK-BINH-2, photo")
    assert outbox_keys(services)[-1] == RoutingKeys.SUPPLEMENTED

    # The checks take the SUPPLEMENTED event like a new submission and ask the register about the
    # new certificate; the force majeure still needs an officer.
    with services.uow() as uow:
        uow.sandbox.merge(models.SandboxHealthCertificate(
            number="KSK-BINH-2", citizen_id=BINH["citizen_id"],
            issued_on=dt.date.fromisoformat(NEW_CERTIFICATE["issued_on"]), facility_code="01-BVBM", fit_for=["B"]))
        uow.commit()
    assert run_checks(services, held, RoutingKeys.SUPPLEMENTED)
    doc = client.get(f"{URL}/{held}", headers=portal_headers).get_json()
    assert [h["status"] for h in doc["history"]] == ["received", "needs_supplement", "received",
                                                     "needs_supplement"]


def test_supplemented_certificate_is_checked_against_the_register_not_trusted(client, services,
                                                                               portal_headers, held):
    assert supplement(client, portal_headers, held, {"health_certificate": NEW_CERTIFICATE}).status_code == 202
    assert run_checks(services, held, RoutingKeys.SUPPLEMENTED)
    doc = client.get(f"{URL}/{held}", headers=portal_headers).get_json()
    # R-ELIG-8: KSK-BINH-2 is not in the health-certificate register.
    assert (doc["status"], doc["refusal_reasons"]) == ("refused", ["health_certificate_invalid"])


def test_supplement_of_a_photo_alone_is_enough(client, portal_headers, held):
    response = supplement(client, portal_headers, held, {"photo": {"content_type": "image/jpeg", "data": PHOTO}})
    assert response.status_code == 202


def test_supplement_with_a_photo_that_is_not_its_declared_type_is_422_and_changes_nothing(
        client, services, portal_headers, held):
    before = stored(services, held)
    problem = assert_problem(supplement(client, portal_headers, held,
                                        {"photo": {"content_type": "image/png", "data": PHOTO}}), 422)
    assert problem["errors"] == {"photo": {"data": ["is not a image/png image"]}}
    assert stored(services, held) == before


def test_supplement_with_nothing_in_it_is_422_and_changes_nothing(client, services, portal_headers, held):
    before = stored(services, held)
    problem = assert_problem(supplement(client, portal_headers, held, {}), 422)
    assert problem["errors"] == {"_schema": ["a health_certificate or a photo is required"]}
    assert stored(services, held) == before


def test_supplement_with_an_invalid_certificate_reports_every_field(client, services, portal_headers, held):
    before = stored(services, held)
    problem = assert_problem(supplement(client, portal_headers, held,
                                        {"health_certificate": {"number": "", "issued_on": "yesterday"}}), 422)
    assert set(problem["errors"]["health_certificate"]) == {"number", "issued_on", "facility_code"}
    assert "_schema" not in problem["errors"]
    assert stored(services, held) == before


def test_supplement_with_a_review_only_token_is_403(client, services, officer_headers, held):
    before = stored(services, held)
    assert_problem(supplement(client, officer_headers, held, {"photo": {"content_type": "image/jpeg",
                                                                        "data": PHOTO}}), 403)
    assert stored(services, held) == before


def test_supplement_for_an_unknown_application_is_404(client, services, portal_headers, held):
    before = stored(services, held)
    assert_problem(supplement(client, portal_headers, UNKNOWN, {"photo": {"content_type": "image/jpeg",
                                                                          "data": PHOTO}}), 404)
    assert stored(services, held) == before


def test_supplement_when_no_documents_are_requested_is_409_and_changes_nothing(client, services,
                                                                               portal_headers, held):
    assert supplement(client, portal_headers, held, {"photo": {"content_type": "image/jpeg",
                                                               "data": PHOTO}}).status_code == 202
    before = stored(services, held)
    assert_problem(supplement(client, portal_headers, held, {"photo": {"content_type": "image/jpeg",
                                                                       "data": PHOTO}}), 409)
    assert stored(services, held) == before


def test_openapi_document_describes_decision_and_supplements(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    decision = paths["/api/v1/applications/{application_id}/decision"]["post"]
    assert decision["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("DecisionRequest")
    assert {"202", "404", "409", "422"} <= set(decision["responses"])
    assert decision["security"] == [{"bearerAuth": []}]
    supplements = paths["/api/v1/applications/{application_id}/supplements"]["post"]
    assert supplements["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "SupplementRequest")
    assert {"202", "404", "409", "422"} <= set(supplements["responses"])
