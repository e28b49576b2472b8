"""Schemathesis against the service's own /openapi.json, in process (schemathesis.openapi.from_wsgi: the
WSGI app, no server): every operation, data that fits the document and data that does not, a fixed
example budget, a token with every scope. No request may get a 5xx, and every response must match
what the document declares for it: status code, content type (problem+json for errors), headers and
schema. The register is seeded and one application awaits payment, so some calls get past the 404s.

Each operation runs as its own Hypothesis test (schemathesis's lazy pytest loader does not run on
this pytest), and a guard test fails when the document gains an operation this list lacks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from licence_service.app import create_app
from licence_service.bootstrap import build_services
from licence_service.messaging.envelope import Event
from licence_service.services import stages
from licence_service.tokens import SCOPES
from tests.conftest import COLLECTION_TOKEN_TTL, make_settings, token_for
from tests.fuzz.strategies import application_bodies
from tests.support.data import application_body, seed_an
from workers.context import stage_context

# Examples per operation: 8 operations x 200 (about 30 s) keeps the run well under two minutes on 2 cores.
# derandomize: the same examples on every run, so CI is repeatable.
EXAMPLES = 200
HEADERS = {"Authorization": f"Bearer {token_for(*SCOPES, client='fuzzer', ttl_seconds=COLLECTION_TOKEN_TTL)}"}
OPERATIONS = [
    ("POST", "/api/v1/applications"),
    ("GET", "/api/v1/applications"),
    ("GET", "/api/v1/applications/{application_id}"),
    ("POST", "/api/v1/applications/{application_id}/payments"),
    ("POST", "/api/v1/applications/{application_id}/withdrawal"),
    ("POST", "/api/v1/applications/{application_id}/decision"),
    ("POST", "/api/v1/applications/{application_id}/supplements"),
    ("GET", "/api/v1/licences/{number}"),
]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


@dataclass
class Target:
    schema: Any
    application_id: str  # an application awaiting payment, so calls on it get past the 404
    licence_number: str  # a licence in the register


@pytest.fixture
def target(tmp_path: Path, database_url: str, redis_url: str) -> Iterator[Target]:
    services = build_services(make_settings(tmp_path, database_url, redis_url))
    seed_an(services.uow())
    app: Flask = create_app(services=services)
    created = app.test_client().post("/api/v1/applications", json=application_body(portal_dossier_id="G01.99-SEED"),
                                     headers=HEADERS)
    assert created.status_code == 202, created.get_data(as_text=True)
    application_id = created.get_json()["id"]
    ctx = stage_context(services)
    for stage in ("checks", "fee"):
        assert getattr(stages, stage)(ctx, Event(type=stage, application_id=application_id))
    yield Target(schemathesis.openapi.from_wsgi("/openapi.json", app), application_id, "010123456789")
    services.engine.dispose()


def test_every_documented_operation_is_fuzzed(target):
    documented = {(op.method.upper(), op.path) for op in (r.ok() for r in target.schema.get_all_operations())}
    assert documented == set(OPERATIONS)


def cases_for(target: Target, method: str, path: str) -> st.SearchStrategy[Any]:
    """Generated cases (fitting the document, and not), plus ones aimed past the first checks: the
    seeded application's id or licence number in the path, or a mutated sample application."""
    operation = target.schema[path][method]
    fixed: list[dict[str, Any]] = [{}]
    if "{application_id}" in path:
        fixed.append({"application_id": target.application_id})
    if "{number}" in path:
        fixed.append({"number": target.licence_number})
    strategies = [operation.as_strategy(mode, path_parameters=parameters or None)
                  for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) for parameters in fixed]
    if (method, path) == ("POST", "/api/v1/applications"):
        strategies.append(application_bodies().map(lambda body: operation.Case(body=body,
                                                                                 media_type="application/json")))
    return st.one_of(strategies)


@pytest.mark.parametrize("method, path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_answers_as_documented_and_never_5xx(target, method, path):
    @given(case=cases_for(target, method, path))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
    def fuzz(case: Any) -> None:
        case.call_and_validate(headers=HEADERS, checks=CHECKS)

    fuzz()
