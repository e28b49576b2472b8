"""Helpers for the DongBoHoSoMC tests: applications whose status changes go through the service's own
code, and a scripted portal stand-in that records when each call started and ended."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from licence_service.bootstrap import Services
from licence_service.domain.model import PORTAL_STATUS
from licence_service.services import applications as service
from licence_service.services.transitions import change_status
from licence_service.store import models
from schemas.applications import ApplicationRequestSchema
from tests.support.data import application_body
from tests.support.servers import PortalCall

PORTAL_TOKEN = "portal-sync-token"
PORTAL_SECRET = "portal-sync-secret"
# The path of portal statuses of an application paid and issued (PORTAL.md "Application states").
HAPPY_PATH = ("received", "accepted", "awaiting_payment", "processing", "issued")


def portal_env(url: str, **extra: str) -> dict[str, str]:
    return {"PORTAL_SYNC_URL": url, "PORTAL_SYNC_TOKEN": PORTAL_TOKEN, "PORTAL_SYNC_SECRET": PORTAL_SECRET, **extra}


def submit(services: Services, dossier: str) -> str:
    """A new application (portal status 1) through the service's submit handler; returns its id."""
    body = application_body(portal_dossier_id=dossier)
    result = service.submit(services.uow, ApplicationRequestSchema().load(body), body, client_id="portal")
    assert result.created
    return result.application.id


def advance(services: Services, application_id: str, *statuses: str) -> None:
    """Move the application through `statuses`, each in its own transaction, as the stages would:
    each portal-status change owes the portal one call (transitions.change_status)."""
    for status in statuses:
        with services.uow() as uow:
            application = uow.applications.get(application_id, for_update=True)
            if status == "awaiting_payment":
                application.fee_amount, application.fee_currency = 135000, "VND"
            if status == "accepted":
                application.accepted_at = models.utcnow()
                application.appointment_date = dt.date(2026, 12, 4)
            change_status(uow, application, status, actor="test")
            uow.commit()


def items(services: Services, application_id: str) -> list[models.PortalSyncItem]:
    with services.session_factory() as s:
        stmt = select(models.PortalSyncItem).where(models.PortalSyncItem.application_id == application_id)
        return list(s.scalars(stmt.order_by(models.PortalSyncItem.seq)))


def acked(services: Services, application_id: str) -> int | None:
    with services.session_factory() as s:
        return s.get(models.Application, application_id).portal_acked_status


def codes(*statuses: str) -> list[str]:
    return [str(PORTAL_STATUS[s]) for s in statuses]


@dataclass
class Answered:
    dossier: str
    status: str
    is_updating: str
    started: float
    ended: float
    code: int


@dataclass
class ScriptedPortal:
    """A `respond` for PortalStandIn: `decide(dossier, status, n)` gives (http status, body) for the
    n-th time (from 1) that dossier and status is sent, after an optional `delay`; a call carrying
    several dossiers (its `data` is a list) asks for each entry, waits for the longest delay, and is
    answered as a whole: OK if every entry is, else with the first entry's refusal (so a stand-in told
    to refuse one dossier refuses every call carrying it). Every entry is recorded with its call's start
    and end time and answer, so overlapping calls can be detected."""

    decide: Callable[[str, str, int], tuple[int, dict[str, Any]]] = lambda d, s, n: (200, {"error_code": "00"})
    delay: Callable[[str, str, int], float] = lambda d, s, n: 0.0
    answered: list[Answered] = field(default_factory=list)
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    # The number of entries of each call, in the order the calls were answered.
    call_sizes: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, call: PortalCall) -> tuple[int, dict[str, Any]]:
        body = call.json
        keys = [(entry["MaHoSo"], entry["TrangThaiHoSo"]) for entry in body["data"]]
        with self.lock:
            numbered = []
            for key in keys:
                n = self.counts[key] = self.counts.get(key, 0) + 1
                numbered.append((*key, n))
        started = time.monotonic()
        pause = max((self.delay(*k) for k in numbered), default=0.0)
        if pause:
            time.sleep(pause)  # the portal being slow, not test synchronisation
        answers = [self.decide(*k) for k in numbered]
        code, answer = next((a for a in answers if not accepted(*a)), answers[0] if answers else (400, {}))
        ended = time.monotonic()
        with self.lock:
            self.answered.extend(Answered(d, s, body["isUpdating"], started, ended, code) for d, s, _ in numbered)
            self.call_sizes.append(len(numbered))
        return code, answer

    def of(self, dossier: str) -> list[Answered]:
        with self.lock:
            return [a for a in self.answered if a.dossier == dossier]

    def delivered(self, dossier: str) -> list[str]:
        """The statuses the portal accepted for `dossier`, in the order it accepted them."""
        return [a.status for a in self.of(dossier) if a.code == 200]


def accepted(code: int, answer: dict[str, Any]) -> bool:
    return code == 200 and answer.get("error_code") == "00"


def entries(calls: list[PortalCall]) -> list[tuple[str, str]]:
    """Every (dossier, status) the calls carried, in call order then `data` order."""
    return [(entry["MaHoSo"], entry["TrangThaiHoSo"]) for call in calls for entry in call.json["data"]]


def statuses_by_dossier(calls: list[PortalCall]) -> dict[str, list[str]]:
    """The statuses sent for each dossier, in the order they were sent."""
    sent: dict[str, list[str]] = {}
    for dossier, status in entries(calls):
        sent.setdefault(dossier, []).append(status)
    return sent


def assert_in_order_without_overlap(portal: ScriptedPortal, dossier: str, expected: list[str]) -> None:
    """What PORTAL.md §2 promises per application: calls never overlap, a call for a status never
    comes after a call for a later one, and each status is accepted exactly once, in order."""
    calls = portal.of(dossier)
    for earlier, later in zip(calls, calls[1:], strict=False):
        assert later.started >= earlier.ended, f"overlapping calls for {dossier}: {earlier} / {later}"
    positions = [expected.index(a.status) for a in calls]
    assert positions == sorted(positions), f"{dossier}: calls out of order {[a.status for a in calls]}"
    assert portal.delivered(dossier) == expected
