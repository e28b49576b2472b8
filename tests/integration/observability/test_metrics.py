"""Prometheus metrics (licence_service.metrics): requests by route and status at the API's /metrics,
also when gunicorn's several processes answer; stage durations, retries and dead letters counted by
a stage worker; and the backlogs read on scrape — queue depths, outbox lag, portal-sync lag.

Real Redis, a real migrated database, real gunicorn; the only fault forced by hand is a register's
outage (a handler raising RegisterUnavailable), which a test cannot cause for real."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from kombu import Connection, Producer
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from licence_service.config import PROJECT_ROOT
from licence_service.messaging.consumer import StageWorker
from licence_service.messaging.envelope import Event
from licence_service.messaging.names import QueueNames, RoutingKeys, events_exchange
from licence_service.messaging.relay import declare_topology
from licence_service.registers.citizens import RegisterUnavailable
from licence_service.store import models
from tests.conftest import TEST_RATE_LIMIT, TOKEN_SECRET
from tests.support.data import application_body, seed_an
from tests.support.servers import free_port, wait_for


def scrape(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a /metrics text, by name and labels."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def sample(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# -- the API ------------------------------------------------------------------------------------


def test_metrics_count_requests_by_route_template_and_status(client, portal_headers, services):
    seed_an(services.uow())
    before = scrape(client.get("/metrics").get_data(as_text=True))
    created = client.post("/api/v1/applications", json=application_body(), headers=portal_headers)
    assert created.status_code == 202
    missing = client.get(f"/api/v1/applications/{uuid.uuid4()}", headers=portal_headers)
    assert missing.status_code == 404

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    after = scrape(response.get_data(as_text=True))

    def grew(route: str, method: str, status: str) -> float:
        key = dict(method=method, route=route, status=status)
        return (sample(after, "licence_http_requests_total", **key) or 0) - \
            (sample(before, "licence_http_requests_total", **key) or 0)

    assert grew("/api/v1/applications", "POST", "202") == 1
    # One series per route, not per application id.
    assert grew("/api/v1/applications/<uuid:application_id>", "GET", "404") == 1
    assert sample(after, "licence_http_request_duration_seconds_count", method="POST",
                  route="/api/v1/applications") >= 1


def test_outbox_lag_is_the_age_of_the_oldest_unsent_event(client, portal_headers, services):
    seed_an(services.uow())
    assert client.post("/api/v1/applications", json=application_body(), headers=portal_headers).status_code == 202
    # No relay runs here: the submission's events wait in the outbox. Make them two minutes old.
    with services.session_factory() as s:
        s.execute(update(models.OutboxMessage).values(created_at=models.utcnow() - dt.timedelta(seconds=120)))
        s.commit()
        unsent = s.query(models.OutboxMessage).filter(models.OutboxMessage.sent_at.is_(None)).count()

    samples = scrape(client.get("/metrics").get_data(as_text=True))

    assert sample(samples, "licence_outbox_unsent") == unsent >= 1
    assert 120 <= sample(samples, "licence_outbox_lag_seconds") < 180


def test_outbox_lag_is_zero_when_every_event_is_published(client, services):
    samples = scrape(client.get("/metrics").get_data(as_text=True))

    assert sample(samples, "licence_outbox_unsent") == 0
    assert sample(samples, "licence_outbox_lag_seconds") == 0


def test_portal_sync_lag_is_the_age_of_the_oldest_call_still_owed(client, portal_headers, services):
    seed_an(services.uow())
    assert client.post("/api/v1/applications", json=application_body(), headers=portal_headers).status_code == 202
    # The submission owes the portal its status-1 call; no portal_sync worker runs here.
    with services.session_factory() as s:
        s.execute(update(models.PortalSyncItem).values(created_at=models.utcnow() - dt.timedelta(seconds=300)))
        s.commit()

    samples = scrape(client.get("/metrics").get_data(as_text=True))

    assert sample(samples, "licence_portal_sync_pending") == 1
    assert 300 <= sample(samples, "licence_portal_sync_lag_seconds") < 360


def test_queue_depth_counts_the_messages_ready_in_each_stage_queue(client, services):
    with Connection(services.broker_url) as conn:
        declare_topology(conn)
        producer = Producer(conn.default_channel)
        for _ in range(3):
            event = Event(type=RoutingKeys.RECEIVED, application_id=str(uuid.uuid4()))
            producer.publish(event.to_dict(), exchange=events_exchange, routing_key=event.type, serializer="json")

    samples = scrape(client.get("/metrics").get_data(as_text=True))

    assert sample(samples, "licence_queue_depth", queue=QueueNames.CHECKS) == 3
    assert sample(samples, "licence_queue_depth", queue=QueueNames.FEE) == 0


def test_an_unreachable_broker_leaves_queue_depths_out_rather_than_reporting_zero(tmp_path, database_url):
    from licence_service.app import create_app
    from licence_service.bootstrap import build_services
    from tests.conftest import make_settings

    dead = f"redis://127.0.0.1:{free_port()}/0"
    services = build_services(make_settings(tmp_path, database_url, dead))
    try:
        text = create_app(services=services).test_client().get("/metrics").get_data(as_text=True)
    finally:
        services.engine.dispose()

    assert "licence_queue_depth" not in text
    assert "licence_outbox_lag_seconds" in text  # the database's part is still there


# -- gunicorn, several processes ----------------------------------------------------------------


@pytest.fixture
def gunicorn(tmp_path: Path, database_url: str, redis_url: str) -> Iterator[str]:
    """The web process as the Procfile starts it, with two gunicorn workers."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(DATABASE_URL=database_url, REDIS_URL=redis_url, VAR_DIR=str(tmp_path / "var"),
               TOKEN_SECRET=TOKEN_SECRET, RATE_LIMIT=TEST_RATE_LIMIT, PYTHONPATH=str(PROJECT_ROOT))
    log = open(tmp_path / "web.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", "python:licence_service.gunicorn_conf",
                             "--bind", f"127.0.0.1:{port}", "--workers", "2", "licence_service:create_app()"],
                            cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(f"{base}/healthz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_for(up, timeout=90, interval=0.3, message="gunicorn's /healthz")
        yield base
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def test_metrics_under_gunicorn_add_up_every_worker_process(gunicorn, tmp_path):
    counts = {}
    # The readiness probe above already counted some /healthz requests: start from what /metrics says.
    before = sample(scrape(requests.get(f"{gunicorn}/metrics", timeout=10).text), "licence_http_requests_total",
                    method="GET", route="/healthz", status="200") or 0
    for _ in range(40):  # a new connection each: the two gunicorn workers share them out
        assert requests.get(f"{gunicorn}/healthz", timeout=10, headers={"Connection": "close"}).status_code == 200
    for _ in range(4):  # whichever worker answers the scrape, it reports both workers' requests
        samples = scrape(requests.get(f"{gunicorn}/metrics", timeout=10, headers={"Connection": "close"}).text)
        counts[len(counts)] = sample(samples, "licence_http_requests_total", method="GET", route="/healthz",
                                     status="200")
    assert set(counts.values()) == {before + 40}
    # The counters live in the multiprocess directory under VAR_DIR, a file per gunicorn worker.
    assert list((tmp_path / "var" / "prometheus-web").glob("counter_*.db"))
    assert sample(samples, "licence_outbox_lag_seconds") == 0


# -- a stage worker -----------------------------------------------------------------------------


@pytest.fixture
def run_worker(services) -> Iterator[Any]:
    running: list[tuple[threading.Thread, threading.Event]] = []

    def start(worker: StageWorker) -> None:
        stop = threading.Event()
        thread = threading.Thread(target=worker.configure(services).run, args=(services.broker_url, stop),
                                  daemon=True)
        thread.start()
        running.append((thread, stop))

    yield start
    for thread, stop in running:
        stop.set()
        thread.join(30)


def publish(services, body: Any) -> None:
    with Connection(services.broker_url) as conn:
        declare_topology(conn)
        Producer(conn.default_channel).publish(body, exchange=events_exchange, routing_key=RoutingKeys.RECEIVED,
                                               serializer="json")


def counts(stage: str) -> dict[str, float]:
    return {"retries": value("licence_stage_retries_total", stage=stage),
            "dead_letters": value("licence_dead_letters_total", stage=stage),
            "retry": value("licence_stage_messages_total", stage=stage, outcome="retry"),
            "dead_letter": value("licence_stage_messages_total", stage=stage, outcome="dead_letter"),
            "timed": value("licence_stage_duration_seconds_count", stage=stage)}


def grown(before: dict[str, float]) -> dict[str, float]:
    # The registry is this process's: earlier tests' counts are in it too.
    return {k: v - before[k] for k, v in counts("checks").items()}


def test_a_stage_worker_counts_its_retries_and_times_each_message(services, run_worker):
    def register_down(event: Event) -> None:
        raise RegisterUnavailable("population register: read timed out")

    before = counts("checks")
    run_worker(StageWorker("checks", register_down))
    publish(services, Event(type=RoutingKeys.RECEIVED, application_id=str(uuid.uuid4())).to_dict())

    # The retry is counted as it is parked; the message is acknowledged after that, and only then are its
    # time and outcome counted (metrics.handling_message): wait for the last of them, the outcome.
    wait_for(lambda: grown(before)["retry"] == 1, timeout=60, message="the message counted as a retry")
    assert grown(before) == {"retries": 1, "dead_letters": 0, "retry": 1, "dead_letter": 0, "timed": 1}
    with services.session_factory() as s:
        assert s.query(models.ScheduledRetry).count() == 1


def test_a_stage_worker_counts_a_message_it_dead_letters(services, run_worker):
    before = counts("checks")
    run_worker(StageWorker("checks", lambda event: None))
    publish(services, {"type": RoutingKeys.RECEIVED})  # no application id: it can never be handled

    # As for a retry: the dead letter is counted as it is written, the message's time and outcome only
    # after its acknowledgement.
    wait_for(lambda: grown(before)["dead_letter"] == 1, timeout=60, message="the message counted as a dead letter")
    assert grown(before) == {"retries": 0, "dead_letters": 1, "retry": 0, "dead_letter": 1, "timed": 1}
    with services.session_factory() as s:
        assert s.query(models.DeadLetter).count() == 1
