"""Every error is an RFC 9457 problem document (`application/problem+json`), never an HTML page or a
stack trace."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from apispec import BasePlugin
from flask import Flask, Response, json
from flask_smorest import Api
from werkzeug import exceptions as werkzeug_exceptions
from werkzeug.exceptions import HTTPException, InternalServerError

from licence_service.services.applications import NotFound as ApplicationNotFound
from licence_service.services.transitions import InvalidTransition
from schemas.problems import VALIDATION_TYPE, ProblemSchema

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


def problem(status: int, title: str, *, type_: str = "about:blank", detail: str | None = None,
            errors: Any = None, headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {"type": type_, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = errors
    try:
        data = json.dumps(body, ensure_ascii=False).encode()
    except UnicodeEncodeError:  # a lone surrogate from the request (an unknown field's name): escaped
        data = json.dumps(body, ensure_ascii=True).encode()
    response = Response(data, status=status, mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def validation_problem(errors: Any) -> Response:
    return problem(422, "Validation failed", type_=VALIDATION_TYPE, errors=errors)


class ProblemResponses(BasePlugin):
    """Document errors as they are sent: every 4xx/5xx response of the spec is
    `application/problem+json` (flask-smorest writes application/json), and every operation under
    /api/ lists the errors any request may get — 401 and 403 (bearer token and scope), 429 (rate
    limit), and for a JSON body 400, 413, 415 and 422 — besides its own."""

    ALWAYS = (401, 403, 429)
    WITH_BODY = (400, 413, 415, 422)

    def operation_helper(self, path: str | None = None, operations: dict[str, Any] | None = None,
                         **kwargs: Any) -> None:
        for operation in (operations or {}).values():
            responses = operation.setdefault("responses", {})
            for code, response in responses.items():
                content = response.get("content") if isinstance(response, dict) else None
                is_error = str(code) == "default" or (str(code).isdigit() and int(code) >= 400)
                if is_error and content and "application/json" in content:
                    content[PROBLEM_JSON] = content.pop("application/json")
            if not (path or "").startswith("/api/"):
                continue
            present = {str(code) for code in responses}
            for status in (*self.ALWAYS, *(self.WITH_BODY if "requestBody" in operation else ())):
                if str(status) not in present:
                    responses[str(status)] = HTTPStatus(status).name  # the component registered below


class ProblemApi(Api):
    """flask-smorest's Api with errors rendered, and documented, as problem documents."""

    ERROR_SCHEMA = ProblemSchema
    HEADERS = {
        HTTPStatus.UNAUTHORIZED: {"WWW-Authenticate": {
            "required": True, "schema": {"type": "string"}, "description": "Bearer, with the error (RFC 6750)"}},
        HTTPStatus.TOO_MANY_REQUESTS: {"Retry-After": {
            "required": True, "schema": {"type": "integer", "minimum": 1}, "description": "seconds to wait"}},
    }

    def __init__(self, app: Flask | None = None, *, spec_kwargs: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        spec_kwargs = dict(spec_kwargs or {})
        spec_kwargs["extra_plugins"] = [*spec_kwargs.get("extra_plugins", ()), ProblemResponses()]
        super().__init__(app, spec_kwargs=spec_kwargs, **kwargs)

    def _register_responses(self) -> None:
        # flask-smorest's own error components (one per HTTP status, and DEFAULT_ERROR), as problem+json.
        for status in HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 400:
                response["content"] = {PROBLEM_JSON: {"schema": self.ERROR_SCHEMA}}
            if status in self.HEADERS:
                response["headers"] = self.HEADERS[status]
            self.spec.components.response(status.name, response, lazy=True)
        self.spec.components.response("DEFAULT_ERROR", {
            "description": "Default error response",
            "content": {PROBLEM_JSON: {"schema": self.ERROR_SCHEMA}},
        }, lazy=True)

    def handle_http_exception(self, error: HTTPException) -> Response:  # type: ignore[override]
        data = getattr(error, "data", None) or {}
        headers = dict(data.get("headers") or {})
        if error.code == 405 and error.valid_methods:  # type: ignore[attr-defined]
            headers["Allow"] = ", ".join(sorted(error.valid_methods))  # type: ignore[attr-defined]
        if error.code == 422:
            messages = data.get("errors") or data.get("messages") or {}
            # webargs nests errors under the request location ("json", "query"); the contract
            # puts them at the field path itself.
            if isinstance(messages, dict) and set(messages) <= {"json", "query", "view_args"}:
                merged: dict[str, Any] = {}
                for part in messages.values():
                    merged.update(part)
                messages = merged
            return validation_problem(messages)
        detail = data.get("message")
        if detail is None and error.code != 500 and error.description and not isinstance(error, InternalServerError):
            detail = error.description
        return problem(error.code or 500, error.name, detail=detail, headers=headers)


def register_error_handlers(app: Flask) -> None:
    # The service layer's "no such application" and "not in a state for that" mean the same HTTP
    # answer from every view, so they are mapped here once rather than caught in each view.
    @app.errorhandler(ApplicationNotFound)
    def _no_application(exc: ApplicationNotFound) -> Response:
        return app.extensions["licence_api"].handle_http_exception(
            werkzeug_exceptions.NotFound(description="No application has this id."))

    @app.errorhandler(InvalidTransition)
    def _wrong_state(exc: InvalidTransition) -> Response:
        return app.extensions["licence_api"].handle_http_exception(werkzeug_exceptions.Conflict(description=str(exc)))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            return app.extensions["licence_api"].handle_http_exception(exc)
        # The log has the traceback; the body says nothing about the internals.
        log.exception("unhandled error")
        return problem(500, "Internal Server Error", detail="The service could not complete the request.")
