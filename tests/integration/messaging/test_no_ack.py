"""A stage whose events are only wake-ups (portal_sync: its table is the record) takes them without
acknowledgement, and so sends the broker no acknowledgement bookkeeping at all."""

from __future__ import annotations

import threading

import redis as redis_lib
from kombu import Producer

from licence_service.messaging.broker import connect
from licence_service.messaging.consumer import StageWorker
from licence_service.messaging.envelope import Event
from licence_service.messaging.names import RoutingKeys, queue_name
from licence_service.messaging.relay import declare_topology
from tests.support.servers import wait_for

# What kombu's Redis transport runs to enter a message as unacknowledged and to remove it on ack.
BOOKKEEPING = ("zadd", "hset", "zrem", "hdel")


def calls(client: redis_lib.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {command: stats.get(f"cmdstat_{command}", {}).get("calls", 0) for command in BOOKKEEPING}


def test_a_stage_taking_events_without_acknowledgement_sends_no_ack_bookkeeping(service):
    url = service.services.broker_url
    client = redis_lib.Redis.from_url(url)
    handled: list[str] = []
    worker = StageWorker("portal_sync", lambda event: handled.append(event.application_id), acknowledge=False)
    worker.configure(service.services)
    with connect(url) as conn:
        declare_topology(conn)
        producer = Producer(conn.default_channel)
        before = calls(client)
        for n in range(5):
            event = Event(type=RoutingKeys.STATUS_CHANGED, application_id=f"a-{n}")
            producer.publish(event.to_dict(), exchange="", routing_key=queue_name("portal_sync"), serializer="json")
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(url, stop), daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(handled) == 5, timeout=30, interval=0.05, message="every wake-up handled")
    finally:
        stop.set()
        thread.join(30)
    assert sorted(handled) == [f"a-{n}" for n in range(5)]
    assert client.llen(queue_name("portal_sync")) == 0 and client.hlen("unacked") == 0
    assert calls(client) == before
