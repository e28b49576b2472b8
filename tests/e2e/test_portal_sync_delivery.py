"""DongBoHoSoMC delivery guarantees (PORTAL.md §2) with the relay and portal_sync workers as real
processes, real Redis, a real database and a real local HTTP server standing in for the portal:
per-application order with two sync workers, a failing application never holding up another, no
status change lost when the sync worker is SIGKILLed mid-call, and the retry horizon."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from licence_service.app import create_app
from licence_service.bootstrap import Services, build_services
from tests.conftest import TOKEN_SECRET, make_settings
from tests.support.portal_sync import (
    HAPPY_PATH,
    ScriptedPortal,
    acked,
    advance,
    assert_in_order_without_overlap,
    codes,
    items,
    portal_env,
    submit,
)
from tests.support.processes import WorkerProcesses
from tests.support.servers import PortalStandIn, wait_for

OK = (200, {"error_code": "00"})


class Deployment:
    """The database and the portal stand-in, plus any number of worker-process groups."""

    def __init__(self, tmp_path: Path, database_url: str, redis_url: str, portal: PortalStandIn) -> None:
        self.tmp_path = tmp_path
        self.portal = portal
        self.script = ScriptedPortal()
        portal.respond = self.script
        self.services: Services = build_services(make_settings(tmp_path, database_url, redis_url))
        self.base_env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "VAR_DIR": str(tmp_path / "var"),
                         "TOKEN_SECRET": TOKEN_SECRET, "RELAY_POLL_SECONDS": "0.05"}
        self.groups: list[WorkerProcesses] = []

    def start(self, *names: str, **env: str) -> WorkerProcesses:
        group = WorkerProcesses({**self.base_env, **portal_env(self.portal.url, **env)},
                                self.tmp_path / f"logs-{len(self.groups)}").start(names)
        self.groups.append(group)
        return group

    def logs(self) -> str:
        return "\n".join(g.logs() for g in self.groups)

    def stop(self) -> None:
        for group in self.groups:
            group.stop()
        self.services.engine.dispose()


@pytest.fixture
def deployment(tmp_path: Path, any_database_url: str, redis_url: str,
               portal_stand_in: PortalStandIn) -> Iterator[Deployment]:
    d = Deployment(tmp_path, any_database_url, redis_url, portal_stand_in)
    try:
        yield d
    finally:
        d.stop()


@contextmanager
def explain(deployment: Deployment) -> Iterator[None]:
    """Show the workers' logs when a wait fails."""
    try:
        yield
    except AssertionError:
        print(deployment.logs())
        raise


FAST_RETRIES = {"PORTAL_SYNC_BACKOFF_BASE_SECONDS": "0.1", "PORTAL_SYNC_BACKOFF_CAP_SECONDS": "0.4",
                "PORTAL_SYNC_POLL_SECONDS": "0.1"}


def test_two_sync_workers_deliver_each_applications_statuses_in_order_one_call_at_a_time(deployment):
    """The portal is slow and refuses the first call of every status: with two workers racing for
    the same applications, a later status is still never sent before (or while) an earlier one is."""
    deployment.script.delay = lambda d, s, n: 0.1
    deployment.script.decide = lambda d, s, n: (503 if n == 1 else 200, {"error_code": "00"})
    deployment.start("relay", "portal_sync", **FAST_RETRIES)
    deployment.start("portal_sync", **FAST_RETRIES)
    services = deployment.services
    ids = {f"G01.99-20261127-00002{i:02d}": "" for i in range(3)}
    for dossier in ids:
        ids[dossier] = submit(services, dossier)
    for status in HAPPY_PATH[1:]:
        for application_id in ids.values():
            advance(services, application_id, status)
    with explain(deployment):
        wait_for(lambda: all(acked(services, a) == 9 for a in ids.values()), timeout=120,
                 message="every application acknowledged at status 9")
    for dossier, application_id in ids.items():
        assert_in_order_without_overlap(deployment.script, dossier, codes(*HAPPY_PATH))
        assert [a.is_updating for a in deployment.script.of(dossier) if a.code == 200] == ["False"] + ["True"] * 4
        assert {i.state for i in items(services, application_id)} == {"sent"}


def test_an_application_whose_portal_calls_hang_or_fail_does_not_hold_up_another(deployment):
    """One worker. The portal holds the stuck application's call open (well inside the HTTP timeout)
    and then refuses it: meanwhile another application's statuses all go through."""
    release = threading.Event()
    stuck, healthy = "G01.99-20261127-STUCK", "G01.99-20261127-HEALTHY"

    def decide(dossier: str, status: str, n: int) -> tuple[int, dict[str, Any]]:
        if dossier == stuck and n == 1:
            release.wait(60)  # the portal hanging on this one call
            return 503, {}
        return OK

    deployment.script.decide = decide
    deployment.start("relay", "portal_sync", PORTAL_SYNC_TIMEOUT_SECONDS="90", PORTAL_SYNC_LEASE_SECONDS="200",
                     **FAST_RETRIES)
    services = deployment.services
    stuck_id = submit(services, stuck)
    with explain(deployment):
        wait_for(lambda: deployment.portal.snapshot(), timeout=60, message="the stuck application's first call")
        healthy_id = submit(services, healthy)
        advance(services, healthy_id, *HAPPY_PATH[1:])
        advance(services, stuck_id, "accepted")
        try:
            wait_for(lambda: acked(services, healthy_id) == 9, timeout=45,
                     message="the healthy application delivered while the other's call hangs")
            assert not deployment.script.of(stuck), "the stuck call was answered too early"
        finally:
            release.set()
        wait_for(lambda: acked(services, stuck_id) == 2, timeout=60, message="the stuck application catching up")
    assert deployment.script.delivered(healthy) == codes(*HAPPY_PATH)
    assert_in_order_without_overlap(deployment.script, stuck, codes("received", "accepted"))


def test_no_status_change_is_lost_when_the_sync_worker_is_killed_mid_call(deployment):
    """SIGKILL while the portal is answering the first call; more status changes happen while no
    sync worker runs; the restarted worker sends the interrupted call again (its lease expired) and
    then everything else, in order."""
    answering = threading.Event()
    killed = threading.Event()

    def decide(dossier: str, status: str, n: int) -> tuple[int, dict[str, Any]]:
        if (status, n) == ("1", 1):
            answering.set()
            killed.wait(60)  # answer only once the caller is dead
        return OK

    deployment.script.decide = decide
    lease = {"PORTAL_SYNC_TIMEOUT_SECONDS": "4", "PORTAL_SYNC_LEASE_SECONDS": "9", **FAST_RETRIES}
    deployment.start("relay", **lease)
    sync = deployment.start("portal_sync", **lease)
    services = deployment.services
    dossier = "G01.99-20261127-0000300"
    application_id = submit(services, dossier)
    with explain(deployment):
        wait_for(answering.is_set, timeout=60, message="the first DongBoHoSoMC call in flight")
        sync.kill("portal_sync")
        killed.set()
        advance(services, application_id, *HAPPY_PATH[1:])
        assert acked(services, application_id) is None
        sync.start(["portal_sync"])
        wait_for(lambda: acked(services, application_id) == 9, timeout=90,
                 message="every status delivered after the restart")
    calls = deployment.script.of(dossier)
    # The interrupted call first (its answer went to a dead process), then all five, in order.
    assert [a.status for a in calls] == codes("received", *HAPPY_PATH)
    assert [a.is_updating for a in calls[:3]] == ["False", "False", "True"]
    assert {i.state for i in items(services, application_id)} == {"sent"}


def test_after_the_retry_horizon_the_call_is_failed_and_listed_for_an_operator(deployment, portal_headers):
    deployment.script.decide = lambda d, s, n: (503, {}) if s == "1" else OK
    # A horizon of 1.8 s instead of 24 hours.
    deployment.start("relay", "portal_sync", PORTAL_SYNC_RETRY_HOURS="0.0005", **FAST_RETRIES)
    services = deployment.services
    dossier = "G01.99-20261127-0000400"
    application_id = submit(services, dossier)
    with explain(deployment):
        wait_for(lambda: items(services, application_id)[0].state == "failed", timeout=60,
                 message="the call given up after the horizon")
        item = items(services, application_id)[0]
        assert item.attempts >= 3 and (item.sent_at is None)
        assert item.last_error.startswith(f"gave up after {item.attempts} attempts")
        # A later status is not held back by the one given up.
        advance(services, application_id, "accepted")
        wait_for(lambda: acked(services, application_id) == 2, timeout=60, message="the next status delivered")
    app = create_app(services=services)
    doc = app.test_client().get(f"/api/v1/applications/{application_id}", headers=portal_headers).get_json()
    assert doc["portal_sync"]["state"] == "failed"
    assert doc["portal_sync"]["acknowledged_portal_status"] == 2
    out = app.test_cli_runner().invoke(args=["portal-sync", "failing"])
    assert dossier in out.output and "failed" in out.output and "gave up" in out.output
