"""Bearer tokens: JWTs signed (HS256) with the configured secret, carrying a client id and scopes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import jwt

SCOPES = ("applications:submit", "applications:read", "applications:review", "registry:read")
KEY_ID = "k1"


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class Principal:
    client_id: str
    scopes: frozenset[str]


def issue_token(secret: str, client_id: str, scopes: list[str] | tuple[str, ...], *, issuer: str,
                audience: str, ttl_seconds: int, now: dt.datetime | None = None) -> str:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope(s): {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    now = now or dt.datetime.now(dt.UTC)
    claims = {
        "sub": client_id,
        "scope": " ".join(scopes),
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + dt.timedelta(seconds=ttl_seconds),
    }
    return jwt.encode(claims, secret, algorithm="HS256", headers={"kid": KEY_ID})


def verify_token(token: str, secret: str, *, issuer: str, audience: str) -> Principal:
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], audience=audience, issuer=issuer,
            options={"require": ["exp", "sub", "iss", "aud"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    return Principal(client_id=str(claims["sub"]), scopes=frozenset(str(claims.get("scope", "")).split()))
