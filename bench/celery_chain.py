"""The yardstick issue 8 gives for the pipeline, built so that it can be measured in the same run:
"the obvious Celery implementation of the same five steps (Flask + marshmallow submit, a
`check | fee | convert | issue | sync` chain with acks_late, one SQLite transaction per step)",
which the issue puts at about 100 applications/s on "this machine" with two worker processes.

Why build it: these shared 2-core machines run the same code at up to twice or half the speed from
one day to the next (bench/README.md, 2026-12-03), so an absolute target such as 150/s says little
on its own; this chain run right after the service, on the same machine, Redis and bodies, says
what the issue's 100/s is on the machine of the day.

What it does, and no more: the web app (plain Flask, served by gunicorn as the service is) loads each
body with the service's own marshmallow schema (`schemas.applications.ApplicationRequestSchema`),
stores it in one SQLite transaction and sends the chain; each task is one transaction on the
application's row (check and convert also read the body); `sync` posts the issued status to the
portal stand-in (one DongBoHoSoMC call per application) and records it. No payment request (the
fee step takes it), no registers, no outbox, no retries, no logs: everything the service does on
top of this is work the chain does not do, which is why the issue expects the service to be ahead
of it only when that work is cheap.

    bench/bench_pipeline.py runs it after the service (`--celery-count`, 0 to skip).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from celery import Celery, chain
from flask import Flask, request

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import create_sqlite_schema, thread_sqlite  # noqa: E402

app = Celery("celery_chain", broker=os.environ.get("CHAIN_BROKER_URL", "redis://127.0.0.1:6379/1"))
app.conf.update(task_acks_late=True, task_ignore_result=True, task_serializer="json", accept_content=["json"],
                broker_connection_retry_on_startup=True, worker_hijack_root_logger=False)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS applications (
    id TEXT PRIMARY KEY, dossier TEXT NOT NULL UNIQUE, body TEXT NOT NULL, status TEXT NOT NULL,
    fee INTEGER, converted TEXT, card_serial TEXT, synced INTEGER NOT NULL DEFAULT 0
)"""
_local = threading.local()  # the sync task's HTTP session


def broker_url(redis_url: str) -> str:
    """The chain's broker: a database of its own on the service's Redis."""
    return redis_url.rsplit("/", 1)[0] + "/1"


def _db() -> sqlite3.Connection:
    return thread_sqlite(os.environ["CHAIN_DB"])


def create_schema(path: Path) -> None:
    create_sqlite_schema(path, _SCHEMA)


def _move(application_id: str, status: str, **columns: Any) -> None:
    """One transaction: the row's new status (and columns)."""
    sets = "".join(f", {name} = ?" for name in columns)
    conn = _db()
    with conn:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(f"UPDATE applications SET status = ?{sets} WHERE id = ?",
                     (status, *columns.values(), application_id))


def _body(application_id: str) -> dict[str, Any]:
    row = _db().execute("SELECT body FROM applications WHERE id = ?", (application_id,)).fetchone()
    return json.loads(row[0])


@app.task
def check(application_id: str) -> None:
    body = _body(application_id)
    eligible = bool(body["licence"]["number"]) and bool(body["applicant"]["citizen_id"])
    _move(application_id, "checked" if eligible else "refused")


@app.task
def fee(application_id: str) -> None:
    _move(application_id, "paid", fee=135000)


@app.task
def convert(application_id: str) -> None:
    body = _body(application_id)
    converted = {"holder": body["applicant"]["full_name"].upper(), "licence": body["licence"]["number"],
                 "classes": body.get("classes", [])}
    _move(application_id, "converted", converted=json.dumps(converted, ensure_ascii=False))


@app.task
def issue(application_id: str) -> None:
    _move(application_id, "issued", card_serial=uuid.uuid4().hex[:12].upper())


@app.task
def sync(application_id: str) -> None:
    import requests

    session = getattr(_local, "session", None) or requests.Session()
    _local.session = session
    entry = {"MaHoSo": application_id, "TrangThaiHoSo": 9, "NgayCapNhat": time.strftime("%Y%m%d%H%M%S")}
    response = session.post(os.environ["CHAIN_PORTAL_URL"], json={"data": [entry]}, timeout=30)
    response.raise_for_status()
    _move(application_id, "issued", synced=1)


def create_app() -> Flask:
    from schemas.applications import ApplicationRequestSchema

    web = Flask("celery_chain")
    schema = ApplicationRequestSchema()

    @web.get("/healthz")
    def healthz() -> Any:
        return {"status": "ok"}

    @web.post("/api/v1/applications")
    def submit() -> Any:
        from marshmallow import ValidationError

        document = request.get_json()
        try:
            schema.load(document)
        except ValidationError as exc:
            return {"errors": exc.messages}, 400
        application_id = str(uuid.uuid4())
        conn = _db()
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO applications (id, dossier, body, status) VALUES (?, ?, ?, 'received')",
                         (application_id, document["portal_dossier_id"], json.dumps(document, ensure_ascii=False)))
        chain(check.si(application_id), fee.si(application_id), convert.si(application_id),
              issue.si(application_id), sync.si(application_id)).apply_async()
        return {"id": application_id}, 202

    return web


def run(bodies: list[str], tmp: Path, redis_url: str, clients: int, timeout: float) -> dict[str, float]:
    """Submit ``bodies`` to the chain and wait until every one is synced; its figures."""
    import requests

    from bench.common import children, cpu_seconds, free_port, gunicorn, service_env

    tmp.mkdir()
    db = tmp / "chain.db"
    create_schema(db)
    portal_port = free_port()
    portal = subprocess.Popen([sys.executable, str(ROOT / "bench" / "portal_stand_in.py"), str(portal_port)])
    env = service_env(tmp / "var", f"sqlite:///{db}", redis_url, CHAIN_DB=str(db),
                      CHAIN_BROKER_URL=broker_url(redis_url), CHAIN_PORTAL_URL=f"http://127.0.0.1:{portal_port}/DongBoHoSoMC")
    with open(tmp / "worker.log", "wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "bench.celery_chain", "worker", "--concurrency", "2", "--pool",
             "prefork", "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    conn = sqlite3.connect(db, timeout=60)

    def synced() -> int:
        return conn.execute("SELECT count(*) FROM applications WHERE synced = 1").fetchone()[0]

    try:
        with gunicorn("bench.celery_chain:create_app()", env, tmp / "web.log") as (base, web):
            def chain_cpu() -> float:
                # The worker (its consumer and pool processes) and the web's workers; unlike the
                # service's figure, not the Redis server's nor the stand-in's (~1 ms an application).
                pids = [worker.pid, *children(worker.pid), *children(web.pid)]
                return sum(cpu_seconds(pid) for pid in pids)

            local = threading.local()

            def submit(text: str) -> None:
                session = getattr(local, "session", None) or requests.Session()
                local.session = session
                response = session.post(base + "/api/v1/applications", data=text.encode(),
                                        headers={"Content-Type": "application/json"}, timeout=60)
                if response.status_code != 202:
                    raise RuntimeError(f"celery chain submit: {response.status_code} {response.text[:300]}")

            cpu_before = chain_cpu()
            started = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                list(pool.map(submit, bodies))
            submitted = time.perf_counter() - started
            while synced() < len(bodies):
                if time.perf_counter() - started > timeout:
                    raise SystemExit(f"celery chain: only {synced()} of {len(bodies)} done after {timeout} s; "
                                     f"logs in {tmp}")
                time.sleep(0.2)
            elapsed = time.perf_counter() - started
            cpu = chain_cpu() - cpu_before
    finally:
        conn.close()
        worker.terminate()
        worker.wait(60)
        portal.terminate()
        portal.wait(10)
    return {"submitted_per_second": len(bodies) / submitted, "per_second": len(bodies) / elapsed,
            "elapsed": elapsed, "cpu_ms_per_application": cpu * 1000 / len(bodies)}
