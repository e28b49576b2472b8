"""The outbox relay: each row published once, rows kept while Redis is down and published once it is
back, nothing dropped by a Redis that forgot its bindings, parked retries sent to their own stage, and
each event put straight onto its stage's queue."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from sqlalchemy import select

from licence_service.messaging.broker import connect
from licence_service.messaging.envelope import events_of
from licence_service.messaging.names import QueueNames, RoutingKeys
from licence_service.messaging.relay import EVENTS_PER_MESSAGE, Publisher, relay_once, run_relay
from licence_service.store import models
from tests.support import delivery
from tests.support.servers import wait_for


def outbox_event_ids(service) -> set[str]:
    with service.db() as s:
        return set(s.scalars(select(models.OutboxMessage.event_id)))


@pytest.fixture
def start_relay(service) -> Iterator[Any]:
    """Starts the relay in a thread, against the broker URL given; stops it after the test."""
    running: list[tuple[threading.Thread, threading.Event]] = []

    def start(url: str) -> None:
        stop = threading.Event()
        thread = threading.Thread(target=run_relay, args=(service.uow, url),
                                  kwargs={"poll_seconds": 0.05, "stop": stop}, daemon=True)
        thread.start()
        running.append((thread, stop))

    yield start
    for thread, stop in running:
        stop.set()
        thread.join(30)
        assert not thread.is_alive()


def test_each_outbox_row_is_published_exactly_once(service, redis_url, start_relay):
    start_relay(redis_url)

    people = delivery.citizens(21)
    delivery.seed(service.uow(), people)
    client = redis.Redis.from_url(redis_url)
    for citizen in people[:20]:
        service.submit(citizen)
    wait_for(lambda: delivery.unsent_outbox(service.db) == 0, timeout=60, interval=0.05, message="all sent")
    # Many relay rounds later (one more row, sent), still one message per row.
    service.submit(people[20])
    wait_for(lambda: delivery.unsent_outbox(service.db) == 0, timeout=60, interval=0.05, message="the last sent")
    received = [e["event_id"] for e in delivery.queued_events(client, QueueNames.CHECKS)]
    status_changed = [e["event_id"] for e in delivery.queued_events(client, QueueNames.PORTAL_SYNC)]
    assert len(received) == len(set(received)) == 21
    assert len(status_changed) == len(set(status_changed)) == 21
    assert set(received) | set(status_changed) == outbox_event_ids(service)


def test_while_redis_is_down_the_rows_wait_and_go_out_once_it_is_back(service, own_redis, start_relay, caplog):
    start_relay(own_redis.url)
    caplog.set_level(logging.WARNING, logger="licence_service.messaging")
    people = delivery.citizens(11)
    delivery.seed(service.uow(), people)
    service.submit(people[0])
    wait_for(lambda: delivery.unsent_outbox(service.db) == 0, timeout=60, interval=0.05, message="the first sent")
    own_redis.kill()
    for citizen in people[1:]:
        service.submit(citizen)
    wait_for(lambda: any("broker unavailable" in r.getMessage() for r in caplog.records), timeout=60,
             interval=0.05, message="the relay to find the broker down")
    assert delivery.unsent_outbox(service.db) == 20  # a received and a status_changed event each
    own_redis.start()  # on the same port, empty
    wait_for(lambda: delivery.unsent_outbox(service.db) == 0, timeout=60, interval=0.05, message="catch-up")
    client = own_redis.client()
    received = [e["application_id"] for e in delivery.queued_events(client, QueueNames.CHECKS)]
    assert len(received) == len(set(received)) == 10


def test_a_redis_that_lost_its_bindings_gets_them_again_and_loses_no_event(service, redis_url, start_relay):
    start_relay(redis_url)

    first, second = delivery.citizens(2)
    delivery.seed(service.uow(), [first, second])
    client = redis.Redis.from_url(redis_url)
    service.submit(first)
    wait_for(lambda: client.llen(QueueNames.CHECKS) == 1, timeout=60, interval=0.05, message="the first queued")
    client.flushall()  # what a Redis restarted without its data looks like to a connected relay
    application_id = service.submit(second)
    wait_for(lambda: delivery.unsent_outbox(service.db) == 0, timeout=60, interval=0.05, message="sent")
    assert [e["application_id"] for e in delivery.queued_events(client, QueueNames.CHECKS)] == [application_id]


def test_a_due_retry_goes_back_to_its_own_stage_queue_with_its_attempt_count(service, redis_url, start_relay):
    start_relay(redis_url)

    client = redis.Redis.from_url(redis_url)
    body = {"type": "application.accepted", "application_id": "a-1", "event_id": "e-1", "data": {}}
    with service.uow() as uow:
        uow.deliveries.add_retry(models.ScheduledRetry(stage="fee", application_id="a-1", event_id="e-1", body=body,
                                                       attempts=2, due_at=models.utcnow()))
        uow.deliveries.add_retry(models.ScheduledRetry(stage="fee", application_id="a-2", event_id="e-2", body=body,
                                                       attempts=1,
                                                       due_at=models.utcnow() + dt.timedelta(hours=1)))
        uow.commit()
    wait_for(lambda: client.llen(QueueNames.FEE) == 1, timeout=60, interval=0.05, message="the retry published")
    [message] = delivery.queued(client, QueueNames.FEE)
    assert message["body"] == body and message["headers"]["x-attempts"] == 2
    assert all(client.llen(q) == 0 for q in QueueNames.all_stage_queues() if q != QueueNames.FEE)

    # The relay forgets a retry only after publishing it (a crash between the two re-publishes rather than
    # loses it), so the row may still be there the moment the message is seen.
    def parked() -> list[str]:
        with service.db() as s:
            return [r.application_id for r in s.scalars(select(models.ScheduledRetry))]

    wait_for(lambda: parked() == ["a-2"], timeout=60, interval=0.05, message="the published retry forgotten")
    assert client.llen(QueueNames.FEE) == 1


def redis_calls(client: Any, command: str) -> int:
    return client.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0)


def test_each_event_goes_straight_onto_its_stages_queue_without_reading_the_bindings(redis_url):
    # Routing through the topic exchange made kombu read its bindings (SMEMBERS) for every event.
    client = redis.Redis.from_url(redis_url)
    with connect(redis_url) as conn:
        publisher = Publisher(conn)
        publisher.declare()
        smembers, lpush = redis_calls(client, "smembers"), redis_calls(client, "lpush")
        for n in range(5):
            publisher.event({"type": RoutingKeys.ACCEPTED, "application_id": f"a-{n}", "event_id": f"e-{n}"},
                            RoutingKeys.ACCEPTED)
        assert redis_calls(client, "smembers") == smembers
        assert redis_calls(client, "lpush") == lpush + 5
    # A kombu queue on Redis is taken from its tail (BRPOP): reversed, the list is in publishing order.
    waiting = delivery.queued(client, QueueNames.FEE)[::-1]
    assert [(m["body"]["application_id"], m["headers"]["event_id"]) for m in waiting] == [
        (f"a-{n}", f"e-{n}") for n in range(5)]
    assert all(client.llen(q) == 0 for q in QueueNames.all_stage_queues() if q != QueueNames.FEE)


def test_an_event_no_stage_is_bound_to_is_refused_not_dropped(redis_url):
    with connect(redis_url) as conn:
        with pytest.raises(ValueError, match="application.unheard_of"):
            Publisher(conn).event({"event_id": "e-1"}, "application.unheard_of")


def test_a_stages_waiting_events_go_out_together_in_order_a_message_per_fifty(service, redis_url):
    # A message costs the relay and the consumer more than the event's own work: the rows waiting
    # for one stage go out in as few messages as EVENTS_PER_MESSAGE allows, each event once, in order.
    count = EVENTS_PER_MESSAGE + 10
    people = delivery.citizens(count)
    delivery.seed(service.uow(), people)
    ids = [service.submit(citizen) for citizen in people]
    client = redis.Redis.from_url(redis_url)
    with connect(redis_url) as conn:
        publisher = Publisher(conn)
        publisher.declare()
        lpush = redis_calls(client, "lpush")
        assert relay_once(service.uow, publisher) == 2 * count  # a received and a status_changed event each
        assert redis_calls(client, "lpush") == lpush + 4  # two messages per queue: 50 events and 10
    messages = delivery.queued(client, QueueNames.CHECKS)[::-1]
    assert [len(events_of(m["body"])) for m in messages] == [EVENTS_PER_MESSAGE, 10]
    assert [e["application_id"] for e in delivery.queued_events(client, QueueNames.CHECKS)] == ids
    assert [e["application_id"] for e in delivery.queued_events(client, QueueNames.PORTAL_SYNC)] == ids
    assert delivery.unsent_outbox(service.db) == 0
