"""The broker the end-to-end tests run on: the bundled Redis, and RabbitMQ (kombu's AMQP transport)
when LICENCE_TEST_AMQP_URL is set."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import AMQP_URL

NO_AMQP = ("RabbitMQ variant: set LICENCE_TEST_AMQP_URL (e.g. amqp://guest:guest@127.0.0.1:5672//); "
           ".ci/run does")


@pytest.fixture(params=["redis", "rabbitmq"])
def broker_env(request: pytest.FixtureRequest, redis_url: str) -> Iterator[dict[str, str]]:
    """Environment naming the broker for the service's processes.

    On RabbitMQ every exchange and queue of the test carries a prefix of its own (QUEUE_PREFIX), so
    test runs sharing the CI's broker never consume each other's messages; they are deleted after."""
    if request.param == "redis":
        yield {"REDIS_URL": redis_url}
        return
    if not AMQP_URL:
        pytest.skip(NO_AMQP)
    prefix = f"test-{uuid.uuid4().hex[:12]}."
    try:
        yield {"REDIS_URL": redis_url, "BROKER_URL": AMQP_URL, "QUEUE_PREFIX": prefix}
    finally:
        delete_topology(AMQP_URL, prefix)


def delete_topology(url: str, prefix: str) -> None:
    from kombu import Connection, Exchange

    from licence_service.messaging.names import EXCHANGE_BASE_NAME, all_queues

    with Connection(url) as conn:
        channel = conn.default_channel
        for queue in all_queues(prefix):
            queue.bind(channel).delete()
        Exchange(prefix + EXCHANGE_BASE_NAME, type="topic").bind(channel).delete()
