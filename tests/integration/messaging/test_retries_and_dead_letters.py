"""Retryable failures are retried with capped exponential backoff without holding up the stage's other
messages; after the limit, and at once for what can never succeed, the message is dead-lettered with
its error, and an operator replays it once the cause is fixed. A business refusal is no dead letter.

The stage worker and the relay run in this process (threads) against real Redis and a real database;
the only thing faked is the outside register's outage, which a test cannot cause for real."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis as redis_lib
from kombu import Producer
from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from licence_service.messaging.broker import connect
from licence_service.messaging.consumer import StageWorker
from licence_service.messaging.envelope import Event, batch_body
from licence_service.messaging.failures import RetryPolicy
from licence_service.messaging.names import QueueNames, RoutingKeys, events_exchange, stage_queues
from licence_service.messaging.relay import run_relay
from licence_service.registers.citizens import RegisterUnavailable
from licence_service.services import stages
from licence_service.store import models
from tests.support import delivery
from tests.support.servers import wait_for


class FlakyPopulationRegister:
    """The population register, failing like a register that times out, `outages` times in a row
    (or until `fixed`)."""

    def __init__(self, inner: Any, outages: float) -> None:
        self.inner = inner
        self.outages = outages
        self.calls: list[float] = []
        self.lock = threading.Lock()

    def person(self, citizen_id: str) -> Any:
        with self.lock:
            self.calls.append(time.monotonic())
            if self.outages > 0:
                self.outages -= 1
                raise RegisterUnavailable("population register: read timed out (10 s)")
        return self.inner.person(citizen_id)

    def fix(self) -> None:
        with self.lock:
            self.outages = 0


def checks_worker(service, *, policy: RetryPolicy) -> StageWorker:
    worker = StageWorker("checks", lambda event: stages.checks(service.ctx, event)).configure(service.services)
    worker.retry = policy
    return worker


@pytest.fixture
def running_service(service) -> Iterator[Any]:
    """The relay in a thread; the test starts the stage worker it needs."""
    url = service.services.broker_url
    stop = threading.Event()
    relay = threading.Thread(target=run_relay, args=(service.uow, url), kwargs={"poll_seconds": 0.05, "stop": stop},
                             daemon=True)
    relay.start()
    workers: list[tuple[threading.Thread, threading.Event]] = []

    def start(worker: StageWorker) -> None:
        worker_stop = threading.Event()
        thread = threading.Thread(target=worker.run, args=(url, worker_stop), daemon=True)
        thread.start()
        workers.append((thread, worker_stop))

    service.start_worker = start
    try:
        yield service
    finally:
        for thread, worker_stop in workers:
            worker_stop.set()
            thread.join(30)
        stop.set()
        relay.join(30)


def dead_letters(service) -> list[models.DeadLetter]:
    with service.uow() as uow:
        return list(uow.deliveries.dead_letters(include_replayed=True))


def retries(service) -> list[models.ScheduledRetry]:
    with service.db() as s:
        return list(s.query(models.ScheduledRetry).order_by(models.ScheduledRetry.id))


def wait_until_the_relay_forgets_its_retries(service) -> None:
    """The relay deletes a parked retry only after publishing it, in a transaction of its own (a crash
    in between re-publishes it rather than loses it): the worker can handle the published message, and
    the test see its outcome, while the retry's row is still there."""
    wait_for(lambda: retries(service) == [], timeout=60, interval=0.05, message="the published retries forgotten")


def test_a_register_that_times_out_twice_then_answers_still_gets_the_application_accepted(running_service):
    service = running_service
    citizen = delivery.citizens(1)[0]
    delivery.seed(service.uow(), [citizen])
    register = FlakyPopulationRegister(service.ctx.population, outages=2)
    service.ctx.population = register
    service.start_worker(checks_worker(service, policy=RetryPolicy(max_attempts=5, base_seconds=0.5,
                                                                   cap_seconds=60)))
    application_id = service.submit(citizen)
    wait_for(lambda: service.status(application_id) == "accepted", timeout=60, interval=0.1, message="accepted")
    assert len(register.calls) == 3
    # Backoff: 0.5 s after the first failure, 1 s after the second.
    first_wait, second_wait = register.calls[1] - register.calls[0], register.calls[2] - register.calls[1]
    assert first_wait >= 0.5 and second_wait >= 1.0, (first_wait, second_wait)
    assert delivery.history_by_application(service.db)[application_id] == ["received", "accepted"]
    # The second retry's row goes only after its message, which got the application accepted.
    wait_until_the_relay_forgets_its_retries(service)
    assert dead_letters(service) == []


def test_a_message_waiting_out_its_backoff_does_not_hold_up_the_stage(running_service):
    service = running_service
    slow, quick = delivery.citizens(2)
    delivery.seed(service.uow(), [slow, quick])
    register = FlakyPopulationRegister(service.ctx.population, outages=1)
    service.ctx.population = register
    service.start_worker(checks_worker(service, policy=RetryPolicy(max_attempts=5, base_seconds=3600,
                                                                   cap_seconds=3600)))
    first = service.submit(slow)
    wait_for(lambda: len(retries(service)) == 1, timeout=60, interval=0.1, message="the first parked for retry")
    second = service.submit(quick)
    wait_for(lambda: service.status(second) == "accepted", timeout=60, interval=0.1,
             message="the second application accepted")
    assert service.status(first) == "received"
    [parked] = retries(service)
    assert parked.application_id == first and parked.stage == "checks" and parked.attempts == 1
    assert "RegisterUnavailable" in parked.last_error
    assert parked.due_at > models.utcnow() + dt.timedelta(minutes=59)
    # Once due, the relay hands it back to the checks queue (and only there).
    with service.db() as s:
        s.execute(update(models.ScheduledRetry).values(due_at=models.utcnow()))
        s.commit()
    wait_for(lambda: service.status(first) == "accepted", timeout=60, interval=0.1, message="the first accepted")
    # Its row goes only after its message, which got the first accepted.
    wait_until_the_relay_forgets_its_retries(service)


def test_backoff_is_exponential_and_capped():
    policy = RetryPolicy(max_attempts=10, base_seconds=2, cap_seconds=60)
    assert [policy.delay(n).total_seconds() for n in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60]
    assert policy.delay(10_000).total_seconds() == 60
    assert not policy.gives_up_after(9) and policy.gives_up_after(10)


def test_a_poison_message_is_dead_lettered_after_the_retry_limit_and_replayed_once_fixed(running_service):
    service = running_service
    citizen = delivery.citizens(1)[0]
    delivery.seed(service.uow(), [citizen])
    register = FlakyPopulationRegister(service.ctx.population, outages=float("inf"))
    service.ctx.population = register
    service.start_worker(checks_worker(service, policy=RetryPolicy(max_attempts=3, base_seconds=0.2,
                                                                   cap_seconds=1)))
    application_id = service.submit(citizen)
    wait_for(lambda: dead_letters(service), timeout=60, interval=0.1, message="a dead letter")
    [letter] = dead_letters(service)
    assert (letter.stage, letter.application_id, letter.attempts) == ("checks", application_id, 3)
    assert "RegisterUnavailable: population register: read timed out" in letter.error
    assert letter.event_id == service.event(application_id, RoutingKeys.RECEIVED).event_id
    # The second retry's row goes only after its message, whose third attempt made the dead letter.
    wait_until_the_relay_forgets_its_retries(service)
    assert len(register.calls) == 3
    assert service.status(application_id) == "received"

    cli = service.client.application.test_cli_runner()
    listed = cli.invoke(args=["dlq", "list"])
    assert listed.exit_code == 0
    assert f"application {application_id}" in listed.output and "read timed out" in listed.output

    register.fix()
    replayed = cli.invoke(args=["dlq", "replay", str(letter.id)])
    assert replayed.exit_code == 0, replayed.output
    assert f"replayed 1 dead letter(s): {letter.id}" in replayed.output
    wait_for(lambda: service.status(application_id) == "accepted", timeout=60, interval=0.1, message="accepted")
    assert delivery.history_by_application(service.db)[application_id] == ["received", "accepted"]
    [after] = dead_letters(service)
    assert after.replayed_at is not None
    assert cli.invoke(args=["dlq", "list"]).output.strip() == "no dead letters waiting for a replay"


def publish_raw(url: str, body: Any, **kwargs: Any) -> None:
    with connect(url) as conn:
        Producer(conn.default_channel).publish(body, exchange=events_exchange, routing_key=RoutingKeys.RECEIVED,
                                               declare=[], **kwargs)


def test_an_event_for_no_known_application_is_dead_lettered_at_once(running_service):
    service = running_service
    service.start_worker(checks_worker(service, policy=RetryPolicy(max_attempts=5, base_seconds=0.2)))
    wait_for(lambda: redis_lib.Redis.from_url(service.services.broker_url).exists("_kombu.binding.licence.events"),
             timeout=30, message="the relay's bindings")
    event = Event(type=RoutingKeys.RECEIVED, application_id="00000000-0000-0000-0000-000000000000")
    publish_raw(service.services.broker_url, event.to_dict(), serializer="json")
    wait_for(lambda: dead_letters(service), timeout=60, interval=0.1, message="a dead letter")
    [letter] = dead_letters(service)
    assert letter.attempts == 1 and "NonRetryable: no application" in letter.error
    assert letter.event_id == event.event_id
    assert retries(service) == []


@pytest.mark.parametrize("body, kwargs, error", [
    ({"type": RoutingKeys.RECEIVED, "data": {}}, {"serializer": "json"},
     "malformed event: event envelope lacks application_id, event_id"),
    (b"{not json", {"content_type": "application/json", "content_encoding": "utf-8"}, "undecodable message"),
], ids=["malformed-envelope", "not-json"])
def test_a_message_that_can_never_be_handled_is_dead_lettered_and_the_stage_goes_on(running_service, body, kwargs,
                                                                                   error):
    service = running_service
    citizen = delivery.citizens(1)[0]
    delivery.seed(service.uow(), [citizen])
    service.start_worker(checks_worker(service, policy=RetryPolicy(max_attempts=5, base_seconds=0.2)))
    wait_for(lambda: redis_lib.Redis.from_url(service.services.broker_url).exists("_kombu.binding.licence.events"),
             timeout=30, message="the relay's bindings")
    publish_raw(service.services.broker_url, body, **kwargs)
    wait_for(lambda: dead_letters(service), timeout=60, interval=0.1, message="a dead letter")
    [letter] = dead_letters(service)
    assert letter.attempts == 1 and error in letter.error, letter.error
    application_id = service.submit(citizen)
    wait_for(lambda: service.status(application_id) == "accepted", timeout=60, interval=0.1, message="accepted")


def test_a_business_refusal_is_a_normal_outcome_not_a_dead_letter(running_service):
    service = running_service
    citizen = delivery.citizens(1)[0]
    delivery.seed(service.uow(), [citizen])
    service.start_worker(checks_worker(service, policy=RetryPolicy(max_attempts=5, base_seconds=0.2)))
    body = citizen.body()
    body["applicant"]["full_name"] = "TRẦN THỊ BÌNH"  # not the name the population register holds (R-ELIG-1)
    application_id = service.submit_body(body)
    wait_for(lambda: service.status(application_id) == "refused", timeout=60, interval=0.1, message="refused")
    assert "identity_mismatch" in service.application(application_id).refusal_reasons
    assert dead_letters(service) == [] and retries(service) == []


@pytest.mark.parametrize("carried", [1, 3], ids=["one-event", "three-events-in-one-message"])
def test_while_the_database_cannot_record_a_failure_the_message_goes_back_to_the_queue(sqlite_service, carried):
    # The database down for the handler and for recording its failure alike: nothing can be done,
    # so nothing is acknowledged; the message waits in Redis (uncounted) until the database is back.
    # A message carrying several events (as the relay sends them) goes back whole.
    service = sqlite_service
    people = delivery.citizens(carried)
    delivery.seed(service.uow(), people)
    ids = [service.submit(citizen) for citizen in people]
    bodies = [service.event(application_id, RoutingKeys.RECEIVED).to_dict() for application_id in ids]
    down = threading.Event()
    down.set()
    real_uow = service.services.uow

    def uow_factory() -> Any:
        if down.is_set():
            raise OperationalError("SELECT 1", {}, Exception("connection refused"))
        return real_uow()

    service.ctx.uow_factory = uow_factory
    worker = checks_worker(service, policy=RetryPolicy(max_attempts=2, base_seconds=0.1))
    worker.uow_factory = uow_factory
    url = service.services.broker_url
    with connect(url) as conn:
        Producer(conn.default_channel).publish(bodies[0] if carried == 1 else batch_body(bodies),
                                               exchange=events_exchange, routing_key=RoutingKeys.RECEIVED,
                                               serializer="json", declare=stage_queues("checks"))
    client = redis_lib.Redis.from_url(url)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(url, stop), daemon=True)
    thread.start()
    try:
        # Taken, failed, returned: more than max_attempts rounds pass without a dead letter.
        wait_for(lambda: worker._db_pause >= 2.0, timeout=60, interval=0.05, message="two failed rounds")
        assert client.llen(QueueNames.CHECKS) + client.hlen("unacked") == 1
        assert dead_letters(service) == [] and retries(service) == []
        down.clear()
        wait_for(lambda: all(service.status(a) == "accepted" for a in ids), timeout=60, interval=0.1,
                 message="accepted once the database is back")
    finally:
        stop.set()
        thread.join(30)
    assert client.llen(QueueNames.CHECKS) == 0 and client.hlen("unacked") == 0
    assert all(delivery.history_by_application(service.db)[a] == ["received", "accepted"] for a in ids)
