"""The service's real worker processes against real Redis and a real database: SIGTERM and SIGKILL in
the middle of a step, every message delivered twice, and Redis restarted empty or with its data.

Delivering everything twice makes handlers race on one application, so that test runs on SQLite and
PostgreSQL; the others are about the broker and the processes, and run on SQLite."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import redis as redis_lib

from licence_service.messaging.names import STAGE_BINDINGS, QueueNames
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


def json_lines(path: Path) -> list[dict]:
    """A JSON-lines file another process is still appending to: the complete lines written so far."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass  # the line being written
    return out


def published_copies(record: Path) -> Counter[tuple[str, str]]:
    """(stage, event id) -> how many copies of it the faulty relay put on the stage's queue."""
    stage_of = {queue: stage for stage, (queue, _keys) in STAGE_BINDINGS.items()}
    copies: Counter[tuple[str, str]] = Counter()
    for published in json_lines(record):
        for event_id in published["event_ids"]:
            copies[stage_of[published["queue"]], event_id] += published["copies"]
    return copies


def deliveries(log_dir: Path) -> Counter[tuple[str, str]]:
    """(stage, event id) -> how many times the stage's worker took that event off its queue: the line
    each worker logs for every event of every message it takes, whatever the outcome
    (licence_service.metrics.handling_message)."""
    taken: Counter[tuple[str, str]] = Counter()
    for stage in STAGE_BINDINGS:
        for line in json_lines(log_dir / f"{stage}.log"):
            if (line.get("logger") == "licence_service.metrics" and line.get("event_id")
                    and line.get("message", "").startswith(f"{stage}: ")):
                taken[stage, line["event_id"]] += 1
    return taken


def test_every_message_delivered_twice_still_issues_each_licence_once(service, redis_url, tmp_path,
                                                                      portal_stand_in: PortalStandIn):
    people = delivery.citizens(3)
    delivery.seed(service.uow(), people)
    record = tmp_path / "published-twice.jsonl"
    procs = processes(service, redis_url, tmp_path, modules={"relay": FAULTY}, portal_url=portal_stand_in.url,
                      FAULT_PUBLISH_TWICE=str(record))
    broker = redis_lib.Redis.from_url(redis_url)
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
        # The duplicates of the last messages may still be on their way.
        wait_for(lambda: delivery.unsent_outbox(service.db) == 0
                 and published_copies(record) - deliveries(tmp_path / "logs") == Counter(),
                 timeout=60, interval=0.2, message="every copy of every published message taken by its stage")
        assert [broker.llen(q) for q in QueueNames.all_stage_queues()] == [0] * 5
        assert broker.hlen("unacked") == 0  # every copy acknowledged (portal_sync takes its without)
    finally:
        procs.stop()
    # The fault happened: every event the relay published from the outbox went onto its queue twice,
    # and its stage took both copies (a retry parked meanwhile would be published twice too, and counted).
    copies, taken = published_copies(record), deliveries(tmp_path / "logs")
    with service.db() as s:
        outbox = {event_id for (event_id,) in s.query(models.OutboxMessage.event_id)}
    from_outbox: Counter[str] = Counter()
    for published in json_lines(record):
        if published["method"] == "events":
            from_outbox.update(published["event_ids"])
    assert outbox and from_outbox == {event_id: 1 for event_id in outbox}, "each outbox event published (twice) once"
    assert all(n >= 2 for n in copies.values()), copies
    assert taken == copies, "each stage took every copy of its events, and nothing else"
    print(f"published twice: {len(json_lines(record))} messages carrying {len(copies)} events; "
          f"{sum(taken.values())} deliveries taken by the stages")
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
