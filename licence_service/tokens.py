"""Bearer tokens: JWTs signed (HS256) with one of the configured keys, carrying a client id and scopes.

Every token names its key in the `kid` header, and verification accepts any configured key: an
operator rotates by adding a new key, making it the signing key, and removing the old one once the
tokens it signed have expired (at most TOKEN_TTL_SECONDS later).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
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
    return _verify(token, keys, issuer=issuer, audience=audience)[0]


def _verify(token: str, keys: Mapping[str, str], *, issuer: str, audience: str) -> tuple[Principal, float]:
    """verify_token, also returning the token's expiry (a POSIX time)."""
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
    return Principal(client_id=subject, scopes=frozenset(scope.split())), float(claims["exp"])


class VerifiedTokens:
    """verify_token for one set of keys, issuer and audience, remembering the tokens it has accepted.

    A client sends the same token with every request until it expires; its signature and claims are
    checked the first time, and later the token is found again by its SHA-256 and accepted until its
    `exp` (the same instant jwt.decode would start refusing it). Only accepted tokens are kept, so
    nothing an invalid token does is remembered; tokens are looked up by digest, never compared as
    text. At most `size` tokens are kept; the oldest go first. Keys, issuer and audience are fixed
    for its life (`serves` tells whether it is the one for a configuration)."""

    def __init__(self, keys: Mapping[str, str], *, issuer: str, audience: str, size: int = 1024) -> None:
        self.keys, self.issuer, self.audience = dict(keys), issuer, audience
        self._size = size
        self._accepted: dict[bytes, tuple[Principal, float]] = {}

    def serves(self, keys: Mapping[str, str], issuer: str, audience: str) -> bool:
        return self.keys == keys and self.issuer == issuer and self.audience == audience

    def verify(self, token: str) -> Principal:
        digest = hashlib.sha256(token.encode()).digest()
        found = self._accepted.get(digest)
        if found is not None:
            if time.time() < found[1]:
                return found[0]
            self._accepted.pop(digest, None)
        principal, expires = _verify(token, self.keys, issuer=self.issuer, audience=self.audience)
        if len(self._accepted) >= self._size:
            now = time.time()
            for key, (_, until) in list(self._accepted.items()):
                if until <= now:
                    self._accepted.pop(key, None)
            while len(self._accepted) >= self._size:
                self._accepted.pop(next(iter(self._accepted)), None)
        self._accepted[digest] = (principal, expires)
        return principal
