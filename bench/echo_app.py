"""The submit benchmark's baseline: a bare Flask app answering POST /api/v1/applications with the
JSON it was sent, served by gunicorn exactly as the service is (bench/bench_submit.py)."""

from __future__ import annotations

from typing import Any

from flask import Flask, request


def create_app() -> Flask:
    app = Flask("echo")

    @app.get("/healthz")
    def healthz() -> Any:
        return {"status": "ok"}

    @app.post("/api/v1/applications")
    def echo() -> Any:
        return request.get_json(), 202

    return app
