"""Who did what, who may look, and what may be kept: the client id of every state-changing request in
the application's history; no enumeration of applications; personal data never cached."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from licence_service.messaging.envelope import Event
from licence_service.services import stages
from licence_service.store import models
from tests.conftest import token_for
from tests.integration.security.conftest import assert_problem, bearer
from tests.support.data import application_body, seed_an
from workers.context import stage_context

URL = "/api/v1/applications"


def history(services: Any, application_id: str) -> list[tuple[str, str]]:
    with services.session_factory() as s:
        rows = s.scalars(select(models.ApplicationHistory).where(
            models.ApplicationHistory.application_id == application_id).order_by(models.ApplicationHistory.id))
        return [(h.status, h.actor) for h in rows]


def test_every_state_changing_request_records_its_client_id_in_the_history(client, services):
    seed_an(services.uow())
    submitter = bearer(token_for("applications:submit", "applications:read", client="portal-dvcqg"))
    payer = bearer(token_for("applications:submit", client="paygov-gateway"))
    withdrawer = bearer(token_for("applications:submit", client="portal-counter-03"))
    created = client.post(URL, json=application_body(), headers=submitter).get_json()
    ctx = stage_context(services)
    for stage in ("checks", "fee"):
        assert getattr(stages, stage)(ctx, Event(type=stage, application_id=created["id"]))
    paid = client.post(f"{URL}/{created['id']}/payments", headers=payer, json={
        "transaction_id": "PAYGOV-ACTOR-1", "amount": 135000, "currency": "VND",
        "paid_at": "2026-11-27T10:30:00+07:00"})
    assert paid.status_code == 202
    withdrawn = client.post(f"{URL}/{created['id']}/withdrawal", headers=withdrawer, json={"reason": "moved abroad"})
    assert withdrawn.status_code == 202
    rows = history(services, created["id"])
    assert rows[0] == ("received", "portal-dvcqg")
    assert ("processing", "paygov-gateway") in rows
    assert rows[-1] == ("withdrawn", "portal-counter-03")


def test_application_ids_are_random_and_unguessable(client, portal_headers):
    ids = [client.post(URL, json=application_body(portal_dossier_id=f"G01.99-ENUM-{i}"),
                       headers=portal_headers).get_json()["id"] for i in range(3)]
    parsed = [uuid.UUID(i) for i in ids]
    assert all(u.version == 4 for u in parsed)  # 122 random bits each, not a sequence
    assert len({u.int >> 64 for u in parsed}) == 3


def test_without_a_token_an_existing_application_and_a_missing_one_look_the_same(client, portal_headers):
    existing = client.post(URL, json=application_body(), headers=portal_headers).get_json()["id"]
    missing = "00000000-0000-4000-8000-000000000000"
    answers = [client.get(f"{URL}/{i}") for i in (existing, missing)]
    assert [a.status_code for a in answers] == [401, 401]
    assert answers[0].get_json() == answers[1].get_json()
    # With a token the lookup still needs the read scope: a submit-only client cannot list.
    submit_only = bearer(token_for("applications:submit"))
    assert_problem(client.get(f"{URL}/{existing}", headers=submit_only), 403)
    assert_problem(client.get(URL, query_string={"portal_dossier_id": "G01.99-20261127-0000123"},
                              headers=submit_only), 403)


def test_personal_data_responses_and_their_errors_are_never_cached(client, portal_headers):
    created = client.post(URL, json=application_body(), headers=portal_headers)
    detail = client.get(created.get_json()["links"]["self"], headers=portal_headers)
    found = client.get(URL, query_string={"portal_dossier_id": "G01.99-20261127-0000123"}, headers=portal_headers)
    missing = client.get(f"{URL}/00000000-0000-4000-8000-000000000000", headers=portal_headers)
    for response in (created, detail, found, missing):
        assert response.headers["Cache-Control"] == "no-store"


def test_a_clients_correlation_id_is_echoed_only_when_it_looks_like_an_id(client, portal_headers):
    fine = client.get("/healthz", headers={"X-Correlation-ID": "req-2026.11.27:0001"})
    assert fine.headers["X-Correlation-ID"] == "req-2026.11.27:0001"
    hostile = client.get("/healthz", headers={"X-Correlation-ID": "x" * 500})
    assert uuid.UUID(hostile.headers["X-Correlation-ID"])  # replaced by a fresh id
