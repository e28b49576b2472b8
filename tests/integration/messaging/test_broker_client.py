"""The Redis transport's channel runs its commands through one redis-py client (broker.RedisTransport)
instead of building a new one for each get and acknowledgement (issue 8), and still delivers and
acknowledges as kombu's own does."""

from __future__ import annotations

import redis as redis_lib
from kombu import Producer, Queue

from licence_service.messaging.broker import RedisTransport, connect


def test_a_redis_channel_uses_one_client_for_its_commands_and_still_delivers_and_acknowledges(redis_url):
    queue = "broker-client-reuse"
    with connect(redis_url) as conn:
        channel = conn.default_channel
        assert isinstance(conn.transport, RedisTransport)
        bound = Queue(queue, routing_key=queue)(channel)
        bound.declare()
        producer = Producer(channel)
        for n in range(3):
            producer.publish({"n": n}, exchange="", routing_key=queue, serializer="json")
        got = []
        while (message := bound.get(no_ack=False)) is not None:
            got.append(message.payload["n"])
            message.ack()
        with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
            assert first is second
    assert sorted(got) == [0, 1, 2]
    client = redis_lib.Redis.from_url(redis_url)
    assert client.llen(queue) == 0 and client.hlen("unacked") == 0
