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
import uuid
from pathlib import Path
from typing import Any

from flask import Flask, request

from bench.common import create_sqlite_schema, thread_sqlite


def create_schema(path: Path) -> None:
    create_sqlite_schema(path, "CREATE TABLE IF NOT EXISTS applications "
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
        conn = thread_sqlite(os.environ["FLOOR_DB"])
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO applications (id, dossier, body) VALUES (?, ?, ?)",
                     (application_id, data["portal_dossier_id"], json.dumps(body, ensure_ascii=False)))
        conn.execute("COMMIT")
        return {"id": application_id, "status": "received"}, 202

    return app
