"""Helpers for the delivery-guarantee tests (tests/integration/messaging, tests/chaos): many citizens
at once, the service's processes against a chosen database and broker, and what the database says
afterwards about every application."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from licence_service.config import PROJECT_ROOT
from licence_service.domain.regime import LOCAL_TZ
from licence_service.messaging.envelope import events_of
from licence_service.store import models
from licence_service.store.unit_of_work import UnitOfWork
from tests.conftest import TOKEN_SECRET
from tests.support.data import AN, application_body

PORTAL_TOKEN = "portal-sync-token"
PORTAL_SECRET = "portal-sync-secret"
STAGE_PROCESSES = ("checks", "fee", "conversion", "issuance", "portal_sync")
# Every status an application passes on its way to `issued`, each once (the conversion adds a
# second `processing` row: "converted into the national model").
ISSUED_HISTORY = ["received", "accepted", "awaiting_payment", "processing", "processing", "issued"]
ISSUED_PORTAL_STATUSES = [1, 2, 6, 4, 9]
FEE = 135000


def _png(width: int = 1, height: int = 1) -> bytes:
    """A well-formed PNG (grey pixels): the photo check reads the whole file's structure."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


PHOTO = {"content_type": "image/png", "data": base64.b64encode(_png()).decode()}


@dataclass(frozen=True)
class Citizen:
    index: int
    citizen_id: str
    licence_number: str
    certificate: str
    dossier_id: str

    def body(self) -> dict[str, Any]:
        today = dt.datetime.now(LOCAL_TZ)
        return application_body(
            portal_dossier_id=self.dossier_id,
            received_at=today.isoformat(timespec="seconds"),
            applicant={**application_body()["applicant"], "citizen_id": self.citizen_id},
            licence={"number": self.licence_number},
            photo=PHOTO,
            health_certificate={"number": self.certificate, "issued_on": (today.date() - dt.timedelta(days=30))
                                .isoformat(), "facility_code": "01-BVBM", "fit_for": ["B", "C1"]},
        )


def citizens(n: int, *, start: int = 0) -> list[Citizen]:
    # Citizen IDs 0010890xxxxx: Hà Nội (001), a man born in 1989 (0 89), like AN's (R-ID).
    return [Citizen(i, f"0010890{i:05d}", f"0199{i:08d}", f"KSK-T-{i:06d}", f"G01.99-T-{i:07d}")
            for i in range(start, start + n)]


def seed(uow: UnitOfWork, people: Iterable[Citizen]) -> None:
    """For each citizen: a B2 licence expiring in 40 days, their population record and a fresh health
    certificate fit for B (everything the checks need to accept the application)."""
    from licence_service.registers.national import put_licence

    today = dt.datetime.now(LOCAL_TZ).date()
    with uow:
        for c in people:
            holder = {**AN, "citizen_id": c.citizen_id}
            put_licence(uow, number=c.licence_number, holder=holder, regime="vn-2017", issued_on="2017-01-10",
                        classes=[{"code": "B2", "passed_on": "2017-01-10",
                                  "valid_until": (today + dt.timedelta(days=40)).isoformat()}],
                        card_serial=f"OLD{c.index:09d}")
            uow.sandbox.merge(models.SandboxPopulationRecord(
                citizen_id=c.citizen_id, full_name=AN["full_name"],
                date_of_birth=dt.date.fromisoformat(AN["date_of_birth"]), sex=AN["sex"]))
            uow.sandbox.merge(models.SandboxHealthCertificate(
                number=c.certificate, citizen_id=c.citizen_id, issued_on=today - dt.timedelta(days=30),
                facility_code="01-BVBM", fit_for=["B", "C1"]))
        uow.commit()


def service_env(tmp_path: Path, database_url: str, broker_url: str, portal_url: str | None = None,
                **extra: str) -> dict[str, str]:
    """The environment of the service's processes for one test."""
    env = {"DATABASE_URL": database_url, "VAR_DIR": str(tmp_path / "var"), "TOKEN_SECRET": TOKEN_SECRET,
           "RELAY_POLL_SECONDS": "0.05"}
    if broker_url.startswith("redis"):
        env["REDIS_URL"] = broker_url
    else:
        env["BROKER_URL"] = broker_url
    if portal_url:
        env.update(PORTAL_SYNC_URL=portal_url, PORTAL_SYNC_TOKEN=PORTAL_TOKEN, PORTAL_SYNC_SECRET=PORTAL_SECRET)
    env.update(extra)
    return env


class Processes:
    """The service's worker processes, each restartable on its own; `module` runs instead of
    `workers` for the names given in `modules` (a test's fault-injecting wrapper)."""

    def __init__(self, env: dict[str, str], log_dir: Path, modules: dict[str, str] | None = None) -> None:
        self.env = {**os.environ, **env, "PYTHONPATH": str(PROJECT_ROOT), "PYTHONUNBUFFERED": "1"}
        for name in ("QUEUE_PREFIX", "BROKER_URL", "REDIS_URL"):
            if name not in env:
                self.env.pop(name, None)
        self.log_dir = log_dir
        self.modules = modules or {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.lock = threading.Lock()
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, *names: str) -> Processes:
        for name in names:
            module = self.modules.get(name, "workers")
            with open(self.log_dir / f"{name}.log", "ab") as log, self.lock:
                self.procs[name] = subprocess.Popen([sys.executable, "-m", module, name], env=self.env,
                                                    cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)
        return self

    def kill(self, name: str) -> None:
        with self.lock:
            proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def terminate(self, name: str, timeout: float = 30) -> int:
        """SIGTERM, as honcho or systemd stop a process; the exit code."""
        with self.lock:
            proc = self.procs.pop(name)
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout)

    def stop(self) -> None:
        with self.lock:
            procs, self.procs = list(self.procs.values()), {}
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def logs(self, tail: int = 4000) -> str:
        files = sorted(self.log_dir.glob("*.log"))
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-tail:]}" for p in files)


@contextmanager
def running(target: Callable[[threading.Event], Any], name: str) -> Iterator[threading.Event]:
    """Run `target(stop)` in a thread for the duration of the block (an in-process worker or relay)."""
    stop = threading.Event()
    thread = threading.Thread(target=target, args=(stop,), name=name, daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(30)
        assert not thread.is_alive(), f"{name} did not stop within 30 s"


# -- what the database says ---------------------------------------------------------------------


def statuses(session_factory: Any) -> Counter[str]:
    with session_factory() as s:
        return Counter(dict(s.execute(select(models.Application.status, func.count())
                                      .group_by(models.Application.status)).all()))


def history_by_application(session_factory: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    with session_factory() as s:
        rows = s.execute(select(models.ApplicationHistory.application_id, models.ApplicationHistory.status)
                         .order_by(models.ApplicationHistory.id)).all()
    for application_id, status in rows:
        out.setdefault(application_id, []).append(status)
    return out


def cards_by_application(session_factory: Any) -> Counter[str]:
    with session_factory() as s:
        rows = s.execute(select(models.Card.application_id, func.count()).where(models.Card.application_id.is_not(None))
                         .group_by(models.Card.application_id)).all()
    return Counter(dict(rows))


def count(session_factory: Any, model: Any, *where: Any) -> int:
    with session_factory() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def unsent_outbox(session_factory: Any) -> int:
    return count(session_factory, models.OutboxMessage, models.OutboxMessage.sent_at.is_(None))


def queued(client: Any, queue: str) -> list[dict[str, Any]]:
    """The messages waiting in a kombu Redis queue, oldest last (as the list holds them): headers
    and decoded body."""
    out = []
    for raw in client.lrange(queue, 0, -1):
        message = json.loads(raw)
        body = message["body"]
        if message["properties"].get("body_encoding") == "base64":
            body = base64.b64decode(body)
        out.append({"headers": message["headers"], "body": json.loads(body)})
    return out


def queued_events(client: Any, queue: str) -> list[dict[str, Any]]:
    """The events those messages carry, in publishing order."""
    return [event for m in queued(client, queue)[::-1] for event in events_of(m["body"])]
