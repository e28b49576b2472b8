"""Every error is an RFC 9457 problem document (`application/problem+json`), never an HTML page or a
stack trace."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, json
from flask_smorest import Api
from werkzeug.exceptions import HTTPException, InternalServerError

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
    response = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def validation_problem(errors: Any) -> Response:
    return problem(422, "Validation failed", type_=VALIDATION_TYPE, errors=errors)


class ProblemApi(Api):
    """flask-smorest's Api with errors rendered as problem documents."""

    ERROR_SCHEMA = ProblemSchema

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
    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            return app.extensions["licence_api"].handle_http_exception(exc)
        # The log has the traceback; the body says nothing about the internals.
        log.exception("unhandled error")
        return problem(500, "Internal Server Error", detail="The service could not complete the request.")
