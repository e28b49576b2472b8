"""The rule book end to end: applications submitted through the API reach `issued` as International
Driving Permits (R-IDP), `refused` with the right reasons (R-ELIG), and `needs_supplement` settled by
an officer's decision (R-ELIG-6 force majeure) — with the relay and every worker as real processes,
real Redis, a real database (SQLite and PostgreSQL) and a local HTTP stand-in for the portal.

One worker set serves the whole module per database: every test uses its own citizens, licences
and dossier ids, so the applications never meet.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from sqlalchemy import select

from licence_service.app import create_app
from licence_service.bootstrap import build_services
from licence_service.domain.dates import add_years
from licence_service.store import models
from licence_service.store.migrate import upgrade
from tests.conftest import NO_POSTGRES, POSTGRES_URL, TOKEN_SECRET, _postgres_schema_url, make_settings, token_for
from tests.support.data import application_for, citizen, seed_citizen, today_local
from tests.support.processes import WorkerProcesses
from tests.support.servers import PortalStandIn, RedisServer, wait_for

OFFICER = "officer-hanoi-07"
STAGE_TIMEOUT = 90  # two shared cores: generous, and only ever waited on by polling


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          redis_server: RedisServer) -> Iterator[dict[str, Any]]:
    """A database, the real worker processes on real Redis, the app and the portal stand-in."""
    tmp_path = tmp_path_factory.mktemp(f"rule-book-{request.param}")
    if request.param == "sqlite":
        urls: Iterator[str] = iter([f"sqlite:///{tmp_path / 'licence.db'}"])
    elif not POSTGRES_URL:
        pytest.skip(NO_POSTGRES)
    else:
        urls = _postgres_schema_url(POSTGRES_URL)
    redis.Redis.from_url(redis_server.url).flushall()  # no other test's messages in the queues
    portal = PortalStandIn().start()
    for database_url in urls:
        upgrade(database_url)
        env = {"DATABASE_URL": database_url, "REDIS_URL": redis_server.url, "VAR_DIR": str(tmp_path / "var"),
               "TOKEN_SECRET": TOKEN_SECRET, "PORTAL_SYNC_URL": portal.url, "PORTAL_SYNC_TOKEN": "portal-token",
               "PORTAL_SYNC_SECRET": "portal-secret", "RELAY_POLL_SECONDS": "0.05"}
        services = build_services(make_settings(tmp_path, database_url, redis_server.url))
        workers = WorkerProcesses(env, tmp_path / "logs").start()
        try:
            yield {"client": create_app(services=services).test_client(), "services": services,
                   "workers": workers, "portal": portal}
        finally:
            workers.stop()
            services.engine.dispose()
    portal.stop()


@pytest.fixture
def officer_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for('applications:review', client=OFFICER)}"}


class Applications:
    """Submitting and following applications through the API, printing the workers' logs on failure."""

    def __init__(self, world: dict[str, Any], headers: dict[str, str]) -> None:
        self.client, self.services, self.headers = world["client"], world["services"], headers
        self.workers, self.portal = world["workers"], world["portal"]

    def submit(self, body: dict[str, Any]) -> str:
        created = self.client.post("/api/v1/applications", json=body, headers=self.headers)
        assert created.status_code == 202, created.get_data(as_text=True)
        return created.get_json()["links"]["self"]

    def get(self, url: str) -> dict[str, Any]:
        return self.client.get(url, headers=self.headers).get_json()

    def wait(self, url: str, status: str) -> dict[str, Any]:
        try:
            return wait_for(lambda: (d := self.get(url))["status"] == status and d, timeout=STAGE_TIMEOUT,
                            interval=0.1, message=f"{url} to be {status}")
        except AssertionError:
            print(self.workers.logs())
            raise

    def pay(self, url: str, transaction_id: str, amount: int = 135000) -> None:
        paid = self.client.post(f"{url}/payments", headers=self.headers, json={
            "transaction_id": transaction_id, "amount": amount, "currency": "VND",
            "paid_at": dt.datetime.now(dt.UTC).isoformat()})
        assert paid.status_code == 202, paid.get_data(as_text=True)

    def portal_statuses(self, dossier: str, count: int) -> list[str]:
        """The TrangThaiHoSo values the portal received for one dossier, in order, once `count` arrived."""
        def statuses() -> list[str]:
            return [d["TrangThaiHoSo"] for c in self.portal.snapshot() for d in c.json["data"]
                    if d["MaHoSo"] == dossier]
        try:
            return wait_for(lambda: len(s := statuses()) >= count and s, timeout=STAGE_TIMEOUT,
                            message=f"{count} DongBoHoSoMC calls for {dossier}")
        except AssertionError:
            print(statuses(), self.workers.logs())
            raise


@pytest.fixture
def apps(world: dict[str, Any], portal_headers: dict[str, str]) -> Applications:
    return Applications(world, portal_headers)


def certificate_for(number: str) -> dict[str, Any]:
    return {"number": number, "issued_on": today_local() - dt.timedelta(days=30), "fit_for": ["B"]}


def days(n: int) -> str:
    return (today_local() + dt.timedelta(days=n)).isoformat()


# ------------------------------------------------------------------------------------------------
# R-IDP: International Driving Permits to `issued`

CUONG = citizen("079085000301", "LÊ VĂN CƯỜNG", "1985-07-21", "male")
DUNG = citizen("048092000401", "PHẠM VĂN DŨNG", "1992-02-29", "male")


def test_international_permits_are_issued_with_number_and_validity_of_r_idp(apps):
    today = today_local()
    b2_expiry = add_years(today, 2) - dt.timedelta(days=1)
    # CƯỜNG: an old-regime licence whose B2 expires within 3 years -> the permit ends with it.
    seed_citizen(apps.services.uow(), CUONG, licence_number="790300000301", card_serial="CUONG0000001", classes=[
        {"code": "A1", "passed_on": "2005-08-01", "valid_until": None},
        {"code": "B2", "passed_on": "2016-01-01", "valid_until": b2_expiry.isoformat()}])
    # DŨNG: a new-regime licence valid 9 more years -> the permit runs its full 3 years.
    seed_citizen(apps.services.uow(), DUNG, licence_number="480400000401", regime="vn-2025", classes=[
        {"code": "A", "passed_on": "2025-06-01", "valid_until": None},
        {"code": "B", "passed_on": "2025-06-01", "valid_until": days(9 * 365)}])
    urls = {
        "790300000301": apps.submit(application_for(CUONG, "790300000301", "G01.99-IDP-0001",
                                                    procedure="international_permit")),
        "480400000401": apps.submit(application_for(DUNG, "480400000401", "G01.99-IDP-0002",
                                                    procedure="international_permit")),
    }
    for number, url in urls.items():
        doc = apps.wait(url, "awaiting_payment")
        assert doc["fee"] == {"amount": 135000, "currency": "VND", "paid": False}  # R-FEE, IDP online
        apps.pay(url, f"PAYGOV-IDP-{number}")

    cuong = apps.wait(urls["790300000301"], "issued")["licence"]
    assert cuong == {
        "kind": "international_permit", "number": "VN790300000301", "licence_number": "790300000301",
        "issued_on": today.isoformat(), "valid_until": b2_expiry.isoformat(),
        "classes": [{"code": "A1"}, {"code": "B2"}]}
    dung = apps.wait(urls["480400000401"], "issued")["licence"]
    assert (dung["number"], dung["valid_until"]) == ("VN480400000401", add_years(today, 3).isoformat())
    assert [c["code"] for c in dung["classes"]] == ["A", "B"]

    # A permit leaves the national licence as it was: same classes, the old card still valid.
    with apps.services.session_factory() as s:
        licence = s.get(models.Licence, "790300000301")
        assert [(c.code, c.valid_until) for c in licence.classes] == [("A1", None), ("B2", b2_expiry)]
        assert s.get(models.Card, "CUONG0000001").status == "valid"
        permits = s.scalars(select(models.InternationalPermit).order_by(models.InternationalPermit.number)).all()
        assert [p.number for p in permits] == ["VN480400000401", "VN790300000301"]
    assert apps.portal_statuses("G01.99-IDP-0001", 5) == ["1", "2", "6", "4", "9"]


# ------------------------------------------------------------------------------------------------
# R-ELIG: refusals with every failing reason

EM = citizen("001088000501", "HOÀNG VĂN EM", "1988-01-15", "male")
GIANG = citizen("001195000601", "ĐỖ THỊ GIANG", "1995-06-30", "female")
HUNG = citizen("001080000701", "VŨ MẠNH HÙNG", "1980-10-10", "male")
KHANH = citizen("001087001001", "BÙI QUỐC KHÁNH", "1987-12-12", "male")


def test_refusals_carry_every_failing_reason_and_reach_the_portal_as_status_3(apps):
    uow = apps.services.uow
    # A4 (tractors) converts to nothing under vn-2025 (R-CONV-4 / R-ELIG-7).
    seed_citizen(uow(), EM, licence_number="010500000501", classes=[
        {"code": "A4", "passed_on": "2019-03-01", "valid_until": days(800)}])
    # B2 expired two months before receipt, no force majeure: vn-2025 refuses it (R-ELIG-6).
    seed_citizen(uow(), GIANG, licence_number="010600000601", certificate=certificate_for("KSK-GIANG"),
                 classes=[{"code": "B2", "passed_on": "2016-01-01", "valid_until": days(-61)}])
    # An expired A4 beside a valid B2, and no health certificate at all: three reasons at once.
    seed_citizen(uow(), HUNG, licence_number="010700000701", classes=[
        {"code": "A4", "passed_on": "2014-01-01", "valid_until": days(-150)},
        {"code": "B2", "passed_on": "2018-01-01", "valid_until": days(400)}])
    # Two applications for one licence: the second finds the first open (R-ELIG-5).
    seed_citizen(uow(), KHANH, licence_number="010900001001", certificate=certificate_for("KSK-KHANH"),
                 classes=[{"code": "B2", "passed_on": "2018-01-01", "valid_until": days(30)}])

    em = apps.submit(application_for(EM, "010500000501", "G01.99-REF-0001"))
    giang = apps.submit(application_for(GIANG, "010600000601", "G01.99-REF-0002", reason="expired",
                                        certificate=certificate_for("KSK-GIANG")))
    hung = apps.submit(application_for(HUNG, "010700000701", "G01.99-REF-0003"))
    khanh_first = apps.submit(application_for(KHANH, "010900001001", "G01.99-REF-0004",
                                              certificate=certificate_for("KSK-KHANH")))
    apps.wait(khanh_first, "awaiting_payment")
    khanh_second = apps.submit(application_for(KHANH, "010900001001", "G01.99-REF-0005",
                                               certificate=certificate_for("KSK-KHANH"), reason="damaged"))

    assert apps.wait(em, "refused")["refusal_reasons"] == ["class_not_renewable"]
    assert apps.wait(giang, "refused")["refusal_reasons"] == ["licence_expired"]
    assert apps.wait(hung, "refused")["refusal_reasons"] == [
        "licence_expired", "class_not_renewable", "health_certificate_invalid"]
    second = apps.wait(khanh_second, "refused")
    assert second["refusal_reasons"] == ["application_in_progress"]
    assert (second["fee"]["amount"], second["appointment_date"]) == (None, None)
    assert apps.get(khanh_first)["status"] == "awaiting_payment"
    assert [(h["status"], h["portal_status"]) for h in apps.get(hung)["history"]] == [("received", 1),
                                                                                      ("refused", 3)]
    assert apps.portal_statuses("G01.99-REF-0003", 2) == ["1", "3"]


# ------------------------------------------------------------------------------------------------
# R-ELIG-6 force majeure: needs_supplement, then the officer decides

LAN = citizen("001193000801", "NGÔ THỊ LAN", "1993-04-04", "female")
MAI = citizen("001196000901", "TRỊNH THỊ MAI", "1996-09-09", "female")


def test_force_majeure_case_is_held_then_accepted_by_an_officer_paid_and_issued_or_refused(apps,
                                                                                           officer_headers):
    today = today_local()
    for person, number, cert in ((LAN, "010800000801", "KSK-LAN"), (MAI, "010800000901", "KSK-MAI")):
        # vn-2025: the B2 expired 10 days before receipt (< 1 month) and force majeure is declared.
        seed_citizen(apps.services.uow(), person, licence_number=number, certificate=certificate_for(cert),
                     card_serial=f"{cert}-CARD", classes=[
                         {"code": "B2", "passed_on": "2016-01-01", "valid_until": days(-10)}])
    lan = apps.submit(application_for(LAN, "010800000801", "G01.99-FM-0001", reason="expired",
                                      force_majeure=True, certificate=certificate_for("KSK-LAN")))
    mai = apps.submit(application_for(MAI, "010800000901", "G01.99-FM-0002", reason="expired",
                                      force_majeure=True, certificate=certificate_for("KSK-MAI")))
    for url in (lan, mai):
        held = apps.wait(url, "needs_supplement")
        assert held["portal_status"] == 5 and held["refusal_reasons"] == []

    accepted = apps.client.post(f"{lan}/decision", headers=officer_headers,
                                json={"decision": "accept", "note": "hospital discharge paper checked"})
    assert accepted.status_code == 202, accepted.get_data(as_text=True)
    refused = apps.client.post(f"{mai}/decision", headers=officer_headers,
                               json={"decision": "refuse", "note": "no force majeure shown"})
    assert refused.status_code == 202, refused.get_data(as_text=True)

    doc = apps.wait(lan, "awaiting_payment")
    assert doc["fee"]["amount"] == 135000 and doc["appointment_date"] and doc["accepted_at"]
    apps.pay(lan, "PAYGOV-FM-0001")
    doc = apps.wait(lan, "issued")
    assert [h["status"] for h in doc["history"]] == [
        "received", "needs_supplement", "accepted", "awaiting_payment", "processing", "processing", "issued"]
    assert doc["history"][2]["note"] == "officer decision: accept — hospital discharge paper checked"
    # Renewed from the new issue date (R-VALID): the expired B2 becomes a B valid 10 years (R-CONV-6).
    assert [(c["code"], c["valid_until"]) for c in doc["licence"]["classes"]] == [
        ("B", add_years(today, 10).isoformat())]
    with apps.services.session_factory() as s:
        actors = s.scalars(select(models.ApplicationHistory.actor).where(
            models.ApplicationHistory.application_id == doc["id"], models.ApplicationHistory.status == "accepted"))
        assert list(actors) == [OFFICER]
        assert s.get(models.Card, "KSK-LAN-CARD").status == "replaced"
    assert apps.portal_statuses("G01.99-FM-0001", 6) == ["1", "5", "2", "6", "4", "9"]

    doc = apps.wait(mai, "refused")
    assert doc["refusal_reasons"] == ["licence_expired"]
    assert apps.portal_statuses("G01.99-FM-0002", 3) == ["1", "5", "3"]
