"""No log of a whole workflow carries the applicant's personal data (decree 13/2023/NĐ-CP; SECURITY.md:
log leakage). One application travels from submission to issued and synced with the portal, the
relay and every worker running as real processes (their logs in files under tmp_path/logs), while the
API's own log — an access line per request, and the error lines of a rejected submission — is
captured by caplog; then a registry reader fetches the licence with its holder's data. Neither log
holds the citizen ID, the name, the phone number, the e-mail address, the address or the photo."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from licence_service.app import create_app
from licence_service.bootstrap import build_services
from tests.conftest import TOKEN_SECRET, make_settings, token_for
from tests.support.data import PHOTO, application_body, seed_an
from tests.support.processes import WorkerProcesses
from tests.support.servers import PortalStandIn, wait_for

BODY = application_body()
APPLICANT = BODY["applicant"]
PERSONAL = {
    "citizen ID": APPLICANT["citizen_id"],
    "name": APPLICANT["full_name"],
    "name, JSON-escaped": json.dumps(APPLICANT["full_name"])[1:-1],
    "phone": APPLICANT["phone"],
    "e-mail": APPLICANT["email"],
    "address": APPLICANT["residence"]["detail"],
    "photo": PHOTO[:48],
    "photo bytes": "\\xff\\xd8\\xff\\xe0",
}


def test_logs_of_a_whole_workflow_hold_no_personal_data(tmp_path: Path, database_url: str, redis_url: str,
                                                        portal_stand_in: PortalStandIn, portal_headers, caplog):
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "VAR_DIR": str(tmp_path / "var"),
           "TOKEN_SECRET": TOKEN_SECRET, "PORTAL_SYNC_URL": portal_stand_in.url,
           "PORTAL_SYNC_TOKEN": "portal-sync-token", "PORTAL_SYNC_SECRET": "portal-sync-secret",
           "RELAY_POLL_SECONDS": "0.05"}
    services = build_services(make_settings(tmp_path, database_url, redis_url))
    seed_an(services.uow())
    workers = WorkerProcesses(env, tmp_path / "logs").start()
    client = create_app(services=services).test_client()
    caplog.set_level(logging.INFO)

    def status(url: str) -> str:
        return client.get(url, headers=portal_headers).get_json()["status"]

    try:
        created = client.post("/api/v1/applications", json=BODY, headers=portal_headers)
        assert created.status_code == 202, created.get_data(as_text=True)
        url = created.get_json()["links"]["self"]
        wait_for(lambda: status(url) == "awaiting_payment", timeout=90, interval=0.2, message="awaiting_payment")
        paid = client.post(f"{url}/payments", headers=portal_headers, json={
            "transaction_id": "PAYGOV-PRIVACY-1", "amount": 135000, "currency": "VND",
            "paid_at": "2026-11-27T10:30:00+07:00"})
        assert paid.status_code == 202
        wait_for(lambda: status(url) == "issued", timeout=90, interval=0.2, message="issued")
        wait_for(lambda: len(portal_stand_in.snapshot()) >= 5, timeout=60, message="five DongBoHoSoMC calls")
        # The same citizen's second dossier, refused for a birth date that contradicts the ID.
        bad = application_body(portal_dossier_id="G01.99-PRIVACY-BAD")
        bad["applicant"]["date_of_birth"] = "1979-05-17"
        refused = client.post("/api/v1/applications", json=bad, headers=portal_headers)
        assert refused.status_code == 422
        # A registry reader fetches the licence: the holder's data is in the response, not the log.
        record = client.get("/api/v1/licences/010123456789",
                            headers={"Authorization": f"Bearer {token_for('registry:read', client='registry')}"})
        assert record.get_json()["holder"]["citizen_id"] == APPLICANT["citizen_id"]
    except AssertionError:
        print(workers.logs())
        raise
    finally:
        workers.stop()
        services.engine.dispose()

    worker_logs = {p.name: p.read_text(errors="replace") for p in sorted((tmp_path / "logs").glob("*.log"))}
    api_log = caplog.text
    # The captures are real: every process wrote, and the API logged each request.
    assert set(worker_logs) == {"relay.log", "checks.log", "fee.log", "conversion.log", "issuance.log",
                                "portal_sync.log"}
    assert all(text.strip() for text in worker_logs.values())
    assert "POST /api/v1/applications 202" in api_log and "POST /api/v1/applications 422" in api_log
    assert "GET /api/v1/licences/*********789 200" in api_log
    for name, text in {**worker_logs, "API (caplog)": api_log}.items():
        for what, value in PERSONAL.items():
            assert value not in text, f"the {what} is in the {name}"
    for refused_body in (refused.get_data(as_text=True),):
        for what in ("citizen ID", "name", "phone", "e-mail", "address", "photo"):
            assert PERSONAL[what] not in refused_body, f"the {what} is in the 422 body"
