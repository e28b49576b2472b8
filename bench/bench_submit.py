"""Submit benchmark: POST /api/v1/applications under wrk, against a bare Flask JSON-echo app served the
same way in the same run.

Both apps run under gunicorn exactly as the Procfile's web process does (its config, WEB_CONCURRENCY
workers, default 2), on SQLite and a throwaway Redis (the rate limiter's, as deployed), with wrk on
the same machine driving the same connections for the same time. Every request is a distinct,
realistic application (bench/submit.lua: its own dossier id, licence, citizen ID and name, the
portal's sample photo). Prints each side's throughput, p99 and errors, then

    submit/echo ratio: 0.62 (p99 31 ms)

where the p99 is the service's. Target (issue 8): ratio >= 0.5 with p99 <= 50 ms and no errors.
A third app, served and driven the same way, is the submit of the issue's plain Celery chain
(bench/celery_chain.py: Flask, the service's marshmallow schema, one SQLite insert, the chain sent),
the issue's other yardstick ("about 2,100 submits/s alone"). A fourth, the floor
(bench/floor_app.py), does only what any submit of this shape must: the marshmallow load and one
SQLite insert; its ratio to echo bounds what any complete submit can reach on the machine of the day.

    .venv/bin/python bench/bench_submit.py [--duration 15] [--connections 4] [--threads 2] [--no-floor]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    ROOT,
    gunicorn,
    redis_server,
    service_env,
    token,
    workdir,
)

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def template(path: Path) -> None:
    from tests.support.data import application_body

    body = application_body(portal_dossier_id="__DOSSIER__", licence={"number": "__LICENCE__"})
    body["applicant"].update(citizen_id="__CITIZEN__", full_name="__NAME__")
    path.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")


def wrk(base: str, args: argparse.Namespace, env: dict[str, str]) -> dict[str, float]:
    out = subprocess.run(["wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", f"{args.duration}s",
                          "--latency", "-s", str(ROOT / "bench" / "submit.lua"), base],
                         env=env, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    # gunicorn's sync workers close each connection after answering; wrk counts the reads that
    # find it closed as read errors without any request failing, so only the others count here.
    errors = (int(non_2xx.group(1)) if non_2xx else 0) + (
        sum(int(socket_errors.group(i)) for i in (1, 3, 4)) if socket_errors else 0)
    return {"rps": rps, "p99_ms": float(p99.group(1)) * UNITS[p99.group(2)], "requests": total, "errors": errors}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=15, help="seconds of load per app (default 15)")
    parser.add_argument("--connections", type=int, default=4, help="wrk connections (default 4)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "2")),
                        help="gunicorn workers for both apps (default WEB_CONCURRENCY or 2)")
    parser.add_argument("--no-celery-chain", dest="celery_chain", action="store_false",
                        help="skip the third app: the submit of the issue's plain Celery chain (bench/celery_chain.py)")
    parser.add_argument("--no-floor", dest="floor", action="store_false",
                        help="skip the fourth app: the least a submit of this shape can do (bench/floor_app.py)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2

    from licence_service.store.migrate import upgrade

    with workdir("bench-submit-") as tmp, redis_server(tmp) as redis_url:
        database = tmp / "licence.db"
        upgrade(f"sqlite:///{database}")
        env = service_env(tmp / "var", f"sqlite:///{database}", redis_url)
        template(tmp / "body.json")
        wrk_env = {**os.environ, "BENCH_TEMPLATE": str(tmp / "body.json"),
                   "BENCH_TOKEN": token("applications:submit", "applications:read")}
        results = {}
        apps = [("echo", "bench.echo_app:create_app()", env), ("submit", "licence_service:create_app()", env)]
        if args.celery_chain:
            from bench.celery_chain import broker_url, create_schema

            create_schema(tmp / "chain.db")
            # Its submits publish to the chain's broker (nothing consumes them).
            apps.append(("chain", "bench.celery_chain:create_app()",
                         {**env, "CHAIN_DB": str(tmp / "chain.db"), "CHAIN_BROKER_URL": broker_url(redis_url)}))
        if args.floor:
            from bench.floor_app import create_schema as create_floor

            create_floor(tmp / "floor.db")
            apps.append(("floor", "bench.floor_app:create_app()", {**env, "FLOOR_DB": str(tmp / "floor.db")}))
        for name, app, app_env in apps:
            with gunicorn(app, app_env, tmp / f"{name}.log", workers=args.workers) as (base, _proc):
                results[name] = wrk(base, args, wrk_env)
            r = results[name]
            print(f"{name:>6}: {r['rps']:8.1f} requests/s, p99 {r['p99_ms']:.1f} ms, {r['requests']:.0f} requests, "
                  f"{r['errors']:.0f} errors")
        with sqlite3.connect(database) as db:
            stored = db.execute("SELECT count(*) FROM applications").fetchone()[0]
        print(f"submit: {stored} applications stored")
        if results["submit"]["errors"]:
            print(f"submit: errors — see {tmp / 'submit.log'}", file=sys.stderr)
    submit, echo = results["submit"], results["echo"]
    if "chain" in results:
        chain = results["chain"]
        print(f"baseline: the issue's plain Celery chain's submit (Flask + marshmallow, one SQLite insert, the "
              f"chain sent): {chain['rps'] / echo['rps']:.2f} of echo; the service's submit: "
              f"{submit['rps'] / chain['rps']:.2f} of it")
    if "floor" in results:
        floor = results["floor"]
        # The CPU a request may cost at the target ratio, less what the floor's costs: all the service
        # may spend on what it does beyond validating and storing a body (every core busy, so a
        # request costs cores / throughput).
        cores = os.cpu_count() or 2
        headroom_us = (cores / (0.5 * echo["rps"]) - cores / floor["rps"]) * 1e6
        print(f"floor: the least a submit of this shape does (Flask, the marshmallow load, one SQLite insert): "
              f"{floor['rps'] / echo['rps']:.2f} of echo; at 0.5 of echo a submit may cost "
              f"{headroom_us:.0f} µs of CPU more than it does")
    print(f"submit/echo ratio: {submit['rps'] / echo['rps']:.2f} (p99 {submit['p99_ms']:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
