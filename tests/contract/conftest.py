"""Fixtures of the contract tests: the real app, configured to accept the pact's fixed token, served
on 127.0.0.1 for pact-python's (Rust) verifier."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from licence_service.app import create_app
from licence_service.bootstrap import Services, build_services
from tests.conftest import make_settings
from tests.support.wsgi import ServedApp

# Before pact is imported anywhere: the verifier must not report usage to the internet.
os.environ["PACT_DO_NOT_TRACK"] = "true"

CONTRACT_TOKEN = "portal-contract-token"


@pytest.fixture
def contract_services(tmp_path: Path, database_url: str, redis_url: str) -> Iterator[Services]:
    # PORTAL.md §1: only this test configuration accepts the pact's token.
    settings = make_settings(tmp_path, database_url, redis_url, contract_token=CONTRACT_TOKEN)
    services = build_services(settings)
    yield services
    services.engine.dispose()


@pytest.fixture
def served_app(contract_services: Services) -> Iterator[ServedApp]:
    served = ServedApp(create_app(services=contract_services)).start()
    yield served
    served.stop()
