"""The least a submit of this shape can do, served as the service is (bench/bench_submit.py): Flask
loads the body with the service's own marshmallow schema (`schemas.applications.ApplicationRequestSchema`)
and stores it with one INSERT in one SQLite transaction (WAL, synchronous=NORMAL, as the service's
database), then answers 202 with the new id. No authentication, rate limit, idempotency, outbox,
history, photo store, logging or metrics: everything the service's submit does on top of this is
extra work, so this app's throughput against the echo's is a ceiling for the service's ratio on
the machine of the day."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from typing import Any

from flask import Flask, request

_local = threading.local()


def _db() -> sqlite3.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(os.environ["FLOOR_DB"], timeout=60, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        _local.conn = conn
    return conn


def create_schema(path: str) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE IF NOT EXISTS applications "
                     "(id TEXT PRIMARY KEY, dossier TEXT NOT NULL UNIQUE, body TEXT NOT NULL)")


def create_app() -> Flask:
    from schemas.applications import ApplicationRequestSchema

    app = Flask("floor")
    schema = ApplicationRequestSchema()

    @app.get("/healthz")
    def healthz() -> Any:
        return {"status": "ok"}

    @app.post("/api/v1/applications")
    def submit() -> Any:
        body = request.get_json()
        data = schema.load(body)
        application_id = str(uuid.uuid4())
        conn = _db()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO applications (id, dossier, body) VALUES (?, ?, ?)",
                     (application_id, data["portal_dossier_id"], json.dumps(body, ensure_ascii=False)))
        conn.execute("COMMIT")
        return {"id": application_id, "status": "received"}, 202

    return app
