"""Pipeline benchmark: N applications submitted and paid through the API, every stage a process of
its own (the Procfile's: gunicorn web, relay, checks, fee, conversion, issuance, portal_sync), timed
from the first submission until the last application is `issued` and its final DongBoHoSoMC call
(status 9) acknowledged by a local portal stand-in (bench/portal_stand_in.py, its own process).

Baselines in the same run, over the same Redis: a bare kombu loop publishing and consuming (with
acknowledgement) as many messages as the pipeline published events; and the issue's own yardstick,
"the obvious Celery implementation of the same five steps" (bench/celery_chain.py), with the same
bodies. Prints applications/s end to
end, broker round trips per application (Redis commands processed during the run, the stage workers'
polling included, over N), the peak RSS of each process type (VmHWM), and finally

    pipeline: 123.4 applications/s end to end

    .venv/bin/python bench/bench_pipeline.py [--count 10000] [--postgres [URL]]

--postgres runs on PostgreSQL (URL, or LICENCE_TEST_POSTGRES_URL) in a schema of its own, dropped
after. Rate limits are off here (the limiter's Redis calls would be counted as broker round trips);
bench_submit.py measures the API with them on.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    ROOT,
    children,
    citizen_id,
    cpu_seconds,
    dossier_id,
    free_port,
    full_name,
    gunicorn,
    licence_number,
    redis_server,
    service_env,
    token,
    workdir,
)

STAGE_PROCESSES = ("relay", "checks", "fee", "conversion", "issuance", "portal_sync")


@contextmanager
def database(tmp: Path, postgres: str | None) -> Iterator[str]:
    from licence_service.store.migrate import upgrade

    if not postgres:
        url = f"sqlite:///{tmp / 'licence.db'}"
        upgrade(url)
        yield url
        return
    import sqlalchemy as sa

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(postgres)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = f"{postgres}{'&' if '?' in postgres else '?'}options=-csearch_path%3D{schema}"
    try:
        upgrade(url)
        yield url
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def holder(n: int) -> dict[str, str]:
    return {"citizen_id": citizen_id(n), "full_name": full_name(n), "date_of_birth": "1989-05-17", "sex": "male"}


def seed(url: str, count: int) -> None:
    """Each application's citizen, licence (B2, expiring) and health certificate in the registers."""
    import datetime as dt

    from licence_service.bootstrap import build_services
    from licence_service.config import load_settings
    from licence_service.registers.national import put_licence
    from licence_service.store import models

    services = build_services(load_settings({"DATABASE_URL": url, "TOKEN_SECRET": "x" * 40,
                                             "REDIS_URL": "redis://127.0.0.1:1/0"}))
    today = dt.date.today()
    for start in range(0, count, 500):
        with services.uow() as uow:
            for n in range(start, min(count, start + 500)):
                person = holder(n)
                put_licence(uow, number=licence_number(n), holder=person, regime="vn-2017", issued_on="2017-01-10",
                            classes=[{"code": "B2", "passed_on": "2017-01-10",
                                      "valid_until": (today + dt.timedelta(days=60)).isoformat()}],
                            card_serial=f"BN{n:010d}")
                uow.sandbox.merge(models.SandboxPopulationRecord(
                    citizen_id=person["citizen_id"], full_name=person["full_name"],
                    date_of_birth=dt.date(1989, 5, 17), sex="male"))
                uow.sandbox.merge(models.SandboxHealthCertificate(
                    number=f"KSK-{n:09d}", citizen_id=person["citizen_id"], issued_on=today - dt.timedelta(days=30),
                    facility_code="01-BVBM", fit_for=["B", "C1"]))
            uow.commit()
    services.engine.dispose()


def body(n: int) -> dict[str, Any]:
    import datetime as dt

    from licence_service.domain.regime import LOCAL_TZ
    from tests.support.data import application_for

    return application_for(holder(n), licence_number(n), dossier_id(n),
                           received_at=dt.datetime.now(LOCAL_TZ).isoformat(timespec="seconds"),
                           certificate={"number": f"KSK-{n:09d}",
                                        "issued_on": dt.date.today() - dt.timedelta(days=30),
                                        "fit_for": ["B", "C1"]})


def peak_rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def redis_commands(url: str) -> int:
    import redis

    client = redis.Redis.from_url(url)
    try:
        return int(client.info("stats")["total_commands_processed"])
    finally:
        client.close()


def redis_cpu_seconds(url: str) -> float:
    import redis

    client = redis.Redis.from_url(url)
    try:
        info = client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    finally:
        client.close()


def kombu_baseline(url: str, messages: int) -> float:
    """Messages/s of a bare kombu loop: publish `messages` persistent JSON messages to a queue, and
    consume and acknowledge them all, over the same Redis."""
    from kombu import Connection, Exchange, Queue

    exchange = Exchange("bench.baseline", type="direct", durable=True)
    queue = Queue("bench.baseline", exchange=exchange, routing_key="bench", durable=True)
    payload = {"type": "application.received", "application_id": str(uuid.uuid4()), "data": {},
               "event_id": str(uuid.uuid4()), "correlation_id": str(uuid.uuid4())}
    got = 0
    done = threading.Event()

    def consume() -> None:
        nonlocal got

        def on_message(_body: Any, message: Any) -> None:
            nonlocal got
            message.ack()
            got += 1
            if got >= messages:
                done.set()

        with Connection(url) as conn, conn.Consumer([queue], callbacks=[on_message], accept=["json"],
                                                    prefetch_count=10):
            while not done.is_set():
                try:
                    conn.drain_events(timeout=1)
                except TimeoutError:
                    pass

    with Connection(url) as conn:
        queue.bind(conn.default_channel).declare()
        consumer = threading.Thread(target=consume, daemon=True)
        started = time.perf_counter()
        consumer.start()
        producer = conn.Producer()
        for _ in range(messages):
            producer.publish(payload, exchange=exchange, routing_key="bench", serializer="json", delivery_mode=2)
        done.wait(600)
        elapsed = time.perf_counter() - started
    return messages / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10000, help="applications (default 10000)")
    parser.add_argument("--postgres", nargs="?", const=os.environ.get("LICENCE_TEST_POSTGRES_URL") or "",
                        default=None, metavar="URL", help="run on PostgreSQL (default LICENCE_TEST_POSTGRES_URL)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent API clients (default 8)")
    parser.add_argument("--timeout", type=float, default=3600, help="give up after this many seconds")
    parser.add_argument("--celery-count", type=int, default=None, metavar="N",
                        help="applications through the issue's plain Celery chain (bench/celery_chain.py) after "
                             "the service, as its same-run yardstick (default: --count; 0: skip it)")
    args = parser.parse_args()
    if args.postgres == "":
        print("--postgres needs a URL or LICENCE_TEST_POSTGRES_URL", file=sys.stderr)
        return 2
    import requests
    import sqlalchemy as sa

    with workdir("bench-pipeline-") as tmp, redis_server(tmp) as redis_url, database(tmp, args.postgres) as url:
        store = "PostgreSQL" if args.postgres else "SQLite"
        print(f"pipeline: {args.count} applications on {store}; seeding the registers", flush=True)
        seed(url, args.count)
        bodies = [json.dumps(body(n), ensure_ascii=False) for n in range(args.count)]
        portal_port = free_port()
        portal = subprocess.Popen([sys.executable, str(ROOT / "bench" / "portal_stand_in.py"), str(portal_port)])
        env = service_env(tmp / "var", url, redis_url, RATE_LIMIT="off", RELAY_POLL_SECONDS="0.05",
                          PORTAL_SYNC_URL=f"http://127.0.0.1:{portal_port}/DongBoHoSoMC",
                          PORTAL_SYNC_TOKEN="bench-token", PORTAL_SYNC_SECRET="bench-secret")
        logs = tmp / "logs"
        logs.mkdir()
        procs: dict[str, subprocess.Popen] = {}
        peaks: dict[str, int] = {}
        engine = sa.create_engine(url)
        try:
            for name in STAGE_PROCESSES:
                with open(logs / f"{name}.log", "wb") as out:
                    procs[name] = subprocess.Popen([sys.executable, "-m", "workers", name], cwd=ROOT, env=env,
                                                   stdout=out, stderr=subprocess.STDOUT)
            with gunicorn("licence_service:create_app()", env, logs / "web.log") as (base, web):
                headers = {"Authorization": f"Bearer {token('applications:submit', 'applications:read')}",
                           "Content-Type": "application/json"}
                local = threading.local()

                def post(path: str, data: str) -> Any:
                    session = getattr(local, "session", None) or requests.Session()
                    local.session = session
                    response = session.post(base + path, data=data.encode(), headers=headers, timeout=60)
                    if response.status_code not in (200, 202):
                        raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
                    return response

                def submit(text: str) -> str:
                    return post("/api/v1/applications", text).json()["id"]

                payment = json.dumps({"amount": 135000, "currency": "VND", "paid_at": "2026-11-27T10:30:00+07:00"})
                paid: set[str] = set()
                stop = threading.Event()

                def pay_when_due(pool: ThreadPoolExecutor) -> None:
                    # The payer's loop: whatever awaits payment is paid, as the portal's payment
                    # gateway would, each once.
                    while not stop.is_set():
                        with engine.connect() as conn:
                            due = [r[0] for r in conn.execute(sa.text(
                                "SELECT id FROM applications WHERE status = 'awaiting_payment'"))]
                        todo = [a for a in due if a not in paid]
                        paid.update(todo)
                        list(pool.map(lambda a: post(f"/api/v1/applications/{a}/payments", json.dumps(
                            {**json.loads(payment), "transaction_id": f"PAYGOV-{a[:18]}"})), todo))
                        stop.wait(0.2)

                def finished() -> int:
                    with engine.connect() as conn:
                        return conn.execute(sa.text("SELECT count(*) FROM applications WHERE status = 'issued' "
                                                    "AND portal_acked_status = 9")).scalar_one()

                commands_before = redis_commands(redis_url)
                redis_cpu_before = redis_cpu_seconds(redis_url)
                # What each process used starting up (imports, connections; ~0.5 s each) is not
                # the applications': only the CPU used from here on is counted.
                def service_cpu() -> dict[str, float]:
                    used = {name: cpu_seconds(proc.pid) for name, proc in procs.items()}
                    used["web (gunicorn workers, all)"] = sum(cpu_seconds(p) for p in children(web.pid))
                    used["portal stand-in"] = cpu_seconds(portal.pid)
                    return used

                cpu_before = service_cpu()
                started = time.perf_counter()
                generator_cpu = time.process_time()
                with ThreadPoolExecutor(args.clients) as pool, ThreadPoolExecutor(args.clients) as payers:
                    payer = threading.Thread(target=pay_when_due, args=(payers,), daemon=True)
                    payer.start()
                    list(pool.map(submit, bodies))
                    submitted = time.perf_counter() - started
                    print(f"pipeline: {args.count} submitted in {submitted:.1f} s "
                          f"({args.count / submitted:.1f}/s)", flush=True)
                    last_report = time.monotonic()
                    while (done := finished()) < args.count:
                        if time.perf_counter() - started > args.timeout:
                            raise SystemExit(f"pipeline: only {done} of {args.count} done after {args.timeout} s; "
                                             f"logs in {logs}")
                        if time.monotonic() - last_report > 10:
                            print(f"pipeline: {done} issued and acknowledged", flush=True)
                            last_report = time.monotonic()
                        for name, proc in procs.items():  # peaks as they happen: a process may be gone later
                            peaks[name] = max(peaks.get(name, 0), peak_rss_kib(proc.pid))
                        time.sleep(0.5)
                    elapsed = time.perf_counter() - started
                    generator_cpu = time.process_time() - generator_cpu
                    stop.set()
                    payer.join(30)
                commands = redis_commands(redis_url) - commands_before
                for name, proc in procs.items():
                    peaks[name] = max(peaks.get(name, 0), peak_rss_kib(proc.pid))
                # Where the CPU went, read before the processes stop: the figure to compare with
                # the two cores' budget per application (2 s / the target rate).
                cpu = {name: seconds - cpu_before[name] for name, seconds in service_cpu().items()}
                portal_counts = requests.get(f"http://127.0.0.1:{portal_port}/counts", timeout=10).json()
                cpu["redis-server"] = redis_cpu_seconds(redis_url) - redis_cpu_before
                peaks["web (gunicorn master)"] = peak_rss_kib(web.pid)
                peaks["web (per gunicorn worker, max)"] = max((peak_rss_kib(p) for p in children(web.pid)),
                                                              default=0)
            with engine.connect() as conn:
                events = conn.execute(sa.text("SELECT count(*) FROM outbox")).scalar_one()
        finally:
            for proc in procs.values():
                proc.terminate()
            for proc in procs.values():
                proc.wait(30)
            portal.terminate()
            portal.wait(10)
            engine.dispose()
        baseline = kombu_baseline(redis_url, events)
        celery_count = args.count if args.celery_count is None else min(args.celery_count, args.count)
        chain = None
        if celery_count:
            from bench import celery_chain

            print(f"celery chain: {celery_count} applications", flush=True)
            chain = celery_chain.run(bodies[:celery_count], tmp / "celery-chain", redis_url, args.clients,
                                     args.timeout)

    rate = args.count / elapsed
    print(f"pipeline: {args.count} applications issued and acknowledged in {elapsed:.1f} s on {store}")
    print(f"pipeline: {events} events published, {events / args.count:.1f} per application")
    print(f"pipeline: {commands / args.count:.1f} broker round trips (Redis commands) per application")
    calls, entries = portal_counts["calls"], portal_counts["entries"]
    print(f"portal: {calls} DongBoHoSoMC calls carrying {entries} status updates, "
          f"{calls / args.count:.2f} calls per application ({entries / max(calls, 1):.1f} updates per call)")
    print(f"baseline: bare kombu publish-and-consume, {baseline:.0f} messages/s over the same Redis; "
          f"the pipeline moved {events / elapsed:.0f} events/s ({events / elapsed / baseline:.2f} of it)")
    if chain is not None:
        print(f"baseline: the issue's plain Celery chain (Flask + marshmallow submit, check | fee | convert | issue | "
              f"sync, acks_late, two worker processes), {celery_count} applications: submitted at "
              f"{chain['submitted_per_second']:.1f}/s, {chain['per_second']:.1f} applications/s end to end, "
              f"{chain['cpu_ms_per_application']:.1f} ms of CPU per application; "
              f"the pipeline: {rate / chain['per_second']:.2f} of it (the issue's target, 150 against its ~100: 1.5)")
    for name, kib in peaks.items():
        print(f"peak RSS: {name:<32} {kib / 1024:7.1f} MiB")
    for name, seconds in sorted(cpu.items(), key=lambda kv: -kv[1]):
        print(f"CPU:      {name:<32} {seconds:7.1f} s  {seconds * 1000 / args.count:6.1f} ms per application")
    print(f"CPU:      {'all of the above':<32} {sum(cpu.values()):7.1f} s  "
          f"{sum(cpu.values()) * 1000 / args.count:6.1f} ms per application")
    # Not the service's: on two shared cores it is CPU the service did not get.
    print(f"CPU:      {'(load generator: this process)':<32} {generator_cpu:7.1f} s  "
          f"{generator_cpu * 1000 / args.count:6.1f} ms per application")
    print(f"pipeline: {rate:.1f} applications/s end to end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
