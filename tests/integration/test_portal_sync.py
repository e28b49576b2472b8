"""DongBoHoSoMC delivery (PORTAL.md §2) through the service layer, against a real local HTTP server
standing in for the portal, with a controllable clock where hours have to pass."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from licence_service.app import create_app
from licence_service.bootstrap import Services, build_services
from licence_service.logs import ContextFilter
from licence_service.registers.portal import PortalClient, SyncResult
from licence_service.services import applications, portal_sync
from licence_service.store import models
from tests.conftest import make_settings
from tests.support.portal_sync import (
    HAPPY_PATH,
    PORTAL_SECRET,
    PORTAL_TOKEN,
    ScriptedPortal,
    acked,
    advance,
    assert_in_order_without_overlap,
    codes,
    entries,
    items,
    submit,
)
from tests.support.servers import PortalStandIn, free_port, wait_for
from tests.support.statements import Statements

DOSSIER = "G01.99-20261127-0000123"
OK = (200, {"error_code": "00"})


class Clock:
    """The service's `now`, moved by the test. It starts a little ahead of the real clock so items
    written (at real time) just after it was made are already due."""

    def __init__(self) -> None:
        self.t = models.utcnow() + dt.timedelta(seconds=5)

    def __call__(self) -> dt.datetime:
        return self.t

    def to(self, moment: dt.datetime) -> None:
        self.t = max(self.t, moment)


def portal_settings(tmp_path: Path, database_url: str, url: str, **overrides: Any) -> Any:
    return make_settings(tmp_path, database_url, None, portal_sync_url=url, portal_sync_token=PORTAL_TOKEN,
                         portal_sync_secret=PORTAL_SECRET, **overrides)


@pytest.fixture
def portal(portal_stand_in: PortalStandIn) -> ScriptedPortal:
    script = ScriptedPortal()
    portal_stand_in.respond = script
    return script


@pytest.fixture
def sync_services(tmp_path: Path, database_url: str, portal_stand_in: PortalStandIn) -> Iterator[Services]:
    services = build_services(portal_settings(tmp_path, database_url, portal_stand_in.url,
                                              portal_sync_backoff_base_seconds=10.0,
                                              portal_sync_backoff_cap_seconds=60.0))
    yield services
    services.engine.dispose()


def sync(services: Services, application_id: str, clock: Clock | None = None, client: PortalClient | None = None
         ) -> int:
    return portal_sync.sync_application(application_id, uow_factory=services.uow,
                                        client=client or PortalClient(services.settings),
                                        settings=services.settings, now=clock or models.utcnow)


def sync_many(services: Services, application_ids: list[str], clock: Clock | None = None,
              client: PortalClient | None = None, *, claims_read_first: bool = False) -> int:
    """`claims_read_first`: as the worker does, find what to claim in a read-only transaction."""
    return portal_sync.sync_applications(application_ids, uow_factory=services.uow,
                                         client=client or PortalClient(services.settings),
                                         settings=services.settings, now=clock or models.utcnow,
                                         read_uow_factory=services.read_uow if claims_read_first else None)


def head(services: Services, application_id: str) -> models.PortalSyncItem:
    return next(i for i in items(services, application_id) if i.state == "pending")


def test_each_status_change_is_one_signed_call_in_order_and_only_the_first_is_not_an_update(
        sync_services, portal, portal_stand_in):
    application_id = submit(sync_services, DOSSIER)
    advance(sync_services, application_id, *HAPPY_PATH[1:3])
    assert sync(sync_services, application_id) == 3
    calls = portal_stand_in.snapshot()
    assert entries(calls) == [(DOSSIER, s) for s in codes(*HAPPY_PATH[:3])]
    assert [c.json["isUpdating"] for c in calls] == ["False", "True", "True"]
    for call in calls:
        assert call.headers["Authorization"] == f"Bearer {PORTAL_TOKEN}"
        assert call.headers["X-Signature"] == "sha256=" + hmac.new(PORTAL_SECRET.encode(), call.body,
                                                                   hashlib.sha256).hexdigest()
    assert acked(sync_services, application_id) == 6
    assert [i.state for i in items(sync_services, application_id)] == ["sent"] * 3


@pytest.mark.parametrize("answers", [[503] * 6, [429] * 6, [500, 502, 503, 504, 429, 500]])
def test_5xx_and_429_are_retried_with_capped_exponential_backoff(sync_services, portal, portal_stand_in,
                                                                   answers):
    portal.decide = lambda d, s, n: (answers[n - 1], {"error": "busy"}) if n <= len(answers) else OK
    clock = Clock()
    application_id = submit(sync_services, DOSSIER)
    waits = []
    for attempt in range(1, len(answers) + 1):
        assert sync(sync_services, application_id, clock) == 0
        item = head(sync_services, application_id)
        assert item.attempts == attempt and item.last_error.startswith(f"HTTP {answers[attempt - 1]}")
        waits.append((item.next_attempt_at - clock.t).total_seconds())
        # Not due yet: nothing is sent.
        clock.to(item.next_attempt_at - dt.timedelta(seconds=1))
        assert sync(sync_services, application_id, clock) == 0
        assert len(portal_stand_in.snapshot()) == attempt
        clock.to(item.next_attempt_at)
    assert waits == [10, 20, 40, 60, 60, 60]  # base 10 s, doubling, capped at 60 s
    assert sync(sync_services, application_id, clock) == 1
    assert acked(sync_services, application_id) == 1


def test_a_network_error_is_retried_until_the_portal_answers(sync_services, portal, portal_stand_in, tmp_path,
                                                             database_url):
    clock = Clock()
    application_id = submit(sync_services, DOSSIER)
    # Nothing listens on this port: connection refused.
    down = PortalClient(sync_services.settings.with_overrides(
        portal_sync_url=f"http://127.0.0.1:{free_port()}/DongBoHoSoMC"))
    assert sync(sync_services, application_id, clock, client=down) == 0
    item = head(sync_services, application_id)
    assert item.attempts == 1 and item.last_error.startswith("network error")
    assert (item.next_attempt_at - clock.t).total_seconds() == 10
    clock.to(item.next_attempt_at)
    assert sync(sync_services, application_id, clock) == 1
    assert [c.json["isUpdating"] for c in portal_stand_in.snapshot()] == ["False"]


def test_retries_go_on_for_24_hours_then_the_call_is_failed_for_an_operator(tmp_path, database_url, portal,
                                                                              portal_stand_in):
    services = build_services(portal_settings(tmp_path, database_url, portal_stand_in.url))  # the defaults
    assert services.settings.portal_sync_retry_hours == 24
    portal.decide = lambda d, s, n: (503, {}) if s == "1" else OK
    clock = Clock()
    application_id = submit(services, DOSSIER)
    advance(services, application_id, "accepted")
    first = clock.t
    while True:
        sync(services, application_id, clock)
        item = items(services, application_id)[0]
        if item.state != "pending":
            break
        assert clock.t - first < dt.timedelta(hours=24), "still retrying after the horizon"
        clock.to(item.next_attempt_at)
    assert item.state == "failed"
    assert clock.t - first >= dt.timedelta(hours=24), "gave up before 24 hours"
    assert item.last_error.startswith(f"gave up after {item.attempts} attempts over 24 h: HTTP 503")
    # Capped backoff: the attempts keep coming every 15 minutes at most for the whole day.
    assert item.attempts >= 24 * 4
    # The later status is no longer held back by the one given up.
    assert portal.delivered(DOSSIER) == ["2"]
    assert acked(services, application_id) == 2
    services.engine.dispose()


@pytest.mark.parametrize("code, body", [(400, {"error": "bad"}), (401, {}), (403, {}), (404, {}), (409, {}),
                                        (422, {"error": "MaTTHC"}), (200, {"error_code": "99"})])
def test_a_refusal_other_than_5xx_or_429_is_not_retried_but_recorded_for_an_operator(
        sync_services, portal, portal_stand_in, code, body):
    portal.decide = lambda d, s, n: (code, body) if s == "2" else OK
    clock = Clock()
    application_id = submit(sync_services, DOSSIER)
    advance(sync_services, application_id, "accepted", "awaiting_payment")
    assert sync(sync_services, application_id, clock) == 2
    failed = items(sync_services, application_id)[1]
    assert (failed.state, failed.attempts) == ("failed", 1)
    assert str(code) in failed.last_error or "error_code '99'" in failed.last_error
    clock.to(clock.t + dt.timedelta(days=2))
    sync(sync_services, application_id, clock)
    assert entries(portal_stand_in.snapshot()) == [(DOSSIER, s) for s in ("1", "2", "6")]
    assert acked(sync_services, application_id) == 6
    # ... and an operator sees it.
    state = portal_sync.sync_state(sync_services.uow, applications.get(sync_services.uow, application_id))
    assert state["state"] == "failed" and state["failing"][0]["portal_status"] == 2


def test_a_later_status_waits_while_an_earlier_one_is_being_retried(sync_services, portal, portal_stand_in):
    portal.decide = lambda d, s, n: (503, {}) if (s, n) == ("1", 1) else OK
    clock = Clock()
    application_id = submit(sync_services, DOSSIER)
    assert sync(sync_services, application_id, clock) == 0
    advance(sync_services, application_id, "accepted", "awaiting_payment")
    assert sync(sync_services, application_id, clock) == 0
    assert len(portal_stand_in.snapshot()) == 1  # 2 and 6 are not sent ahead of 1
    clock.to(head(sync_services, application_id).next_attempt_at)
    assert sync(sync_services, application_id, clock) == 3
    assert portal.delivered(DOSSIER) == ["1", "2", "6"]


@pytest.mark.parametrize("batched", [False, True], ids=["one-application-at-a-time", "all-in-one-batch"])
def test_concurrent_senders_never_overlap_or_reorder_one_applications_calls(
        tmp_path, any_database_url, portal, portal_stand_in, batched):
    """Four threads keep syncing the same applications (each on its own, or all of them as one batch)
    while the portal is slow and refuses each status's first call: every status is still accepted
    once, in order, one call at a time. Two of them find what to claim before taking the write lock
    (as the worker does), two under it."""
    services = build_services(portal_settings(tmp_path, any_database_url, portal_stand_in.url,
                                              portal_sync_backoff_base_seconds=0.05,
                                              portal_sync_backoff_cap_seconds=0.1))
    portal.delay = lambda d, s, n: 0.05
    portal.decide = lambda d, s, n: (503, {}) if n == 1 else OK
    ids = {f"G01.99-20261127-00001{i:02d}": None for i in range(3)}
    for dossier in ids:
        ids[dossier] = submit(services, dossier)
    stop = threading.Event()
    errors: list[BaseException] = []

    def sender(read_first: bool) -> None:
        client = PortalClient(services.settings)
        while not stop.is_set():
            for batch in [list(ids.values())] if batched else [[a] for a in ids.values()]:
                try:
                    sync_many(services, batch, client=client, claims_read_first=read_first)
                except BaseException as exc:  # surfaced below
                    errors.append(exc)
                    return

    threads = [threading.Thread(target=sender, args=(n % 2 == 0,)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        for status in HAPPY_PATH[1:]:
            for application_id in ids.values():
                advance(services, application_id, status)
        wait_for(lambda: all(acked(services, a) == 9 for a in ids.values()), timeout=120,
                 message="every application acknowledged at status 9")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        services.engine.dispose()
    assert not errors, errors
    for dossier in ids:
        assert_in_order_without_overlap(portal, dossier, codes(*HAPPY_PATH))


def test_what_to_claim_is_found_without_the_write_lock_which_is_taken_for_the_leases_alone(
        sync_services, portal, portal_stand_in):
    # On SQLite the writer lock serialises every process's writes: the due heads and their entries
    # (the applications) are read before it, and only the leases' UPDATEs are made under it.
    ids = [submit(sync_services, f"G01.99-20261127-00002{i:02d}") for i in range(3)]
    with Statements(sync_services.engine) as recorded:
        assert sync_many(sync_services, ids, claims_read_first=True) == 3
    statements = recorded.all
    first_lease = next(i for i, (text, _) in enumerate(statements) if text.startswith("UPDATE portal_sync_items"))
    before = statements[:first_lease]
    assert any("FROM portal_sync_items" in text for text, _ in before)
    assert any("FROM applications" in text for text, _ in before)
    assert not any(held for _, held in before)
    # Only what an entry shows is read of the applications, not their other JSON columns.
    application_reads = [text for text, _ in before if "FROM applications" in text]
    assert not any(column in text for text in application_reads for column in ("applications.details",
                                                                                "applications.converted"))
    # The three leases, taken with one UPDATE under the lock.
    assert statements[first_lease][1]
    assert len([t for t, _ in statements if t.startswith("UPDATE portal_sync_items SET first_attempt_at")]) == 1
    assert [acked(sync_services, a) for a in ids] == [1, 1, 1]


class SendsThenDies(PortalClient):
    """A sender that makes the call and then dies before it can record the answer (as a worker killed
    mid-call does): the one fault no real server can cause in-process."""

    def send(self, payload: dict[str, Any]) -> SyncResult:
        super().send(payload)
        raise SystemExit("killed")


def test_a_call_whose_sender_died_is_sent_again_once_its_lease_expires(sync_services, portal, portal_stand_in):
    clock = Clock()
    application_id = submit(sync_services, DOSSIER)
    with pytest.raises(SystemExit):
        sync(sync_services, application_id, clock, client=SendsThenDies(sync_services.settings))
    advance(sync_services, application_id, "accepted")
    leased = head(sync_services, application_id)
    assert leased.portal_status == 1 and leased.claimed_until is not None
    # While the lease runs, nobody sends it (or the later status) again.
    clock.to(leased.claimed_until - dt.timedelta(seconds=1))
    assert sync(sync_services, application_id, clock) == 0
    assert len(portal_stand_in.snapshot()) == 1
    clock.to(leased.claimed_until)
    assert sync(sync_services, application_id, clock) == 2
    assert entries(portal_stand_in.snapshot()) == [(DOSSIER, s) for s in ("1", "1", "2")]
    assert acked(sync_services, application_id) == 2


def test_due_applications_are_heads_only_so_a_failing_one_never_crowds_out_others(sync_services, portal):
    portal.decide = lambda d, s, n: (503, {}) if d == "G01.99-FAILING" else OK
    clock = Clock()
    failing = submit(sync_services, "G01.99-FAILING")
    sync(sync_services, failing, clock)
    advance(sync_services, failing, "accepted", "awaiting_payment")  # stuck behind the failing head
    healthy = submit(sync_services, "G01.99-HEALTHY")
    # Only the healthy application is due: the failing one's head is backing off, and the calls
    # queued behind it do not count, even with room for a single application.
    assert portal_sync.due_applications(sync_services.uow, now=clock.t, limit=1) == [healthy]
    assert sync(sync_services, healthy, clock) == 1


def test_the_operator_cli_lists_failing_syncs(sync_services, portal):
    portal.decide = lambda d, s, n: {"G01.99-REFUSED": (400, {"error": "bad MaTTHC"}),
                                     "G01.99-RETRYING": (503, {})}.get(d, OK)
    for dossier in ("G01.99-REFUSED", "G01.99-RETRYING", "G01.99-FINE"):
        sync(sync_services, submit(sync_services, dossier))
    app = create_app(services=sync_services)
    runner = app.test_cli_runner()
    out = runner.invoke(args=["portal-sync", "failing"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert len(lines) == 3  # header + two
    assert "G01.99-REFUSED" in lines[1] and "failed" in lines[1] and "HTTP 400" in lines[1]
    assert "G01.99-RETRYING" in lines[2] and "retrying" in lines[2] and "HTTP 503" in lines[2]
    assert "G01.99-FINE" not in out.output
    as_json = runner.invoke(args=["portal-sync", "failing", "--json"])
    rows = [json.loads(line) for line in as_json.output.splitlines()]
    assert [(r["portal_dossier_id"], r["state"], r["attempts"]) for r in rows] == [
        ("G01.99-REFUSED", "failed", 1), ("G01.99-RETRYING", "retrying", 1)]


def test_the_cli_says_so_when_nothing_is_failing(sync_services):
    out = create_app(services=sync_services).test_cli_runner().invoke(args=["portal-sync", "failing"])
    assert out.exit_code == 0 and out.output.strip() == "no failing portal sync"


def test_get_application_shows_the_acknowledged_status_and_the_failing_call(sync_services, portal,
                                                                            portal_headers):
    portal.decide = lambda d, s, n: (503, {}) if s == "2" else OK
    application_id = submit(sync_services, DOSSIER)
    advance(sync_services, application_id, "accepted")
    sync(sync_services, application_id)
    client = create_app(services=sync_services).test_client()
    doc = client.get(f"/api/v1/applications/{application_id}", headers=portal_headers).get_json()
    assert doc["portal_sync"]["acknowledged_portal_status"] == 1
    assert doc["portal_sync"]["state"] == "retrying"
    [failing] = doc["portal_sync"]["failing"]
    assert (failing["portal_status"], failing["attempts"], failing["last_error"]) == (2, 1, "HTTP 503")
    assert failing["next_attempt_at"] is not None


def test_without_a_configured_portal_nothing_is_sent_or_owed(services, portal_stand_in):
    """The embedded default has no PORTAL_SYNC_URL: items are marked skipped, none stays pending."""
    assert services.settings.portal_sync_url is None
    application_id = submit(services, DOSSIER)
    advance(services, application_id, "accepted")
    assert sync(services, application_id) == 0
    assert [i.state for i in items(services, application_id)] == ["skipped", "skipped"]
    assert portal_sync.due_applications(services.uow, now=models.utcnow() + dt.timedelta(days=1)) == []
    assert portal_stand_in.snapshot() == []


# ------------------------------------------------------------------------------------------------
# Several applications per call (PORTAL_SYNC_BATCH): `data` is a list (PORTAL.md §2)

A, B, C = "G01.99-20261127-0000501", "G01.99-20261127-0000502", "G01.99-20261127-0000503"


def call_entries(portal_stand_in: PortalStandIn) -> list[tuple[str, list[tuple[str, str]]]]:
    """Each call as (isUpdating, its entries)."""
    return [(c.json["isUpdating"], entries([c])) for c in portal_stand_in.snapshot()]


def test_a_batch_of_applications_goes_out_in_one_call_per_step_in_order_per_application(
        sync_services, portal, portal_stand_in):
    ids = [submit(sync_services, d) for d in (A, B, C)]
    for application_id in ids:
        advance(sync_services, application_id, "accepted", "awaiting_payment")
    assert sync_many(sync_services, ids) == 9
    # One call per round, each carrying every application's head; a later status of an application
    # only in a later call, once its earlier one was acknowledged.
    assert call_entries(portal_stand_in) == [
        ("False", [(A, "1"), (B, "1"), (C, "1")]),
        ("True", [(A, "2"), (B, "2"), (C, "2")]),
        ("True", [(A, "6"), (B, "6"), (C, "6")]),
    ]
    for dossier in (A, B, C):
        assert_in_order_without_overlap(portal, dossier, ["1", "2", "6"])
    assert [acked(sync_services, a) for a in ids] == [6, 6, 6]


def test_first_syncs_and_updates_in_one_batch_go_in_two_calls(sync_services, portal, portal_stand_in):
    a = submit(sync_services, A)
    assert sync(sync_services, a) == 1
    advance(sync_services, a, "accepted")
    b = submit(sync_services, B)
    advance(sync_services, b, "accepted")
    c = submit(sync_services, C)
    assert sync_many(sync_services, [a, b, c]) == 4
    # isUpdating belongs to the call: B's and C's first syncs together, A's update apart; then B's update.
    assert call_entries(portal_stand_in)[1:] == [
        ("False", [(B, "1"), (C, "1")]),
        ("True", [(A, "2")]),
        ("True", [(B, "2")]),
    ]
    assert [acked(sync_services, x) for x in (a, b, c)] == [2, 2, 1]


def test_a_refused_call_of_several_dossiers_fails_only_the_refused_one(sync_services, portal, portal_stand_in):
    portal.decide = lambda d, s, n: (422, {"error": "MaHoSo"}) if (d, s) == (B, "2") else OK
    ids = [submit(sync_services, d) for d in (A, B, C)]
    for application_id in ids:
        advance(sync_services, application_id, "accepted", "awaiting_payment")
    assert sync_many(sync_services, ids) == 8
    calls = call_entries(portal_stand_in)
    assert calls[:2] == [("False", [(A, "1"), (B, "1"), (C, "1")]), ("True", [(A, "2"), (B, "2"), (C, "2")])]
    # The call carrying B's refused entry, refused as a whole, is sent again entry by entry ...
    assert calls[2:5] == [("True", [(A, "2")]), ("True", [(B, "2")]), ("True", [(C, "2")])]
    # ... so only B's is failed for an operator, and nobody's next status is held back by it.
    assert calls[5:] == [("True", [(A, "6"), (B, "6"), (C, "6")])]
    a, b, c = ([i.state for i in items(sync_services, x)] for x in ids)
    assert a == c == ["sent"] * 3 and b == ["sent", "failed", "sent"]
    assert items(sync_services, ids[1])[1].attempts == 2 and "422" in items(sync_services, ids[1])[1].last_error
    assert [(f.portal_dossier_id, f.portal_status, f.state) for f in portal_sync.failing(sync_services.uow)] == [
        (B, 2, "failed")]


def test_a_5xx_backs_off_every_entry_of_the_call_each_by_its_own_attempts(sync_services, portal, portal_stand_in):
    down = {"yes": True}
    portal.decide = lambda d, s, n: (503, {}) if down["yes"] else OK
    clock = Clock()
    b = submit(sync_services, B)
    assert sync(sync_services, b, clock) == 0  # B's first attempt, alone
    clock.to(head(sync_services, b).next_attempt_at)
    a, c = submit(sync_services, A), submit(sync_services, C)
    assert sync_many(sync_services, [a, b, c], clock) == 0
    assert call_entries(portal_stand_in)[-1] == ("False", [(A, "1"), (B, "1"), (C, "1")])
    heads = {x: head(sync_services, x) for x in (a, b, c)}
    assert {x: (h.attempts, h.last_error) for x, h in heads.items()} == {
        a: (1, "HTTP 503"), b: (2, "HTTP 503"), c: (1, "HTTP 503")}
    # base 10 s, doubling: A and C after their first failure, B after its second.
    assert [(heads[x].next_attempt_at - clock.t).total_seconds() for x in (a, b, c)] == [10, 20, 10]
    down["yes"] = False
    clock.to(clock.t + dt.timedelta(seconds=10))
    assert sync_many(sync_services, [a, b, c], clock) == 2  # B is still backing off
    assert call_entries(portal_stand_in)[-1] == ("False", [(A, "1"), (C, "1")])
    clock.to(clock.t + dt.timedelta(seconds=10))
    assert sync_many(sync_services, [a, b, c], clock) == 1
    assert [acked(sync_services, x) for x in (a, b, c)] == [1, 1, 1]


def test_each_line_about_an_entry_of_a_batch_carries_that_applications_correlation_id(
        sync_services, portal, portal_stand_in, caplog):
    # One sender thread syncs several applications woken by different requests: a line about one must
    # not carry another's correlation id, nor none (issue 8: traceable logs).
    portal.decide = lambda d, s, n: (503, {})
    a, c = submit(sync_services, A), submit(sync_services, C)
    caplog.handler.addFilter(ContextFilter())
    with caplog.at_level(logging.WARNING, logger=portal_sync.__name__):
        assert portal_sync.sync_applications(
            [a, c], uow_factory=sync_services.uow, client=PortalClient(sync_services.settings),
            settings=sync_services.settings,
            log_contexts={a: {"application_id": a, "correlation_id": "corr-a"},
                          c: {"application_id": c, "correlation_id": "corr-c"}}) == 0
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert sorted((r.application_id, r.correlation_id) for r in retries) == sorted([(a, "corr-a"), (c, "corr-c")])
    assert all(r.application_id in r.getMessage() for r in retries)


def _worker(tmp_path: Path, database_url: str, portal_stand_in: PortalStandIn, **settings: Any) -> Any:
    from workers.portal_sync import PortalSyncWorker

    return PortalSyncWorker(build_services(portal_settings(tmp_path, database_url, portal_stand_in.url, **settings)))


def test_a_sender_thread_lets_status_changes_gather_and_goes_as_soon_as_a_batch_is_waiting(
        tmp_path, database_url, portal, portal_stand_in):
    # PORTAL_SYNC_GATHER_SECONDS: the wake-ups of a burst fill one call instead of one call each.
    worker = _worker(tmp_path, database_url, portal_stand_in, portal_sync_batch=3,
                     portal_sync_gather_seconds=120.0)
    try:
        ids = [submit(worker.services, d) for d in (A, B, C)]
        for application_id in ids:
            worker.schedule(application_id)
        # Far sooner than the gathering time: the third wake-up made a full batch.
        wait_for(lambda: len(portal_stand_in.snapshot()) == 1, timeout=20, message="one call")
        assert call_entries(portal_stand_in) == [("False", [(A, "1"), (B, "1"), (C, "1")])]
        wait_for(lambda: [acked(worker.services, a) for a in ids] == [1, 1, 1], message="acknowledged")
    finally:
        worker.close()
        worker.services.engine.dispose()


def test_a_lone_status_change_is_sent_once_the_gathering_time_is_up(tmp_path, database_url, portal,
                                                                   portal_stand_in):
    worker = _worker(tmp_path, database_url, portal_stand_in, portal_sync_gather_seconds=0.2)
    try:
        a = submit(worker.services, A)
        worker.schedule(a)
        wait_for(lambda: acked(worker.services, a) == 1, timeout=20, message="A acknowledged")
        assert call_entries(portal_stand_in) == [("False", [(A, "1")])]
    finally:
        worker.close()
        worker.services.engine.dispose()


def test_with_a_batch_of_1_every_call_carries_one_dossier_as_before(tmp_path, database_url, portal,
                                                                   portal_stand_in):
    services = build_services(portal_settings(tmp_path, database_url, portal_stand_in.url, portal_sync_batch=1))
    ids = [submit(services, d) for d in (A, B, C)]
    for application_id in ids:
        advance(services, application_id, "accepted", "awaiting_payment")
    assert sync_many(services, ids) == 9
    calls = call_entries(portal_stand_in)
    assert [len(e) for _, e in calls] == [1] * 9
    # One application after the other, each through its statuses, as one sync_application each.
    assert calls == [("False" if s == "1" else "True", [(d, s)]) for d in (A, B, C) for s in ("1", "2", "6")]
    assert portal.call_sizes == [1] * 9
    services.engine.dispose()


class TakesOverDuringTheCall(PortalClient):
    """While the call is out, another worker takes over one entry's lease (as when it expired)."""

    def __init__(self, settings: Any, services: Services, application_id: str) -> None:
        super().__init__(settings)
        self.services, self.application_id = services, application_id

    def send(self, payload: dict[str, Any]) -> SyncResult:
        with self.services.session_factory() as s, s.begin():
            s.query(models.PortalSyncItem).filter_by(application_id=self.application_id, state="pending") \
                .update({"claim_token": "the-other-worker"})
        return super().send(payload)


def test_a_lease_lost_mid_call_leaves_that_entry_to_the_new_holder_and_records_the_others(
        sync_services, portal, portal_stand_in):
    ids = [submit(sync_services, d) for d in (A, B)]
    client = TakesOverDuringTheCall(sync_services.settings, sync_services, ids[0])
    assert sync_many(sync_services, ids, client=client) == 1
    assert entries(portal_stand_in.snapshot()) == [(A, "1"), (B, "1")]
    taken, recorded = head(sync_services, ids[0]), items(sync_services, ids[1])[0]
    assert (taken.state, taken.attempts, taken.claim_token) == ("pending", 0, "the-other-worker")
    assert (recorded.state, acked(sync_services, ids[1])) == ("sent", 1)


class SlowFirstCall(PortalClient):
    """The first call lasts `seconds` on the test clock; the next calls note their items' leases."""

    def __init__(self, settings: Any, services: Services, clock: Clock, seconds: float) -> None:
        super().__init__(settings)
        self.services, self.clock, self.seconds = services, clock, seconds
        self.leases: list[dt.datetime | None] = []

    def send(self, payload: dict[str, Any]) -> SyncResult:
        if self.seconds:
            self.clock.to(self.clock.t + dt.timedelta(seconds=self.seconds))
            self.seconds = 0
        else:
            with self.services.session_factory() as s:
                dossiers = [e["MaHoSo"] for e in payload["data"]]
                self.leases += s.scalars(
                    select(models.PortalSyncItem.claimed_until).join(models.Application)
                    .where(models.Application.portal_dossier_id.in_(dossiers),
                           models.PortalSyncItem.state == "pending")).all()
        return super().send(payload)


def test_a_batchs_second_call_renews_its_leases_when_they_could_run_out_during_it(
        sync_services, portal, portal_stand_in):
    clock = Clock()
    a = submit(sync_services, A)
    assert sync(sync_services, a, clock) == 1
    advance(sync_services, a, "accepted")
    b = submit(sync_services, B)
    # Lease 60 s, timeout 10 s: after a first call of 45 s, 15 s would be left for a call of up to 20 s.
    client = SlowFirstCall(sync_services.settings, sync_services, clock, 45)
    assert sync_many(sync_services, [a, b], clock, client=client) == 2
    assert call_entries(portal_stand_in)[1:] == [("False", [(B, "1")]), ("True", [(A, "2")])]
    [lease] = client.leases
    assert lease is not None and lease >= clock.t + dt.timedelta(seconds=59)


def test_recording_a_batch_updates_its_applications_in_id_order_as_the_stage_batches_lock_them(
        sync_services, portal, portal_stand_in):
    # Two PostgreSQL transactions locking the same application rows in different orders deadlock;
    # the stage workers' batches lock them in id order (stages.apply_batch), so this must too.
    dossier_of = {submit(sync_services, d): d for d in (f"G01.99-20261127-00007{n:02d}" for n in range(8))}
    ids = list(dossier_of)
    call_order = sorted(ids, reverse=True)  # the entries' order differs from the ids'
    acknowledged: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("UPDATE applications SET portal_acked_status"):
            acknowledged.extend(p["application_id"] for p in context.compiled_parameters)

    event.listen(sync_services.engine, "before_cursor_execute", seen)
    try:
        assert sync_many(sync_services, call_order) == 8
    finally:
        event.remove(sync_services.engine, "before_cursor_execute", seen)
    assert entries(portal_stand_in.snapshot()) == [(dossier_of[x], "1") for x in call_order]
    assert acknowledged == sorted(ids)


def test_recording_a_call_reads_only_the_lease_tokens_and_writes_every_outcome_with_one_update(
        sync_services, portal, portal_stand_in):
    # Under SQLite's writer lock the outcomes are written from the items as claimed: while a lease
    # is held only its holder changes the item, so only the tokens are read to know which still are.
    ids = [submit(sync_services, f"G01.99-20261127-00008{i:02d}") for i in range(3)]
    with Statements(sync_services.engine) as recorded:
        assert sync_many(sync_services, ids, claims_read_first=True) == 3
    statements = [text for text, _ in recorded.all]
    tokens = statements.index(next(t for t in statements if t.startswith(
        "SELECT portal_sync_items.id, portal_sync_items.claim_token FROM portal_sync_items")))
    recording = statements[tokens:]
    assert len([t for t in recording if t.startswith("UPDATE portal_sync_items SET state=?")]) == 1
    # Items are read whole only to find each application's next call (the heads query).
    whole = [t for t in recording if t.startswith("SELECT portal_sync_items.id, portal_sync_items.application_id")]
    assert whole and all("NOT (EXISTS" in t for t in whole)
    recorded_items = [(i.state, i.attempts, i.claim_token) for a in ids for i in items(sync_services, a)]
    assert recorded_items == [("sent", 1, None)] * 3
    assert [acked(sync_services, a) for a in ids] == [1, 1, 1]
