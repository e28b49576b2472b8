"""The REST API of PORTAL.md §1 through the Flask test client, on a real migrated database."""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import event, func, select

from licence_service.messaging.envelope import Event
from licence_service.services import stages
from licence_service.store import models
from tests.conftest import token_for
from tests.support.data import application_body, seed_an
from tests.support.statements import Statements
from workers.context import stage_context

URL = "/api/v1/applications"


def counts(services: Any) -> dict[str, int]:
    with services.session_factory() as s:
        return {t.__tablename__: s.scalar(select(func.count()).select_from(t))
                for t in (models.Application, models.ApplicationHistory, models.OutboxMessage, models.Payment)}


def submit(client: Any, headers: dict[str, str], body: Any = None) -> Any:
    return client.post(URL, json=application_body() if body is None else body, headers=headers)


def test_submit_stores_application_history_and_outbox_row_and_answers_202(client, services, portal_headers):
    response = submit(client, portal_headers)
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "received" and body["portal_status"] == 1
    assert response.headers["Location"] == f"{URL}/{body['id']}" == body["links"]["self"]
    assert counts(services) == {"applications": 1, "application_history": 1, "outbox": 2, "payments": 0}
    with services.session_factory() as s:
        keys = sorted(s.scalars(select(models.OutboxMessage.routing_key)))
    assert keys == ["application.received", "application.status_changed"]


def test_same_dossier_same_body_returns_200_and_the_same_application_without_new_rows(client, services,
                                                                                      portal_headers):
    first = submit(client, portal_headers).get_json()
    before = counts(services)
    again = submit(client, portal_headers)
    assert again.status_code == 200
    assert again.get_json()["id"] == first["id"]
    assert counts(services) == before


def test_same_dossier_different_body_is_409_problem_and_changes_nothing(client, services, portal_headers):
    submit(client, portal_headers)
    before = counts(services)
    response = submit(client, portal_headers, application_body(reason="damaged"))
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 409
    assert counts(services) == before


def test_citizen_id_contradicting_birth_date_is_422_under_its_field_path(client, services, portal_headers):
    body = application_body()
    body["applicant"]["date_of_birth"] = "1979-05-17"
    response = submit(client, portal_headers, body)
    assert response.status_code == 422
    problem = response.get_json()
    assert problem["type"] == "https://errors.licence-service.vn/validation"
    assert problem["errors"] == {"applicant": {"citizen_id": ["does not match date_of_birth"]}}
    assert counts(services)["applications"] == 0


def test_every_validation_problem_is_reported_at_once(client, services, portal_headers):
    body = application_body()
    body["applicant"]["sex"] = "other"
    body["licence"]["number"] = "12AB"
    body["delivery"] = {"method": "post"}
    body["photo"]["data"] = "not base64!"
    body["unexpected"] = 1
    response = submit(client, portal_headers, body)
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert errors["applicant"]["sex"] and errors["licence"]["number"] == ["must be 12 digits"]
    assert errors["delivery"]["address"] == ["required when method is post"]
    assert errors["photo"]["data"] == ["is not valid base64"]
    assert errors["unexpected"] == ["Unknown field."]
    assert counts(services)["applications"] == 0


def test_missing_required_fields_are_each_named(client, portal_headers):
    response = submit(client, portal_headers, {"procedure": "licence_renewal", "portal_dossier_id": "X-1"})
    errors = response.get_json()["errors"]
    assert response.status_code == 422
    assert {"applicant", "licence", "received_at", "photo", "reason"} <= set(errors)


def test_photo_whose_bytes_are_not_the_declared_type_is_422(client, portal_headers):
    body = application_body()
    body["photo"]["content_type"] = "image/png"
    response = submit(client, portal_headers, body)
    assert response.status_code == 422
    assert response.get_json()["errors"]["photo"]["data"] == ["is not a image/png image"]


@pytest.mark.parametrize("data, content_type, status", [
    ("{not json", "application/json", 400),
    ("[1, 2]", "application/json", 400),
    ("procedure=licence_renewal", "application/x-www-form-urlencoded", 415),
])
def test_body_that_is_not_a_json_object_is_a_problem(client, services, portal_headers, data, content_type, status):
    response = client.post(URL, data=data, content_type=content_type, headers=portal_headers)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == status
    assert counts(services)["applications"] == 0


def test_body_over_the_limit_is_413(client, services, portal_headers):
    response = client.post(URL, data="x" * (services.settings.max_body_bytes + 1),
                           content_type="application/json", headers=portal_headers)
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize("header", [None, "Bearer nonsense", "Basic dXNlcjpwYXNz",
                                    "Bearer " + token_for("applications:submit", secret="another-secret" * 3)])
def test_missing_or_invalid_token_is_401(client, services, header):
    headers = {"Authorization": header} if header else {}
    response = submit(client, headers)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert counts(services)["applications"] == 0


def test_token_without_the_scope_is_403(client, services):
    headers = {"Authorization": f"Bearer {token_for('applications:read')}"}
    response = submit(client, headers)
    assert response.status_code == 403
    assert counts(services)["applications"] == 0


def test_pact_token_is_refused_outside_the_contract_configuration(client):
    response = submit(client, {"Authorization": "Bearer portal-contract-token"})
    assert response.status_code == 401


def test_unknown_application_is_404_problem(client, portal_headers):
    response = client.get(f"{URL}/00000000-0000-4000-8000-000000000000", headers=portal_headers)
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_wrong_method_is_405_with_allow(client, portal_headers):
    response = client.delete(URL, headers=portal_headers)
    assert response.status_code == 405
    assert response.mimetype == "application/problem+json"
    assert "POST" in response.headers["Allow"]


def test_get_shows_state_history_and_lookup_by_dossier_finds_it(client, portal_headers):
    created = submit(client, portal_headers).get_json()
    detail = client.get(created["links"]["self"], headers=portal_headers)
    assert detail.status_code == 200
    assert detail.headers["Cache-Control"] == "no-store"
    doc = detail.get_json()
    assert doc["status"] == "received" and doc["regime"] == "vn-2025"
    assert doc["received_at"] == "2026-11-27T09:15:00+07:00"
    assert [h["portal_status"] for h in doc["history"]] == [1]
    found = client.get(URL, query_string={"portal_dossier_id": "G01.99-20261127-0000123"}, headers=portal_headers)
    assert found.get_json() == {"items": [{"id": created["id"], "portal_dossier_id": "G01.99-20261127-0000123",
                                           "status": "received", "portal_status": 1}]}
    none = client.get(URL, query_string={"portal_dossier_id": "nothing"}, headers=portal_headers)
    assert none.get_json() == {"items": []}


def test_lookup_without_dossier_id_is_422(client, portal_headers):
    response = client.get(URL, headers=portal_headers)
    assert response.status_code == 422
    assert "portal_dossier_id" in response.get_json()["errors"]


def run_stage(services: Any, stage: str, application_id: str) -> bool:
    ctx = stage_context(services)
    return getattr(stages, stage)(ctx, Event(type=stage, application_id=application_id))


@pytest.fixture
def awaiting_payment(client, services, portal_headers) -> str:
    seed_an(services.uow())
    application_id = submit(client, portal_headers).get_json()["id"]
    assert run_stage(services, "checks", application_id)
    assert run_stage(services, "fee", application_id)
    return application_id


def pay(client: Any, headers: dict[str, str], application_id: str, **overrides: Any) -> Any:
    body = {"transaction_id": "PAYGOV-1", "amount": 135000, "currency": "VND",
            "paid_at": "2026-11-27T10:30:00+07:00", **overrides}
    return client.post(f"{URL}/{application_id}/payments", json=body, headers=headers)


def test_payment_moves_to_processing_and_a_repeat_is_200_without_a_second_payment(
        client, services, portal_headers, awaiting_payment):
    first = pay(client, portal_headers, awaiting_payment)
    assert first.status_code == 202
    assert first.get_json() == {"id": awaiting_payment, "status": "processing", "portal_status": 4}
    again = pay(client, portal_headers, awaiting_payment)
    assert again.status_code == 200
    assert counts(services)["payments"] == 1


def test_a_payment_does_not_read_the_application_s_history_and_still_appends_to_it(
        client, services, portal_headers, awaiting_payment):
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(services.engine, "before_cursor_execute", seen)
    try:
        assert pay(client, portal_headers, awaiting_payment).status_code == 202
    finally:
        event.remove(services.engine, "before_cursor_execute", seen)
    assert not [s for s in statements if s.lstrip().upper().startswith("SELECT") and "application_history" in s]
    with services.uow() as uow:
        history = uow.session.scalars(select(models.ApplicationHistory.status).where(
            models.ApplicationHistory.application_id == awaiting_payment).order_by(models.ApplicationHistory.id)).all()
    assert history[-1] == "processing" and len(history) >= 2


def test_a_payment_reads_without_the_write_lock_and_holds_it_only_for_its_writes(
        client, services, portal_headers, awaiting_payment):
    # On SQLite the writer lock serialises every process's writes: the payment's reads (the
    # application, an earlier payment of the transaction) are done before it is taken, and the
    # application is moved on with one UPDATE conditional on it being unchanged since.
    with Statements(services.engine) as recorded:
        assert pay(client, portal_headers, awaiting_payment).status_code == 202
    statements = recorded.all
    reads = [held for text, held in statements if text.startswith("SELECT") and ("FROM applications" in text
                                                                                or "FROM payments" in text)]
    updates = [(text, held) for text, held in statements if text.startswith("UPDATE applications")]
    assert reads and not any(reads)
    # Nothing at all is read under the lock: the next DongBoHoSoMC item's seq is read before it too.
    assert not [text for text, held in statements if held and text.startswith("SELECT")]
    [(update, held)] = updates
    assert held and "WHERE applications.id = ? AND applications.status = ? AND applications.updated_at = ?" in update
    assert counts(services)["payments"] == 1
    # The application is read for its status and fee only: not its JSON columns (applicant, details).
    [read] = [text for text, _ in statements if text.startswith("SELECT") and "FROM applications" in text]
    assert "applications.status" in read and "applications.fee_amount" in read
    assert "applications.applicant" not in read and "applications.details" not in read


def test_a_payment_whose_application_changed_after_it_was_read_gets_the_answer_of_its_new_state(
        services, awaiting_payment):
    # Withdrawn between the payment's read and its write: the conditional UPDATE changes nothing,
    # and the locked path answers for the application as it now is (409), recording no payment.
    from licence_service.services import applications as service

    @contextlib.contextmanager
    def read_then_withdrawn() -> Any:
        with services.read_uow() as uow:
            yield uow
        service.withdraw(services.uow, awaiting_payment, "changed my mind", client_id="portal")

    data = {"transaction_id": "PAYGOV-9", "amount": 135000, "currency": "VND",
            "paid_at": dt.datetime(2026, 11, 27, 3, 30, tzinfo=dt.UTC)}
    with pytest.raises(service.InvalidTransition, match="withdrawn, not awaiting payment"):
        service.pay(services.uow, awaiting_payment, data, client_id="portal", read_uow_factory=read_then_withdrawn)
    assert counts(services)["payments"] == 0
    with services.uow() as uow:
        assert uow.applications.get(awaiting_payment).status == "withdrawn"


def test_status_changes_in_one_transaction_owe_portal_calls_numbered_in_order_without_a_flush_between(
        services, awaiting_payment):
    from licence_service.services.transitions import change_status

    with services.uow() as uow:
        stored = uow.session.scalar(select(func.max(models.PortalSyncItem.seq)).where(
            models.PortalSyncItem.application_id == awaiting_payment))
        application = uow.applications.get(awaiting_payment, for_update=True, with_history=False)
        change_status(uow, application, "processing", actor="test")
        change_status(uow, application, "issued", actor="test")
        change_status(uow, application, "delivered", actor="test")
        uow.commit()
    with services.uow() as uow:
        items = uow.session.execute(select(models.PortalSyncItem.seq, models.PortalSyncItem.portal_status).where(
            models.PortalSyncItem.application_id == awaiting_payment).order_by(models.PortalSyncItem.seq)).all()
    assert [tuple(i) for i in items][-3:] == [(stored + 1, 4), (stored + 2, 9), (stored + 3, 10)]


def test_payment_of_the_wrong_amount_is_422_and_records_nothing(client, services, portal_headers,
                                                                 awaiting_payment):
    response = pay(client, portal_headers, awaiting_payment, amount=100000)
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"amount": ["must equal the fee of 135000 VND"]}
    assert counts(services)["payments"] == 0
    doc = client.get(f"{URL}/{awaiting_payment}", headers=portal_headers).get_json()
    assert doc["status"] == "awaiting_payment" and doc["fee"] == {"amount": 135000, "currency": "VND",
                                                                  "paid": False}


def test_payment_when_not_awaiting_payment_is_409(client, portal_headers):
    application_id = submit(client, portal_headers).get_json()["id"]
    response = pay(client, portal_headers, application_id)
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"


def test_withdrawal_sets_portal_status_7(client, portal_headers, awaiting_payment):
    response = client.post(f"{URL}/{awaiting_payment}/withdrawal", json={"reason": "không còn nhu cầu"},
                           headers=portal_headers)
    assert response.status_code == 202
    assert response.get_json() == {"id": awaiting_payment, "status": "withdrawn", "portal_status": 7}


def test_openapi_document_is_generated_from_the_schemas(client):
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    request_schema = spec["paths"]["/api/v1/applications"]["post"]["requestBody"]["content"]["application/json"]
    assert request_schema["schema"]["$ref"].endswith("ApplicationRequest")
    assert "bearerAuth" in spec["components"]["securitySchemes"]


def test_healthz_answers_and_readyz_checks_database_and_redis(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"database": "ok", "broker": "ok"}
