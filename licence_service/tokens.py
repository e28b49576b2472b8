"""Bearer tokens: JWTs signed (HS256) with one of the configured keys, carrying a client id and scopes.

Every token names its key in the `kid` header, and verification accepts any configured key: an
operator rotates by adding a new key, making it the signing key, and removing the old one once the
tokens it signed have expired (at most TOKEN_TTL_SECONDS later).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import jwt

SCOPES = ("applications:submit", "applications:read", "applications:review", "registry:read")
KEY_ID = "k1"  # the key id of TOKEN_SECRET and of the embedded default's var/token-secret
ALGORITHM = "HS256"
MAX_CLIENT_ID = 64


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class Principal:
    client_id: str
    scopes: frozenset[str]


def issue_token(secret: str, client_id: str, scopes: list[str] | tuple[str, ...], *, issuer: str,
                audience: str, ttl_seconds: int, now: dt.datetime | None = None, key_id: str = KEY_ID) -> str:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope(s): {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    if not (0 < len(client_id) <= MAX_CLIENT_ID and client_id.isprintable()):
        raise ValueError(f"the client id must be 1 to {MAX_CLIENT_ID} printable characters")
    now = now or dt.datetime.now(dt.UTC)
    claims = {
        "sub": client_id,
        "scope": " ".join(scopes),
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + dt.timedelta(seconds=ttl_seconds),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM, headers={"kid": key_id})


def verify_token(token: str, keys: Mapping[str, str], *, issuer: str, audience: str) -> Principal:
    """The token's principal, or InvalidToken: unknown kid, bad signature, expired, another issuer
    or audience, a missing claim, or any algorithm but HS256 (so never `none`)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    kid = header.get("kid")
    secret = keys.get(kid) if isinstance(kid, str) else None
    if secret is None:
        raise InvalidToken("unknown key id")
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], audience=audience, issuer=issuer,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    subject, scope = claims["sub"], claims.get("scope", "")
    # The client id is written into every history row it causes (a 64-character column) and into logs.
    if not (isinstance(subject, str) and 0 < len(subject) <= MAX_CLIENT_ID and subject.isprintable()) \
            or not isinstance(scope, str):
        raise InvalidToken("malformed sub or scope claim")
    return Principal(client_id=subject, scopes=frozenset(scope.split()))
