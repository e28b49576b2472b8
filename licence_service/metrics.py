"""Prometheus metrics: the API's `/metrics`, each worker's own endpoint, and gauges read on scrape.

Where each process's figures are exposed:

- The web process (gunicorn, several worker processes): every gunicorn worker writes its counters into
  PROMETHEUS_MULTIPROC_DIR (licence_service.gunicorn_conf sets it to `$VAR_DIR/prometheus-web` and
  empties it when gunicorn starts; its `child_exit` hook retires a dead worker's files), and
  `/metrics`, whichever worker answers it, adds them all up. Without that variable (tests, `flask
  run`) the process's own registry is served.
- Each worker process (relay, sweeper, the stages) serves its own registry with prometheus-client's
  `start_http_server` when METRICS_PORT is set: process number k of `workers.__main__.PROCESSES`
  listens on METRICS_PORT + k (relay +0, sweeper +1, checks +2, fee +3, conversion +4, issuance +5,
  portal_sync +6), so one setting serves a whole Procfile. METRICS_PORT=0 takes a free port instead.
  Either way the port is written to `$VAR_DIR/metrics/<process>.port` for a scraper's discovery.
  The workers are kept out of the multiprocess directory: it would add their stage counters into
  the web process's, and a stage's figures belong to that stage's process.
- Backlogs — queue depths, outbox lag (age of the oldest unsent outbox row), portal-sync lag (age of
  the oldest pending DongBoHoSoMC call), parked retries and dead letters not yet replayed — are
  computed from the database and the broker when `/metrics` is scraped (BacklogCollector), so they
  are right however many processes run and need no process to keep them up to date.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from licence_service.logs import log_context
from licence_service.store import models

if TYPE_CHECKING:
    from flask import Flask, Response

    from licence_service.bootstrap import Services

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Request and stage times sit between a millisecond (a duplicate event returning early) and the
# seconds of a register call timing out.
SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

HTTP_REQUESTS = Counter("licence_http_requests", "HTTP requests answered, by route template and status",
                        ["method", "route", "status"])
HTTP_SECONDS = Histogram("licence_http_request_duration_seconds", "Time to answer an HTTP request",
                         ["method", "route"], buckets=SECONDS_BUCKETS)
STAGE_SECONDS = Histogram("licence_stage_duration_seconds",
                          "Time a stage worker spent on one message, its failure handling included",
                          ["stage"], buckets=SECONDS_BUCKETS)
STAGE_MESSAGES = Counter("licence_stage_messages", "Messages a stage worker took, by outcome (handled, "
                         "retry: parked for a later attempt, dead_letter: given up)", ["stage", "outcome"])
RETRIES = Counter("licence_stage_retries", "Failed attempts parked for a retry", ["stage"])
DEAD_LETTERS = Counter("licence_dead_letters", "Messages dead-lettered (retry limit reached or not retryable)",
                       ["stage"])
RELAY_PUBLISHED = Counter("licence_relay_published", "Outbox events the relay published", ["routing_key"])


# -- the web process ----------------------------------------------------------------------------


def init_app(app: Flask) -> None:
    """Count and time every request, and serve `/metrics`."""
    from flask import g, request

    @app.before_request
    def _start_timer() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _count(response: Response) -> Response:
        # The route's template, not the path: one series per endpoint, not one per application id.
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        started = g.get("metrics_started")
        if started is not None:
            HTTP_SECONDS.labels(request.method, route).observe(time.perf_counter() - started)
        return response

    backlog = BacklogCollector(lambda: app.extensions["licence_service"])

    def metrics_view() -> Response:
        return app.response_class(exposition(backlog), mimetype=CONTENT_TYPE_LATEST)

    app.add_url_rule("/metrics", "metrics", metrics_view, methods=["GET"])


def exposition(*extra: Collector) -> bytes:
    """This process's metrics (all gunicorn workers' in multiprocess mode), then `extra`'s."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    on_scrape = CollectorRegistry(auto_describe=False)
    for collector in extra:
        on_scrape.register(collector)
    return text + generate_latest(on_scrape)


def use_multiprocess_dir(path: Path) -> None:
    """Keep this process's metrics, and its children's, in the multiprocess directory `path`.

    prometheus-client reads PROMETHEUS_MULTIPROC_DIR once, when first imported, and gunicorn has
    imported it (with this package) before its config file runs: its choice of value store is made
    again here. Every metric here has labels, so none has made a value yet."""
    os.environ[MULTIPROC_ENV] = str(path)
    path.mkdir(parents=True, exist_ok=True)
    from prometheus_client import values

    values.ValueClass = values.get_value_class()


def prepare_multiproc_dir(path: Path) -> None:
    """Empty the multiprocess directory at gunicorn's start: files left by an earlier run would be
    added to this one's counts."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)


def retire_process(pid: int) -> None:
    """gunicorn's child_exit hook: a dead worker's live gauges stop counting."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)


# -- backlogs, computed on scrape ---------------------------------------------------------------


def _age(oldest: dt.datetime | None, now: dt.datetime) -> float:
    if oldest is None:
        return 0.0
    if oldest.tzinfo is None:  # SQLite hands back what was stored; the service stores UTC
        oldest = oldest.replace(tzinfo=dt.UTC)
    return max(0.0, (now - oldest).total_seconds())


class BacklogCollector(Collector):
    """Queue depths and the age of the oldest waiting work, read from the database and the broker
    when scraped. A part that cannot be read is left out of that scrape (and logged), not reported
    as zero: an empty backlog and an unreachable broker must not look the same."""

    def __init__(self, services: Callable[[], Services]) -> None:
        self._services = services

    def collect(self) -> Iterator[GaugeMetricFamily]:
        services = self._services()
        try:
            yield from self._database(services)
        except Exception as exc:
            log.warning("metrics: cannot read the backlogs from the database: %s", exc)
        try:
            yield self._queues(services)
        except Exception as exc:
            log.warning("metrics: cannot read the queue depths from the broker: %s", exc)

    def _database(self, services: Services) -> Iterator[GaugeMetricFamily]:
        now = models.utcnow()
        with services.session_factory() as session:
            out_oldest, out_count = session.execute(
                select(func.min(models.OutboxMessage.created_at), func.count())
                .where(models.OutboxMessage.sent_at.is_(None))).one()
            sync_oldest, sync_count = session.execute(
                select(func.min(models.PortalSyncItem.created_at), func.count())
                .where(models.PortalSyncItem.state == "pending")).one()
            retries = session.scalar(select(func.count()).select_from(models.ScheduledRetry))
            letters = session.execute(
                select(models.DeadLetter.stage, func.count()).where(models.DeadLetter.replayed_at.is_(None))
                .group_by(models.DeadLetter.stage)).all()
        yield GaugeMetricFamily("licence_outbox_lag_seconds", "Age of the oldest outbox event not yet published "
                                "(0 when all are)", value=_age(out_oldest, now))
        yield GaugeMetricFamily("licence_outbox_unsent", "Outbox events not yet published", value=out_count)
        yield GaugeMetricFamily("licence_portal_sync_lag_seconds", "Age of the oldest DongBoHoSoMC call still "
                                "owed to the portal (0 when none is)", value=_age(sync_oldest, now))
        yield GaugeMetricFamily("licence_portal_sync_pending", "DongBoHoSoMC calls still owed to the portal",
                                value=sync_count)
        yield GaugeMetricFamily("licence_scheduled_retries", "Failed messages waiting out their backoff",
                                value=retries or 0)
        family = GaugeMetricFamily("licence_dead_letters_waiting", "Dead letters not yet replayed",
                                   labels=["stage"])
        for stage, count in letters:
            family.add_metric([stage], count)
        yield family

    def _queues(self, services: Services) -> GaugeMetricFamily:
        from kombu import Connection

        from licence_service.messaging.names import STAGE_BINDINGS

        family = GaugeMetricFamily("licence_queue_depth", "Messages ready in a stage's queue", labels=["queue"])
        with Connection(services.broker_url, connect_timeout=2, transport_options={"max_retries": 0}) as conn:
            channel = conn.default_channel
            for queue, _keys in STAGE_BINDINGS.values():
                family.add_metric([queue], _queue_size(channel, queue))
        return family


def _queue_size(channel: Any, queue: str) -> int:
    size = getattr(channel, "_size", None)
    if size is not None:
        # kombu's virtual transports (Redis): a passive declare of an empty queue fails there, as an
        # empty list is no key at all, so the list lengths are asked for directly.
        return int(size(queue))
    from amqp.exceptions import NotFound

    try:
        return int(channel.queue_declare(queue=queue, passive=True).message_count)
    except NotFound:
        return 0


# -- worker processes ---------------------------------------------------------------------------


def serve_worker_metrics(process: str, offset: int, var_dir: Path, env: dict[str, str] | None = None) -> int | None:
    """Serve this worker process's metrics when METRICS_PORT is set (see the module's docstring);
    returns the port, or None when metrics are off."""
    env = os.environ if env is None else env
    base = env.get("METRICS_PORT", "").strip()
    if not base:
        return None
    port = 0 if int(base) == 0 else int(base) + offset
    server, _thread = start_http_server(port, addr=env.get("METRICS_HOST", "127.0.0.1"))
    port = server.server_port
    ports = var_dir / "metrics"
    ports.mkdir(parents=True, exist_ok=True)
    (ports / f"{process}.port").write_text(f"{port}\n")
    log.info("%s: metrics on port %d", process, port)
    return port


def message_handled(stage: str, seconds: float, outcome: str) -> None:
    STAGE_SECONDS.labels(stage).observe(seconds)
    STAGE_MESSAGES.labels(stage, outcome).inc()




# -- one message, in a stage worker -------------------------------------------------------------

_outcome: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("message_outcome", default=None)


@contextlib.contextmanager
def handling_message(stage: str, body: Any, *, started: float | None = None) -> Iterator[None]:
    """Around one message: every line logged meanwhile carries its application and correlation ids
    (licence_service.logs), and its time and outcome are counted. Ends with one line saying what was
    handled, so the journey of an application shows in each stage's log even when its handler says
    nothing. A message handled in a batch passes when the batch began (time.perf_counter())."""
    fields = body if isinstance(body, dict) else {}
    ids = {k: str(fields[k]) for k in ("application_id", "correlation_id") if fields.get(k)}
    outcome: list[str] = []
    token = _outcome.set(outcome)
    started = time.perf_counter() if started is None else started
    try:
        with log_context(**ids):
            yield
            seconds = time.perf_counter() - started
            result = outcome[-1] if outcome else "handled"
            message_handled(stage, seconds, result)
            log.info("%s: %s %s in %.1f ms", stage, fields.get("type", "message"), result, seconds * 1000,
                     extra={"event_id": fields.get("event_id"), "duration_ms": round(seconds * 1000, 1)})
    finally:
        _outcome.reset(token)


def failure_recorded(stage: str, *, retry: bool) -> None:
    (RETRIES if retry else DEAD_LETTERS).labels(stage).inc()
    outcome = _outcome.get()
    if outcome is not None:
        outcome.append("retry" if retry else "dead_letter")


def event_published(payload: Any, routing_key: str) -> None:
    """The relay published an outbox event: counted, and logged with the event's ids."""
    RELAY_PUBLISHED.labels(routing_key).inc()
    fields = payload if isinstance(payload, dict) else {}
    log.info("relay: published %s", routing_key,
             extra={"application_id": fields.get("application_id"), "correlation_id": fields.get("correlation_id"),
                    "event_id": fields.get("event_id")})
