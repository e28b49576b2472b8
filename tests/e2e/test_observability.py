"""One application's whole journey in the logs and the metrics of real processes: the relay and every
stage worker as `python -m workers <stage>`, real Redis, a real database, a local portal stand-in.

- `grep <application id>` over every process's log (JSON lines, licence_service.logs) finds that
  application's lines in each of them, all carrying the correlation id the portal sent with its
  requests, and in the order the application went through the stages.
- Each worker process serves its own Prometheus metrics (METRICS_PORT; licence_service.metrics)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from licence_service.app import create_app
from licence_service.bootstrap import build_services
from licence_service.logs import ContextFilter, JsonFormatter, PersonalDataFilter
from licence_service.messaging.names import stage_for_routing_key
from tests.conftest import TOKEN_SECRET, make_settings
from tests.support.data import application_body, seed_an
from tests.support.processes import ALL_PROCESSES, WorkerProcesses
from tests.support.servers import PortalStandIn, wait_for

CORRELATION_ID = "portal-G01.99-20261127-0000123"


@pytest.fixture
def journey(tmp_path: Path, any_database_url: str, redis_url: str,
            portal_stand_in: PortalStandIn) -> Iterator[dict[str, Any]]:
    logs = tmp_path / "logs"
    env = {"DATABASE_URL": any_database_url, "REDIS_URL": redis_url, "VAR_DIR": str(tmp_path / "var"),
           "TOKEN_SECRET": TOKEN_SECRET, "PORTAL_SYNC_URL": portal_stand_in.url,
           "PORTAL_SYNC_TOKEN": "portal-sync-token", "PORTAL_SYNC_SECRET": "portal-sync-secret",
           "RELAY_POLL_SECONDS": "0.05", "METRICS_PORT": "0"}
    services = build_services(make_settings(tmp_path, any_database_url, redis_url))
    seed_an(services.uow())
    workers = WorkerProcesses(env, logs).start()
    # The API runs in this process: its log goes to logs/api.log the way gunicorn's config writes it.
    api_log = logging.FileHandler(logs / "api.log", encoding="utf-8")
    api_log.setFormatter(JsonFormatter("web"))
    api_log.addFilter(PersonalDataFilter())
    api_log.addFilter(ContextFilter())
    root = logging.getLogger()
    root.addHandler(api_log)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        yield {"client": create_app(services=services).test_client(), "workers": workers, "logs": logs,
               "var": tmp_path / "var"}
    finally:
        root.removeHandler(api_log)
        root.setLevel(level)
        api_log.close()
        workers.stop()
        services.engine.dispose()


def run_to_issued(journey: dict[str, Any], headers: dict[str, str]) -> str:
    """Submit and pay one application, as the portal does, both requests with its correlation id;
    wait until it is issued and the portal has acknowledged status 9. Returns its id."""
    client = journey["client"]
    headers = {**headers, "X-Correlation-ID": CORRELATION_ID}
    try:
        created = client.post("/api/v1/applications", json=application_body(), headers=headers)
        assert created.status_code == 202, created.get_data(as_text=True)
        assert created.headers["X-Correlation-ID"] == CORRELATION_ID
        url = created.get_json()["links"]["self"]

        def status() -> dict[str, Any]:
            return client.get(url, headers=headers).get_json()

        wait_for(lambda: status()["status"] == "awaiting_payment", timeout=90, message="awaiting_payment")
        paid = client.post(f"{url}/payments", headers=headers, json={
            "transaction_id": "PAYGOV-OBS-1", "amount": 135000, "currency": "VND",
            "paid_at": "2026-11-27T10:30:00+07:00"})
        assert paid.status_code == 202, paid.get_data(as_text=True)
        wait_for(lambda: status()["status"] == "issued", timeout=90, message="issued")
        wait_for(lambda: status()["portal_sync"]["acknowledged_portal_status"] == 9, timeout=60,
                 message="the portal's acknowledgement of status 9")
    except AssertionError:
        print(journey["workers"].logs())
        raise
    return created.get_json()["id"]


def lines_about(log: Path, application_id: str) -> list[dict[str, Any]]:
    """What `grep <application id> <log>` finds, as JSON objects."""
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()
            if application_id in line and line.startswith("{")]


def test_every_process_logs_the_application_with_the_portals_correlation_id_in_journey_order(
        journey, portal_headers):
    application_id = run_to_issued(journey, portal_headers)
    # A process's last line may still be on its way to the file after the portal's acknowledgement.
    logs = journey["logs"]
    wait_for(lambda: all(lines_about(logs / f"{name}.log", application_id) for name in ALL_PROCESSES),
             timeout=30, message="a line about the application in every process's log")

    found = {name: lines_about(logs / f"{name}.log", application_id) for name in (*ALL_PROCESSES, "api")}
    for name, lines in found.items():
        assert lines, f"{name}.log has no line about {application_id}"
        for line in lines:
            assert line["application_id"] == application_id, (name, line)
            assert line["correlation_id"] == CORRELATION_ID, (name, line)
    # The API's lines: the submission (named by the Location it returned), each status read, the payment.
    assert any(line.get("method") == "POST" and line.get("status") == 202
               and line.get("path") == "/api/v1/applications" for line in found["api"])
    assert any(line.get("method") == "GET" and line.get("status") == 200 for line in found["api"])

    # Merged and ordered by time, the lines tell the journey: each stage after the one before it.
    merged = sorted((line for lines in found.values() for line in lines), key=lambda line: line["at"])
    first = {}
    for position, line in enumerate(merged):
        first.setdefault(line["process"], position)
    assert first["checks"] < first["fee"] < first["conversion"] < first["issuance"]
    assert first["web"] < first["relay"] < first["checks"]


def metrics_of(var_dir: Path, process: str) -> dict[tuple[str, frozenset], float]:
    port = int((var_dir / "metrics" / f"{process}.port").read_text())
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def published_by_relay(var_dir: Path) -> dict[str, float]:
    """The relay's count of published events, by routing key."""
    return {dict(labels)["routing_key"]: v for (name, labels), v in metrics_of(var_dir, "relay").items()
            if name == "licence_relay_published_total"}


def handled_by(var_dir: Path, stage: str) -> float:
    return metrics_of(var_dir, stage).get(("licence_stage_messages_total",
                                           frozenset({("stage", stage), ("outcome", "handled")})), 0)


def test_each_worker_process_serves_its_own_stage_metrics(journey, portal_headers):
    run_to_issued(journey, portal_headers)
    var_dir = journey["var"]
    stages = ("checks", "fee", "conversion", "issuance", "portal_sync")

    # The portal's acknowledgement of status 9 is not the last thing counted: the relay counts an event
    # only after publishing it, and a stage worker a message only after acknowledging it, so the relay's
    # count of status 9's change, the issuance's message and portal_sync's wake-up for status 9 may all
    # come after it. Wait until the relay has counted the journey's last event (status 9's change) and
    # each stage every event the relay published for it.
    def all_counted() -> bool:
        published = published_by_relay(var_dir)
        if published.get("application.status_changed", 0) < 5:
            return False
        owed = {stage: sum(n for key, n in published.items() if stage_for_routing_key(key) == stage)
                for stage in stages}
        return all(handled_by(var_dir, stage) >= owed[stage] for stage in stages)

    wait_for(all_counted, timeout=60, message="every published event counted by the relay and its stage")

    for stage in stages:
        samples = metrics_of(var_dir, stage)
        timed = samples.get(("licence_stage_duration_seconds_count", frozenset({("stage", stage)})), 0)
        handled = samples.get(("licence_stage_messages_total",
                               frozenset({("stage", stage), ("outcome", "handled")})), 0)
        assert timed >= 1 and handled == timed, (stage, timed, handled)
        # A stage's process reports its own stage only.
        assert all(dict(labels).get("stage") in (None, stage) for _name, labels in samples)
    published = published_by_relay(var_dir)
    assert published["application.received"] == 1 and published["application.paid"] == 1
    assert published["application.status_changed"] == 5  # statuses 1, 2, 6, 4, 9
