"""The service's real worker processes against real Redis and a real database: SIGTERM and SIGKILL in
the middle of a step, every message delivered twice, and Redis restarted empty or with its data.

Delivering everything twice makes handlers race on one application, so that test runs on SQLite and
PostgreSQL; the others are about the broker and the processes, and run on SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis as redis_lib

from licence_service.messaging.names import QueueNames
from licence_service.store import models
from tests.support import delivery
from tests.support.portal_sync import entries, statuses_by_dossier
from tests.support.servers import PortalStandIn, wait_for

FAULTY = "tests.integration.messaging.faulty_worker"


def processes(service, broker_url: str, tmp_path: Path, *, modules: dict[str, str] | None = None,
              portal_url: str | None = None, **env: str) -> delivery.Processes:
    return delivery.Processes(
        delivery.service_env(tmp_path, service.services.settings.database_url, broker_url, portal_url, **env),
        tmp_path / "logs", modules=modules)


def wait_status(service, application_ids: list[str], status: str, procs: delivery.Processes,
                timeout: float = 90) -> None:
    try:
        wait_for(lambda: all(service.status(a) == status for a in application_ids), timeout=timeout,
                 interval=0.2, message=f"{len(application_ids)} application(s) {status}")
    except AssertionError:
        print(procs.logs())
        raise


def fee_runs(service, application_id: str) -> int:
    """How many fee events the fee stage has applied for this application."""
    events = {e.event_id for e in service.events(application_id, "application.accepted")}
    with service.db() as s:
        return sum(1 for p in s.query(models.ProcessedEvent).filter_by(handler="fee") if p.event_id in events)


def test_sigterm_mid_step_finishes_the_message_in_hand_and_leaves_the_others_queued(sqlite_service, redis_url,
                                                                                   tmp_path):
    service = sqlite_service
    a, b = delivery.citizens(2)
    delivery.seed(service.uow(), [a, b])
    marker = tmp_path / "fee-started"
    procs = processes(service, redis_url, tmp_path, modules={"fee": FAULTY}, FAULT_SLOW_STAGE="fee",
                      FAULT_SLOW_SECONDS="10", FAULT_MARKER=str(marker))
    broker = redis_lib.Redis.from_url(redis_url)
    try:
        procs.start("relay", "checks", "fee")
        first = service.submit(a)
        wait_for(lambda: marker.exists(), timeout=90, interval=0.1, message="the fee stage to start on the first")
        second = service.submit(b)
        wait_for(lambda: broker.llen(QueueNames.FEE) == 1, timeout=60, interval=0.1,
                 message="the second application's fee message queued behind the first")
        assert procs.terminate("fee", timeout=60) == 0
        # The message in hand was finished and acknowledged; the queued one was left for the next worker.
        assert service.status(first) == "awaiting_payment"
        assert service.status(second) == "accepted"
        assert broker.llen(QueueNames.FEE) == 1
        assert broker.hlen("unacked") == 0
        procs.modules.pop("fee")
        procs.start("fee")
        wait_status(service, [second], "awaiting_payment", procs)
    finally:
        procs.stop()
    assert "fee: stopped" in (tmp_path / "logs" / "fee.log").read_text()
    histories = delivery.history_by_application(service.db)
    assert histories[first] == histories[second] == ["received", "accepted", "awaiting_payment"]


def test_sigkill_mid_step_hands_the_message_out_again_after_the_visibility_timeout(sqlite_service, redis_url,
                                                                                   tmp_path):
    service = sqlite_service
    citizen = delivery.citizens(1)[0]
    delivery.seed(service.uow(), [citizen])
    marker = tmp_path / "fee-started"
    procs = processes(service, redis_url, tmp_path, modules={"fee": FAULTY}, FAULT_SLOW_STAGE="fee",
                      FAULT_SLOW_SECONDS="30", FAULT_MARKER=str(marker),
                      BROKER_VISIBILITY_TIMEOUT_SECONDS="3", PORTAL_SYNC_TIMEOUT_SECONDS="1")
    broker = redis_lib.Redis.from_url(redis_url)
    try:
        procs.start("relay", "checks", "fee")
        application_id = service.submit(citizen)
        wait_for(lambda: marker.exists(), timeout=90, interval=0.1, message="the fee stage to start")
        procs.kill("fee")
        assert broker.hlen("unacked") == 1  # taken, never acknowledged
        assert service.status(application_id) == "accepted"
        procs.modules.pop("fee")
        procs.start("fee")
        wait_status(service, [application_id], "awaiting_payment", procs)
    finally:
        procs.stop()
    assert delivery.history_by_application(service.db)[application_id] == ["received", "accepted",
                                                                            "awaiting_payment"]
    assert fee_runs(service, application_id) == 1
    assert broker.hlen("unacked") == 0


def test_every_message_delivered_twice_still_issues_each_licence_once(service, redis_url, tmp_path,
                                                                      portal_stand_in: PortalStandIn):
    people = delivery.citizens(3)
    delivery.seed(service.uow(), people)
    procs = processes(service, redis_url, tmp_path, modules={"relay": FAULTY}, portal_url=portal_stand_in.url,
                      FAULT_PUBLISH_TWICE="1")
    try:
        procs.start("relay", *delivery.STAGE_PROCESSES)
        ids = [service.submit(c) for c in people]
        wait_status(service, ids, "awaiting_payment", procs)
        for application_id in ids:
            service.pay(application_id)
        wait_status(service, ids, "issued", procs)
        # Counted by entries: one call may carry several applications' statuses.
        wait_for(lambda: len(entries(portal_stand_in.snapshot())) >= 5 * len(people), timeout=60, interval=0.2,
                 message="every DongBoHoSoMC status update")
    finally:
        procs.stop()
    histories = delivery.history_by_application(service.db)
    assert all(histories[a] == delivery.ISSUED_HISTORY for a in ids), histories
    assert delivery.cards_by_application(service.db) == {a: 1 for a in ids}
    # Every entry of every call (a call may carry several applications' dossiers).
    calls = {dossier: [int(s) for s in sent]
             for dossier, sent in statuses_by_dossier(portal_stand_in.snapshot()).items()}
    assert calls == {c.dossier_id: delivery.ISSUED_PORTAL_STATUSES for c in people}


@pytest.mark.parametrize("with_data", [False, True], ids=["restarted-empty", "restarted-with-data"])
def test_redis_restarted_mid_run_loses_no_application(sqlite_service, tmp_path, request, with_data):
    service = sqlite_service
    # Paid applications whose conversion messages sit in Redis when it goes down: restarted empty,
    # the messages are gone and the sweeper re-drives them; restarted with its data (append-only
    # file), they are still there and the sweeper has nothing to do.
    redis = request.getfixturevalue("persistent_redis" if with_data else "own_redis")
    people = delivery.citizens(4)
    delivery.seed(service.uow(), people)
    procs = processes(service, redis.url, tmp_path, STUCK_GRACE_SECONDS="3", SWEEP_INTERVAL_SECONDS="0.5")
    try:
        procs.start("relay", "checks", "fee")
        ids = [service.submit(c) for c in people]
        wait_status(service, ids, "awaiting_payment", procs)
        for application_id in ids:
            service.pay(application_id)
        wait_for(lambda: len(delivery.queued_events(redis.client(), QueueNames.CONVERSION)) == len(ids),
                 timeout=60, interval=0.1, message="the conversion events queued")
        if with_data:
            redis.terminate()
        else:
            redis.kill()
        redis.start()
        assert len(delivery.queued_events(redis.client(), QueueNames.CONVERSION)) == (len(ids) if with_data else 0)
        # With its data back, nothing may be recovered but by Redis itself: no sweeper.
        procs.start("conversion", "issuance", *(() if with_data else ("sweeper",)))
        wait_status(service, ids, "issued", procs, timeout=120)
    finally:
        procs.stop()
    histories = delivery.history_by_application(service.db)
    assert all(histories[a] == delivery.ISSUED_HISTORY for a in ids), histories
    assert delivery.cards_by_application(service.db) == {a: 1 for a in ids}
    redriven = delivery.count(service.db, models.StuckRedrive)
    assert redriven == (0 if with_data else len(ids))
