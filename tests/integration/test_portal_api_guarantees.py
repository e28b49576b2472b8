"""PORTAL.md §1 beyond what the pact pins: idempotence under concurrency (against the real app served
on 127.0.0.1, on SQLite and PostgreSQL), withdrawal after issuance, and errors that are always
problem documents — 500 without internals, 404/405 with `Allow`."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from licence_service.app import create_app
from licence_service.bootstrap import Services, build_services
from licence_service.messaging.envelope import Event
from licence_service.services import applications as service
from licence_service.services import stages
from licence_service.store import models
from tests.conftest import make_settings
from tests.support.data import application_body, application_for, citizen, seed_an, seed_citizen
from tests.support.wsgi import ServedApp
from workers.context import stage_context

URL = "/api/v1/applications"
RACERS = 4


@pytest.fixture
def served(tmp_path: Path, any_database_url: str, redis_url: str) -> Iterator[tuple[ServedApp, Services]]:
    services = build_services(make_settings(tmp_path, any_database_url, redis_url))
    seed_an(services.uow())
    served = ServedApp(create_app(services=services)).start()
    try:
        yield served, services
    finally:
        served.stop()
        services.engine.dispose()


def race(n: int, request: Callable[[], requests.Response]) -> list[requests.Response]:
    """Send `n` requests released at the same instant by a barrier, each on its own connection."""
    barrier = threading.Barrier(n)
    answers: list[Any] = [None] * n

    def one(i: int) -> None:
        barrier.wait(10)
        try:
            answers[i] = request()
        except Exception as exc:  # reported by the assertion below, not lost in the thread
            answers[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(isinstance(a, requests.Response) for a in answers), answers
    return answers


def count(services: Services, model: Any, *where: Any) -> int:
    with services.session_factory() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def run_stage(services: Services, stage: str, application_id: str) -> bool:
    return getattr(stages, stage)(stage_context(services), Event(type=stage, application_id=application_id))


def test_concurrent_identical_submissions_create_one_application(served, portal_headers):
    app, services = served
    for round_ in range(3):
        body = application_body(portal_dossier_id=f"G01.99-20261127-00009{round_:02d}")
        answers = race(RACERS, lambda b=body: requests.post(app.url + URL, json=b, headers=portal_headers,
                                                             timeout=60))
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200] * (RACERS - 1) + [202], [a.text for a in answers]
        assert len({a.json()["id"] for a in answers}) == 1
        dossier = models.Application.portal_dossier_id == body["portal_dossier_id"]
        assert count(services, models.Application, dossier) == 1
        application_id = answers[0].json()["id"]
        # One application: one history row, one portal sync owed, one event of each kind.
        assert count(services, models.ApplicationHistory,
                     models.ApplicationHistory.application_id == application_id) == 1
        assert count(services, models.PortalSyncItem, models.PortalSyncItem.application_id == application_id) == 1
    assert count(services, models.OutboxMessage) == 3 * 2


def test_concurrent_identical_payments_record_one_payment(served, portal_headers):
    app, services = served
    created = requests.post(app.url + URL, json=application_body(), headers=portal_headers, timeout=60).json()
    assert run_stage(services, "checks", created["id"]) and run_stage(services, "fee", created["id"])
    payment = {"transaction_id": "PAYGOV-RACE-1", "amount": 135000, "currency": "VND",
               "paid_at": "2026-11-27T10:30:00+07:00"}
    answers = race(RACERS, lambda: requests.post(f"{app.url}{URL}/{created['id']}/payments", json=payment,
                                                 headers=portal_headers, timeout=60))
    assert sorted(a.status_code for a in answers) == [200] * (RACERS - 1) + [202], [a.text for a in answers]
    assert all(a.json() == {"id": created["id"], "status": "processing", "portal_status": 4} for a in answers)
    assert count(services, models.Payment) == 1
    assert count(services, models.ApplicationHistory, models.ApplicationHistory.application_id == created["id"],
                 models.ApplicationHistory.status == "processing") == 1


@pytest.fixture
def issued(client, services, portal_headers) -> str:
    seed_an(services.uow())
    application_id = client.post(URL, json=application_body(), headers=portal_headers).get_json()["id"]
    assert run_stage(services, "checks", application_id) and run_stage(services, "fee", application_id)
    paid = client.post(f"{URL}/{application_id}/payments", headers=portal_headers, json={
        "transaction_id": "PAYGOV-ISSUED-1", "amount": 135000, "currency": "VND",
        "paid_at": "2026-11-27T10:30:00+07:00"})
    assert paid.status_code == 202
    assert run_stage(services, "conversion", application_id) and run_stage(services, "issuance", application_id)
    return application_id


def test_withdrawal_after_issuance_is_409_problem_and_changes_nothing(client, services, portal_headers, issued):
    before = client.get(f"{URL}/{issued}", headers=portal_headers).get_json()
    assert before["status"] == "issued" and before["portal_status"] == 9
    response = client.post(f"{URL}/{issued}/withdrawal", json={"reason": "đổi ý"}, headers=portal_headers)
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 409
    after = client.get(f"{URL}/{issued}", headers=portal_headers).get_json()
    assert (after["status"], after["portal_status"], after["history"]) == (
        "issued", 9, before["history"])
    assert count(services, models.PortalSyncItem, models.PortalSyncItem.portal_status == 7) == 0


SECRET = "psycopg: password=hunter2 at /srv/licence_service/store/repositories.py line 42"


@pytest.mark.parametrize("method, path, target, error", [
    ("get", f"{URL}/7d6b1c8e-3f4a-4b8e-9a51-2f0d3c4e5a61", "get", RuntimeError(SECRET)),
    ("post", URL, "submit", OperationalError("SELECT * FROM applications -- " + SECRET, {}, Exception(SECRET))),
])
def test_an_unexpected_fault_is_a_500_problem_without_internals(services, portal_headers, monkeypatch,
                                                                method, path, target, error):
    def fault(*args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(service, target, fault)
    app = create_app(services=services)  # not TESTING: as deployed
    response = getattr(app.test_client(), method)(path, json=application_body(), headers=portal_headers)
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert set(body) <= {"type", "title", "status", "detail"}
    assert body["status"] == 500 and body["title"] == "Internal Server Error"
    text = response.get_data(as_text=True)
    for leak in ("hunter2", "Traceback", "repositories.py", "SELECT", "psycopg", type(error).__name__):
        assert leak not in text


@pytest.mark.parametrize("method, path, allowed", [
    ("delete", URL, {"GET", "POST"}),
    ("post", f"{URL}/7d6b1c8e-3f4a-4b8e-9a51-2f0d3c4e5a61", {"GET"}),
    ("get", f"{URL}/7d6b1c8e-3f4a-4b8e-9a51-2f0d3c4e5a61/payments", {"POST"}),
    ("put", f"{URL}/7d6b1c8e-3f4a-4b8e-9a51-2f0d3c4e5a61/withdrawal", {"POST"}),
])
def test_wrong_method_is_405_problem_with_allow(client, portal_headers, method, path, allowed):
    response = getattr(client, method)(path, headers=portal_headers)
    assert response.status_code == 405
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 405
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}


@pytest.mark.parametrize("path", ["/api/v1/nothing", f"{URL}/not-a-uuid", "/"])
def test_unknown_path_is_404_problem(client, portal_headers, path):
    response = client.get(path, headers=portal_headers)
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert (body["type"], body["title"], body["status"]) == ("about:blank", "Not Found", 404)
    assert set(body) <= {"type", "title", "status", "detail"}


def test_one_transaction_id_raced_onto_two_applications_pays_only_one(served, portal_headers):
    """A payment gateway mix-up: the same transaction id for two applications at the same instant.
    The unique index keeps one payment; the other application answers 409, not 500."""
    app, services = served
    binh = citizen("079195001234", "TRẦN THỊ BÌNH", "1995-08-20", "female")
    seed_citizen(services.uow(), binh, licence_number="790987654321",
                 classes=[{"code": "A1", "passed_on": "2014-09-01", "valid_until": None}])
    ids = []
    for body in (application_body(),
                 application_for(binh, "790987654321", "G79.99-20261127-0000778", reason="card_conversion")):
        created = requests.post(app.url + URL, json=body, headers=portal_headers, timeout=60).json()
        assert run_stage(services, "checks", created["id"]) and run_stage(services, "fee", created["id"])
        ids.append(created["id"])
    payment = {"transaction_id": "PAYGOV-MIXUP-1", "amount": 135000, "currency": "VND",
               "paid_at": "2026-11-27T10:30:00+07:00"}
    targets = iter(ids)
    lock = threading.Lock()

    def pay_next() -> requests.Response:
        with lock:
            application_id = next(targets)
        return requests.post(f"{app.url}{URL}/{application_id}/payments", json=payment, headers=portal_headers,
                             timeout=60)

    answers = race(2, pay_next)
    assert sorted(a.status_code for a in answers) == [202, 409], [a.text for a in answers]
    assert count(services, models.Payment) == 1
