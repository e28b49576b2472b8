"""create_app: the Flask application factory."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from flask import Flask, g, request

from licence_service import metrics
from licence_service.api import applications, health, licences, review
from licence_service.api.auth import PRINCIPAL_KEY
from licence_service.api.errors import ProblemApi, register_error_handlers
from licence_service.api.limits import init_rate_limits
from licence_service.bootstrap import Services, build_services
from licence_service.config import Settings, load_settings
from licence_service.logs import bind_log_context, clear_log_context, forget_personal_data, install_masking, mask

access_log = logging.getLogger("licence_service.access")
# A client's correlation id is echoed and logged: only a short id-like value is taken as it is.
CORRELATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
CREATED_APPLICATION = re.compile(r"/api/v1/applications/([0-9a-f-]{36})")


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
        # schemas.applications reads it: how far ahead of this clock a client's timestamp may be.
        CLOCK_SKEW_SECONDS=services.settings.clock_skew_seconds,
    )
    install_masking()  # decree 13/2023/NĐ-CP: no log record of this process carries personal data
    app.json.ensure_ascii = False  # Vietnamese names stay readable in responses
    app.extensions["licence_service"] = services

    api = ProblemApi(app, spec_kwargs={
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                                          "bearerFormat": "JWT"}}},
    })
    app.extensions["licence_api"] = api
    api.register_blueprint(applications.blp)
    api.register_blueprint(review.blp)
    api.register_blueprint(licences.blp)
    app.register_blueprint(health.blp)
    register_error_handlers(app)

    @app.before_request
    def _correlation() -> None:
        g.started = time.monotonic()
        forget_personal_data()  # what the previous request on this thread remembered
        given = request.headers.get("X-Correlation-ID", "")
        g.correlation_id = given if CORRELATION_ID.fullmatch(given) else str(uuid.uuid4())
        # Every line logged for this request carries its correlation id (and its application's id).
        clear_log_context()
        about = (request.view_args or {}).get("application_id")  # a UUID, from the route's converter
        bind_log_context(correlation_id=g.correlation_id, application_id=str(about) if about else None)

    # After the correlation hook: a request refused for its rate still gets its correlation id.
    init_rate_limits(app, services.settings)

    @app.after_request
    def _headers(response: Any) -> Any:
        response.headers["X-Correlation-ID"] = g.get("correlation_id", "")
        created = CREATED_APPLICATION.fullmatch(response.headers.get("Location", ""))
        if created:  # the access line of a submission names the application it created
            bind_log_context(application_id=created.group(1))
        if request.path.startswith("/api/"):
            # Responses carry personal data: no shared or browser cache may keep them.
            response.headers["Cache-Control"] = "no-store"
        _log_access(response)
        return response

    @app.teardown_request
    def _forget(_exc: BaseException | None) -> None:
        forget_personal_data()
        clear_log_context()

    metrics.init_app(app)  # /metrics, and every request counted and timed

    from licence_service.cli import register_cli

    register_cli(app)
    return app


def _log_access(response: Any) -> None:
    """One line per request, masked like every record (licence numbers in paths, ids in queries)."""
    if not request.path.startswith("/api/"):
        return
    principal = request.environ.get(PRINCIPAL_KEY)
    started = g.get("started")
    # Masked here as well as in the message: a handler may write structured fields as they are.
    path = mask(request.full_path.rstrip("?"))
    access_log.info(
        "%s %s %s", request.method, path, response.status_code,
        extra={"method": request.method, "path": path, "status": response.status_code,
               "client_id": principal.client_id if principal else None,
               "correlation_id": g.get("correlation_id"),
               "duration_ms": round((time.monotonic() - started) * 1000, 1) if started else None},
    )
