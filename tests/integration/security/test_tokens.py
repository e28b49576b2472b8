"""Bearer tokens (SECURITY.md: forged tokens): signed with a configured key named by its `kid`, two
keys valid at once while one is rotated in; anything unknown, expired, tampered with, or meant for
another issuer or audience is a 401; a token without the endpoint's scope is a 403. Neither changes
anything stored."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import jwt
import pytest

from licence_service.bootstrap import services_for
from licence_service.tokens import SCOPES, issue_token
from tests.integration.security.conftest import KEY_1, KEY_2, assert_problem, bearer, row_counts
from tests.support.data import PHOTO, application_body

ISSUER = AUDIENCE = "licence-service"
ROTATING = {"TOKEN_KEYS": json.dumps({"k1": KEY_1, "k2": KEY_2}), "TOKEN_SIGNING_KEY_ID": "k2"}
SOME_ID = "00000000-0000-4000-8000-000000000000"


def token(secret: str = KEY_1, kid: str = "k1", scopes: tuple[str, ...] = SCOPES, **claims: Any) -> str:
    now = dt.datetime.now(dt.UTC)
    body = {"sub": "portal", "scope": " ".join(scopes), "iss": ISSUER, "aud": AUDIENCE, "iat": now,
            "exp": now + dt.timedelta(minutes=10), **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, secret, algorithm="HS256",
                      headers={"kid": kid})


def read(client: Any, headers: dict[str, str]) -> Any:
    return client.get("/api/v1/applications", query_string={"portal_dossier_id": "G01.99-X"}, headers=headers)


def test_two_keys_are_valid_at_once_and_new_tokens_are_signed_with_the_signing_key(app_with):
    app = app_with(**ROTATING)
    client = app.test_client()
    assert read(client, bearer(token(KEY_1, "k1"))).status_code == 200
    assert read(client, bearer(token(KEY_2, "k2"))).status_code == 200
    printed = app.test_cli_runner().invoke(args=["tokens", "issue", "--client", "portal",
                                                 "--scope", "applications:read"])
    assert printed.exit_code == 0, printed.output
    issued = printed.output.strip()
    assert jwt.get_unverified_header(issued)["kid"] == "k2"
    jwt.decode(issued, KEY_2, algorithms=["HS256"], audience=AUDIENCE)  # signed with k2's secret
    assert read(client, bearer(issued)).status_code == 200


def test_after_rotation_a_token_of_the_removed_key_is_401(app_with):
    old = token(KEY_1, "k1")
    app = app_with(TOKEN_KEYS=json.dumps({"k2": KEY_2}))
    assert_problem(read(app.test_client(), bearer(old)), 401)


def test_token_secret_alone_is_key_k1(app_with):
    from tests.conftest import TOKEN_SECRET

    app = app_with()  # TOKEN_SECRET, no TOKEN_KEYS
    assert services_for(app).settings.verification_keys == {"k1": TOKEN_SECRET}
    assert read(app.test_client(), bearer(token(TOKEN_SECRET, "k1"))).status_code == 200
    assert_problem(read(app.test_client(), bearer(token(TOKEN_SECRET, "k2"))), 401)


def _tampered() -> str:
    # A read-only token whose payload is rewritten to claim every scope, its signature kept.
    header, payload, signature = token(KEY_1, "k1", scopes=("applications:read",)).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = " ".join(SCOPES)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{header}.{forged}.{signature}"


FORGED = {
    "unknown kid": lambda: token(KEY_1, "k9"),
    "no kid": lambda: jwt.encode({"sub": "portal", "scope": " ".join(SCOPES), "iss": ISSUER, "aud": AUDIENCE,
                                  "iat": dt.datetime.now(dt.UTC),
                                  "exp": dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)}, KEY_1),
    "kid of the other key": lambda: token(KEY_1, "k2"),
    "signed with another secret": lambda: token("an-attacker-guess-" + "z" * 32, "k1"),
    "expired": lambda: token(exp=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5),
                             iat=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)),
    "tampered payload": _tampered,
    "wrong issuer": lambda: token(iss="someone-else"),
    "wrong audience": lambda: token(aud="another-service"),
    "no expiry": lambda: token(exp=None),
    "alg none": lambda: jwt.encode({"sub": "portal", "scope": " ".join(SCOPES), "iss": ISSUER, "aud": AUDIENCE,
                                    "exp": dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)},
                                   None, algorithm="none", headers={"kid": "k1"}),
    "not a JWT": lambda: "not-a-token",
}


@pytest.mark.parametrize("kind", FORGED)
def test_forged_or_stale_token_is_401_and_stores_nothing(app_with, kind):
    app = app_with(**ROTATING)
    services = services_for(app)
    before = row_counts(services)
    response = app.test_client().post("/api/v1/applications", json=application_body(),
                                      headers=bearer(FORGED[kind]()))
    problem = assert_problem(response, 401)
    # One answer for every kind of bad token: the body is no oracle for a forger.
    assert problem["detail"] == "The bearer token is not valid."
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert row_counts(services) == before


# Every endpoint with the scope it needs, and a request it accepts when the scope is there.
ENDPOINTS = [
    ("applications:submit", "post", "/api/v1/applications", application_body()),
    ("applications:read", "get", "/api/v1/applications?portal_dossier_id=G01.99-X", None),
    ("applications:read", "get", f"/api/v1/applications/{SOME_ID}", None),
    ("applications:submit", "post", f"/api/v1/applications/{SOME_ID}/payments",
     {"transaction_id": "T-1", "amount": 135000, "currency": "VND", "paid_at": "2026-11-27T10:30:00+07:00"}),
    ("applications:submit", "post", f"/api/v1/applications/{SOME_ID}/withdrawal", {"reason": "no longer needed"}),
    ("applications:review", "post", f"/api/v1/applications/{SOME_ID}/decision", {"decision": "accept"}),
    ("applications:submit", "post", f"/api/v1/applications/{SOME_ID}/supplements",
     {"photo": {"content_type": "image/jpeg", "data": PHOTO}}),
    ("registry:read", "get", "/api/v1/licences/010123456789", None),
]


@pytest.mark.parametrize("scope, method, url, body", ENDPOINTS, ids=[f"{m.upper()} {u}" for _, m, u, _ in ENDPOINTS])
def test_token_without_the_endpoints_scope_is_403_and_with_it_passes(app_with, scope, method, url, body):
    app = app_with()
    from tests.conftest import TOKEN_SECRET

    services = services_for(app)
    client = app.test_client()
    before = row_counts(services)
    others = tuple(s for s in SCOPES if s != scope)
    refused = getattr(client, method)(url, json=body, headers=bearer(token(TOKEN_SECRET, scopes=others)))
    problem = assert_problem(refused, 403)
    assert scope in problem["detail"]
    assert row_counts(services) == before
    allowed = getattr(client, method)(url, json=body, headers=bearer(token(TOKEN_SECRET, scopes=(scope,))))
    assert allowed.status_code not in (401, 403), allowed.get_data(as_text=True)


def test_issuing_a_token_for_an_overlong_client_id_is_refused():
    with pytest.raises(ValueError):
        issue_token(KEY_1, "x" * 65, ["applications:read"], issuer=ISSUER, audience=AUDIENCE, ttl_seconds=60)
