"""Per-client rate limits on /api/ (flask-limiter, counters in the service's Redis): one budget per
client id of a valid bearer token, or per remote address for requests without one, so neither a
client in a loop nor a flood of forged tokens can starve the others. Over budget: 429 problem with
Retry-After.
"""

from __future__ import annotations

import math
import time

from flask import Flask, Response, request
from flask_limiter import Limiter, RateLimitExceeded

from licence_service.api.auth import principal_or_none
from licence_service.api.errors import problem
from licence_service.config import Settings

KEY_PREFIX = "licence-service-rate"


def client_key() -> str:
    principal = principal_or_none()
    if principal is not None:
        return f"client:{principal.client_id}"
    return f"address:{request.remote_addr or 'unknown'}"


def _not_api() -> bool:
    # Probes (/healthz, /readyz) and the OpenAPI document are not rate limited.
    return not request.path.startswith("/api/")


def init_rate_limits(app: Flask, settings: Settings) -> Limiter:
    limiter = Limiter(
        key_func=client_key,
        application_limits=[settings.rate_limit] if settings.rate_limit else None,
        application_limits_exempt_when=_not_api,
        # Without a Redis URL (a broker on AMQP) each process counts on its own.
        storage_uri=settings.redis_url or "memory://",
        strategy="fixed-window",
        key_prefix=KEY_PREFIX,
        # Redis down must not take the API down with it: the request goes through, the error is logged.
        swallow_errors=True,
        headers_enabled=False,
        enabled=settings.rate_limit is not None,
    )
    limiter.init_app(app)

    @app.errorhandler(RateLimitExceeded)
    def _too_many(error: RateLimitExceeded) -> Response:
        current = limiter.current_limit
        reset_at = current.window[0] if current is not None else time.time() + 1
        retry_after = max(1, math.ceil(reset_at - time.time()))
        return problem(429, "Too Many Requests", detail=f"Rate limit of {error.limit.limit} exceeded; "
                       f"retry after {retry_after} s.", headers={"Retry-After": str(retry_after)})

    return limiter
