"""One application the whole way, with the relay and every worker as real processes, real Redis, a
real database, and a local HTTP server standing in for the portal."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from licence_service.app import create_app
from licence_service.bootstrap import build_services
from licence_service.domain.regime import LOCAL_TZ
from licence_service.store import models
from tests.conftest import TOKEN_SECRET, make_settings
from tests.support.data import application_body, seed_an
from tests.support.portal_sync import entries
from tests.support.processes import WorkerProcesses
from tests.support.servers import PortalStandIn, wait_for

PORTAL_TOKEN = "portal-sync-token"
PORTAL_SECRET = "portal-sync-secret"


@pytest.fixture
def e2e(tmp_path: Path, any_database_url: str, redis_url: str, broker_env: dict[str, str],
        portal_stand_in: PortalStandIn) -> Iterator[dict[str, Any]]:
    # broker_env (tests/e2e/conftest.py): the bundled Redis, and RabbitMQ when the CI provides one.
    env = {"DATABASE_URL": any_database_url, **broker_env, "VAR_DIR": str(tmp_path / "var"),
           "TOKEN_SECRET": TOKEN_SECRET, "PORTAL_SYNC_URL": portal_stand_in.url,
           "PORTAL_SYNC_TOKEN": PORTAL_TOKEN, "PORTAL_SYNC_SECRET": PORTAL_SECRET, "RELAY_POLL_SECONDS": "0.05"}
    settings = make_settings(tmp_path, any_database_url, redis_url)
    services = build_services(settings)
    seed_an(services.uow())
    workers = WorkerProcesses(env, tmp_path / "logs").start()
    app = create_app(services=services)
    try:
        yield {"client": app.test_client(), "services": services, "workers": workers, "portal": portal_stand_in}
    finally:
        workers.stop()
        services.engine.dispose()


def status_of(client: Any, headers: dict[str, str], url: str) -> dict[str, Any]:
    return client.get(url, headers=headers).get_json()


def test_application_travels_from_submission_to_issued_with_every_portal_sync_in_order(e2e, portal_headers):
    client, services, portal = e2e["client"], e2e["services"], e2e["portal"]
    created = client.post("/api/v1/applications", json=application_body(), headers=portal_headers)
    assert created.status_code == 202, created.get_data(as_text=True)
    url = created.get_json()["links"]["self"]

    try:
        doc = wait_for(lambda: (d := status_of(client, portal_headers, url))["status"] != "received" and d,
                       timeout=60, message="the checks and fee stages")
        doc = wait_for(lambda: (d := status_of(client, portal_headers, url))["status"] == "awaiting_payment" and d,
                       timeout=60, message="awaiting_payment")
        assert doc["fee"] == {"amount": 135000, "currency": "VND", "paid": False}
        paid = client.post(f"{url}/payments", headers=portal_headers, json={
            "transaction_id": "PAYGOV-E2E-1", "amount": 135000, "currency": "VND",
            "paid_at": "2026-11-27T10:30:00+07:00"})
        assert paid.status_code == 202
        doc = wait_for(lambda: (d := status_of(client, portal_headers, url))["status"] == "issued" and d,
                       timeout=60, message="issued")
        calls = wait_for(lambda: len(c := portal.snapshot()) >= 5 and c, timeout=60,
                         message="five DongBoHoSoMC calls")
        wait_for(lambda: status_of(client, portal_headers, url)["portal_sync"]["acknowledged_portal_status"] == 9,
                 timeout=30, message="the portal's acknowledgement of status 9")
    except AssertionError:
        print(e2e["workers"].logs())
        raise

    # The history shows every step, oldest first.
    assert [(h["status"], h["portal_status"]) for h in doc["history"]] == [
        ("received", 1), ("accepted", 2), ("awaiting_payment", 6), ("processing", 4),
        ("processing", 4), ("issued", 9)]
    assert doc["appointment_date"] is not None

    # The register holds the renewed licence: B2 converted to B (R-CONV-6) under vn-2025, valid
    # 10 years from the new issue date (R-VALID), on a new card; the old card is replaced.
    today = dt.datetime.now(LOCAL_TZ).date()
    with services.session_factory() as s:
        licence = s.get(models.Licence, "010123456789")
        assert licence.regime == "vn-2025" and licence.issued_on == today
        assert [(c.code, c.valid_until) for c in licence.classes] == [("B", today.replace(year=today.year + 10))]
        rows = s.scalars(select(models.Card).where(models.Card.licence_number == "010123456789"))
        cards = {c.serial: c for c in rows}
        assert cards["AN0000000001"].status == "replaced"
        new = [c for c in cards.values() if c.application_id == doc["id"]]
        assert len(new) == 1 and new[0].status == "valid"
    assert doc["licence"]["card_serial"] == new[0].serial
    assert doc["licence"]["classes"][0]["code"] == "B"

    # DongBoHoSoMC: one call per portal status, in order, signed, the first not an update.
    bodies = [c.json for c in calls]
    assert entries(calls) == [("G01.99-20261127-0000123", s) for s in ("1", "2", "6", "4", "9")]
    assert [b["isUpdating"] for b in bodies] == ["False", "True", "True", "True", "True"]
    first = bodies[0]["data"][0]  # one application: one entry per call (checked just above)
    assert first["MaHoSo"] == "G01.99-20261127-0000123"
    assert first["NgayTiepNhan"] == "20261127091500"
    assert first["ChuHoSo"] == "NGUYỄN VĂN AN"
    assert bodies[2]["data"][0]["DanhSachLePhi"] == [{"TenPhiLePhi": "Lệ phí đổi GPLX", "Gia": "135000"}]
    for call in calls:
        assert call.headers["Authorization"] == f"Bearer {PORTAL_TOKEN}"
        expected = "sha256=" + hmac.new(PORTAL_SECRET.encode(), call.body, hashlib.sha256).hexdigest()
        assert call.headers["X-Signature"] == expected
