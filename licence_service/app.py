"""create_app: the Flask application factory."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Flask, g, request

from licence_service.api import applications, health
from licence_service.api.errors import ProblemApi, register_error_handlers
from licence_service.bootstrap import Services, build_services
from licence_service.config import Settings, load_settings


def create_app(settings: Settings | None = None, services: Services | None = None) -> Flask:
    """Build the app. With no arguments everything comes from the environment (embedded default).

    Tests pass `settings` (or ready `services`), e.g. with `contract_token` set, which no
    environment variable can set.
    """
    services = services or build_services(settings or load_settings())
    app = Flask("licence_service")
    app.config.update(
        MAX_CONTENT_LENGTH=services.settings.max_body_bytes,
        API_TITLE="Driving-licence renewal service",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        JSON_SORT_KEYS=False,
    )
    app.json.ensure_ascii = False  # Vietnamese names stay readable in responses
    app.extensions["licence_service"] = services

    api = ProblemApi(app, spec_kwargs={
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                                          "bearerFormat": "JWT"}}},
    })
    app.extensions["licence_api"] = api
    api.register_blueprint(applications.blp)
    app.register_blueprint(health.blp)
    register_error_handlers(app)

    @app.before_request
    def _correlation() -> None:
        g.correlation_id = request.headers.get("X-Correlation-ID") or str(uuid.uuid4())

    @app.after_request
    def _headers(response: Any) -> Any:
        response.headers["X-Correlation-ID"] = g.get("correlation_id", "")
        if request.path.startswith("/api/"):
            # Responses carry personal data: no shared or browser cache may keep them.
            response.headers["Cache-Control"] = "no-store"
        return response

    from licence_service.cli import register_cli

    register_cli(app)
    return app
