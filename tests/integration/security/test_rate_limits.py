"""Per-client rate limits (SECURITY.md: rate abuse): counted in the service's Redis, one budget per
client id (per remote address without a valid token), 429 problem+json with Retry-After over it."""

from __future__ import annotations

import redis

from licence_service.api.limits import KEY_PREFIX
from tests.conftest import token_for
from tests.integration.security.conftest import assert_problem, bearer

URL = "/api/v1/applications"
QUERY = {"portal_dossier_id": "G01.99-RATE"}


def test_over_the_limit_is_429_problem_with_retry_after(app_with):
    client = app_with(RATE_LIMIT="3/minute").test_client()
    headers = bearer(token_for("applications:read", client="busy-client"))
    assert [client.get(URL, query_string=QUERY, headers=headers).status_code for _ in range(3)] == [200] * 3
    refused = client.get(URL, query_string=QUERY, headers=headers)
    problem = assert_problem(refused, 429)
    assert "3 per 1 minute" in problem["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["Cache-Control"] == "no-store"


def test_each_client_has_its_own_budget(app_with):
    client = app_with(RATE_LIMIT="2/minute").test_client()
    greedy = bearer(token_for("applications:read", client="greedy"))
    other = bearer(token_for("applications:read", client="other"))
    for _ in range(2):
        client.get(URL, query_string=QUERY, headers=greedy)
    assert client.get(URL, query_string=QUERY, headers=greedy).status_code == 429
    assert client.get(URL, query_string=QUERY, headers=other).status_code == 200


def test_requests_without_a_valid_token_share_their_addresss_budget(app_with):
    client = app_with(RATE_LIMIT="2/minute").test_client()
    forged = [bearer(f"forged-token-{i}") for i in range(3)]
    assert [client.get(URL, query_string=QUERY, headers=h).status_code for h in forged] == [401, 401, 429]
    # A valid client is not held up by the flood.
    assert client.get(URL, query_string=QUERY, headers=bearer(token_for("applications:read"))).status_code == 200


def test_the_counters_live_in_redis(app_with, redis_url):
    client = app_with(RATE_LIMIT="5/minute").test_client()
    client.get(URL, query_string=QUERY, headers=bearer(token_for("applications:read", client="counted")))
    keys = [k.decode() for k in redis.Redis.from_url(redis_url).keys(f"*{KEY_PREFIX}*")]
    assert any("client:counted" in k for k in keys), keys


def test_rate_limit_off_never_refuses(app_with):
    client = app_with(RATE_LIMIT="off").test_client()
    headers = bearer(token_for("applications:read"))
    assert {client.get(URL, query_string=QUERY, headers=headers).status_code for _ in range(10)} == {200}


def test_probes_and_the_openapi_document_are_not_limited(app_with):
    client = app_with(RATE_LIMIT="1/minute").test_client()
    assert {client.get("/healthz").status_code for _ in range(3)} == {200}
    assert {client.get("/openapi.json").status_code for _ in range(3)} == {200}
