"""Bearer-token authentication and per-endpoint scopes: 401 for no or a bad token, 403 for a
missing scope."""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from typing import Any

from flask import abort, current_app, g, request
from flask_smorest import abort as smorest_abort

from licence_service.bootstrap import services_for
from licence_service.logs import personal_values, remember_personal_data
from licence_service.tokens import InvalidToken, Principal, VerifiedTokens

# OpenAPI security requirement of every /api/ operation.
BEARER = [{"bearerAuth": []}]

PORTAL_SCOPES = frozenset({"applications:submit", "applications:read"})


def bearer_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


PRINCIPAL_KEY = "licence_service.principal"
VERIFIED_TOKENS = "verified_tokens"  # its key in Services.extras


def principal_or_none() -> Principal | None:
    """The request's verified principal, or None (no token, or one that does not verify). Kept with
    the request (not on `g`, which an app context can share between requests), since the rate
    limiter asks before the view does."""
    if PRINCIPAL_KEY not in request.environ:
        request.environ[PRINCIPAL_KEY] = _verify(bearer_token())
    return request.environ[PRINCIPAL_KEY]


def _verify(token: str | None) -> Principal | None:
    if token is None:
        return None
    settings = services_for(current_app).settings
    # PORTAL.md §1: only a test configuration sets contract_token (it is never read from the
    # environment), so no deployed service accepts the pact's fixed token.
    if settings.contract_token and hmac.compare_digest(token.encode(), settings.contract_token.encode()):
        return Principal(client_id="portal-contract", scopes=PORTAL_SCOPES)
    try:
        return _verified_tokens().verify(token)
    except InvalidToken:
        return None


def _verified_tokens() -> VerifiedTokens:
    """The app's cache of accepted tokens, made again should its keys, issuer or audience change."""
    services = services_for(current_app)
    settings = services.settings
    tokens = services.extras.get(VERIFIED_TOKENS)
    if not isinstance(tokens, VerifiedTokens) or not tokens.serves(
            settings.verification_keys, settings.token_issuer, settings.token_audience):
        tokens = services.extras[VERIFIED_TOKENS] = VerifiedTokens(
            settings.verification_keys, issuer=settings.token_issuer, audience=settings.token_audience)
    return tokens


def authenticate() -> Principal:
    """401 for no token, or one with an unknown key id, a bad signature, an expired time, another
    issuer or audience; the body never says which (no oracle for forgers)."""
    if bearer_token() is None:
        smorest_abort(401, message="A bearer token is required.", headers={"WWW-Authenticate": "Bearer"})
    principal = principal_or_none()
    if principal is None:
        smorest_abort(401, message="The bearer token is not valid.",
                      headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return principal


def requires_scope(scope: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = authenticate()
            if scope not in principal.scopes:
                smorest_abort(403, message=f"The token lacks the scope {scope}.",
                              headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'})
            g.principal = principal
            return view(*args, **kwargs)

        return wrapper

    return decorator


def json_body(view: Callable[..., Any]) -> Callable[..., Any]:
    """415 unless the body is declared JSON, 400 unless it is a JSON object (PORTAL.md §1)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if request.mimetype != "application/json":
            abort(415, description="The body must be application/json.")
        try:
            body = request.get_json(silent=True)
        except RecursionError:  # nested deeper than the parser can go: not a body anyone sends
            abort(400, description="The body is nested too deeply.")
        if not isinstance(body, dict):
            abort(400, description="The body must be a JSON object.")
        # Whatever this request logs from here on (an error's traceback included) masks these.
        remember_personal_data(*personal_values(body))
        return view(*args, **kwargs)

    return wrapper
