"""The portal's pact (PORTAL.md §1), verified unchanged by pact-python's verifier against the real
app served on 127.0.0.1, with provider states built through the service's own code."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from flask import Response
from pact import Verifier

from licence_service.app import create_app
from licence_service.bootstrap import Services
from tests.contract.provider_states import ProviderStates, UnknownProviderState
from tests.support.data import PACT_FILE, pact
from tests.support.wsgi import ServedApp

PROVIDER = "licence-service"
BROKEN_INTERACTION = "a request for an application awaiting its fee"


def verifier_for(served: ServedApp, states: ProviderStates) -> Verifier:
    return (
        Verifier(PROVIDER, host="127.0.0.1")
        .add_source(PACT_FILE)
        .add_transport(url=served.url)
        .state_handler(states, teardown=True)
        .set_request_timeout(30_000)
    )


def test_the_portal_pact_verifies_against_the_served_app(served_app, contract_services):
    states = ProviderStates(contract_services)
    verifier = verifier_for(served_app, states)
    try:
        verifier.verify()
    except RuntimeError:
        pytest.fail("the portal's pact does not verify:\n" + verifier.output(strip_ansi=True))
    results = verifier.results
    described = {i["description"] for i in pact()["interactions"]}
    assert results["result"] is True
    assert {r["description"] for r in results["interactionResults"]} == described
    assert all(r["result"] == "OK" for r in results["interactionResults"])
    # Every named state was built by the handler, not skipped.
    named = {s["name"] for i in pact()["interactions"] for s in i["providerStates"]}
    assert named <= {state for action, state in states.calls if action == "setup"}


@pytest.fixture
def broken_app(contract_services: Services) -> Iterator[ServedApp]:
    """The real app with one deliberate contract break: an application awaiting its fee is
    reported with the wrong portal status."""
    app = create_app(services=contract_services)

    @app.after_request
    def _break(response: Response) -> Response:
        doc = response.get_json(silent=True)
        if isinstance(doc, dict) and doc.get("status") == "awaiting_payment" and "history" in doc:
            response.set_data(json.dumps({**doc, "portal_status": 5}))
        return response

    served = ServedApp(app).start()
    yield served
    served.stop()


def test_the_contract_test_fails_when_an_interaction_fails(broken_app, contract_services):
    verifier = verifier_for(broken_app, ProviderStates(contract_services))
    with pytest.raises(RuntimeError):
        verifier.verify()
    results = verifier.results
    assert results["result"] is False
    failed = [r for r in results["interactionResults"] if r["result"] != "OK"]
    assert [r["description"] for r in failed] == [BROKEN_INTERACTION]
    mismatches = failed[0]["mismatch"]["mismatches"]
    assert any(m["type"] == "BodyMismatch" and "portal_status" in m.get("path", "") for m in mismatches), mismatches


def test_a_state_the_handler_does_not_know_is_an_error_not_a_silent_pass(contract_services):
    with pytest.raises(UnknownProviderState):
        ProviderStates(contract_services)("the moon is made of cheese", "setup", {})
