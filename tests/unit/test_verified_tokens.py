"""VerifiedTokens (licence_service.tokens): a token accepted once is accepted again without its
signature being checked, but never past its `exp`, and nothing is remembered of a refused token."""

from __future__ import annotations

import datetime as dt
import types

import pytest

from licence_service import tokens
from licence_service.tokens import InvalidToken, VerifiedTokens, issue_token

KEY = "k" * 32
ISSUER = AUDIENCE = "licence-service"


def token(ttl_seconds: int = 600, now: dt.datetime | None = None, secret: str = KEY) -> str:
    return issue_token(secret, "portal", ["applications:read"], issuer=ISSUER, audience=AUDIENCE,
                       ttl_seconds=ttl_seconds, now=now)


def test_an_accepted_token_is_checked_once(monkeypatch):
    cache = VerifiedTokens({"k1": KEY}, issuer=ISSUER, audience=AUDIENCE)
    calls = []
    real = tokens._verify
    monkeypatch.setattr(tokens, "_verify", lambda *a, **k: calls.append(1) or real(*a, **k))
    good = token()
    assert cache.verify(good).client_id == "portal"
    assert cache.verify(good).scopes == frozenset({"applications:read"})
    assert len(calls) == 1


def test_a_remembered_token_is_checked_again_from_its_expiry(monkeypatch):
    cache = VerifiedTokens({"k1": KEY}, issuer=ISSUER, audience=AUDIENCE)
    issued = dt.datetime.now(dt.UTC)
    short = token(ttl_seconds=60, now=issued)
    cache.verify(short)
    # At its `exp` the cache no longer answers: the token goes through the full check again (here
    # made to refuse it, as jwt.decode does from that instant).
    monkeypatch.setattr(tokens, "time", types.SimpleNamespace(time=lambda: issued.timestamp() + 60))
    checked = []

    def expired(*args, **kwargs):
        checked.append(1)
        raise InvalidToken("Signature has expired")

    monkeypatch.setattr(tokens, "_verify", expired)
    with pytest.raises(InvalidToken):
        cache.verify(short)
    assert checked == [1]


def test_a_refused_token_is_not_remembered():
    cache = VerifiedTokens({"k1": KEY}, issuer=ISSUER, audience=AUDIENCE)
    forged = token(secret="f" * 32)
    for _ in range(2):
        with pytest.raises(InvalidToken):
            cache.verify(forged)
    assert cache.serves({"k1": KEY}, ISSUER, AUDIENCE)
    assert not cache.serves({"k2": KEY}, ISSUER, AUDIENCE)


def test_at_most_size_tokens_are_kept():
    cache = VerifiedTokens({"k1": KEY}, issuer=ISSUER, audience=AUDIENCE, size=3)
    for ttl in range(600, 610):
        cache.verify(token(ttl_seconds=ttl))
    assert len(cache._accepted) == 3
