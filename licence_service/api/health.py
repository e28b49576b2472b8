"""/healthz (the process answers) and /readyz (the database and the broker answer)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify
from kombu import Connection
from sqlalchemy import text

from licence_service.bootstrap import services_for

blp = Blueprint("health", __name__)


@blp.get("/healthz")
def healthz() -> Any:
    return jsonify(status="ok")


@blp.get("/readyz")
def readyz() -> Any:
    services = services_for(current_app)
    checks: dict[str, str] = {}
    try:
        with services.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure means not ready; the reason is for the operator
        checks["database"] = f"unavailable: {type(exc).__name__}"
    try:
        with Connection(services.broker_url, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        checks["broker"] = "ok"
    except Exception as exc:
        checks["broker"] = f"unavailable: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return jsonify(status="ready" if ready else "not ready", checks=checks), 200 if ready else 503
