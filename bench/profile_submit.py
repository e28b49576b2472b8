"""Submits in one process, for profiling: the service's app (Flask test client) on a throwaway SQLite
database and Redis (the rate limiter's, limits on), with logging and metrics set up as gunicorn sets
them up (licence_service.gunicorn_conf, log lines to /dev/null). Prints the wall and CPU time per
submit, so runs can be compared on a busy machine by their CPU time.

    .venv/bin/python bench/profile_submit.py [--count 800]
    .venv/bin/py-spy record -r 500 -o submit.svg -- .venv/bin/python bench/profile_submit.py
    .venv/bin/python bench/profile_submit.py --pyinstrument   # needs `pip install pyinstrument`
    .venv/bin/python bench/profile_submit.py --pay            # payments instead of submits
"""

from __future__ import annotations

import argparse
import copy
import json
import logging.config
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RATE_LIMIT, TOKEN_SECRET, citizen_id, dossier_id, licence_number, redis_server, token, workdir  # noqa: E402

WARM_UP = 50


def body(n: int) -> bytes:
    from tests.support.data import application_body

    document = application_body(portal_dossier_id=dossier_id(n), licence={"number": licence_number(n)})
    document["applicant"]["citizen_id"] = citizen_id(n)
    return json.dumps(document, ensure_ascii=False).encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=800, help="submits timed, after a warm-up (default 800)")
    parser.add_argument("--pyinstrument", action="store_true", help="print a pyinstrument profile of them")
    parser.add_argument("--pay", action="store_true",
                        help="time payments instead: the submits are made awaiting payment (as checks would) and paid")
    args = parser.parse_args()

    from licence_service.store.migrate import upgrade

    with workdir("profile-submit-") as tmp, redis_server(tmp) as redis_url:
        database = tmp / "licence.db"
        upgrade(f"sqlite:///{database}")
        os.environ.update(VAR_DIR=str(tmp / "var"), DATABASE_URL=f"sqlite:///{database}", REDIS_URL=redis_url,
                          TOKEN_SECRET=TOKEN_SECRET, RATE_LIMIT=RATE_LIMIT)
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        from licence_service import create_app, gunicorn_conf

        config = copy.deepcopy(gunicorn_conf.logconfig_dict)
        with open(os.devnull, "w") as devnull:
            config["handlers"]["stderr"]["stream"] = devnull
            logging.config.dictConfig(config)
            gunicorn_conf.on_starting(None)
            client = create_app().test_client()
            headers = {"Authorization": f"Bearer {token('applications:submit')}", "Content-Type": "application/json"}
            bodies = [body(n) for n in range(WARM_UP + args.count)]

            def submit(n: int) -> None:
                response = client.post("/api/v1/applications", data=bodies[n], headers=headers)
                assert response.status_code == 202, response.get_data(as_text=True)

            ids: list[str] = []

            def pay(n: int) -> None:
                document = {"amount": 135000, "currency": "VND", "paid_at": "2026-11-27T10:30:00+07:00",
                            "transaction_id": f"PAYGOV-{n:012d}"}
                response = client.post(f"/api/v1/applications/{ids[n]}/payments", json=document, headers=headers)
                assert response.status_code == 202, response.get_data(as_text=True)

            step = submit
            if args.pay:
                for n in range(WARM_UP + args.count):
                    response = client.post("/api/v1/applications", data=bodies[n], headers=headers)
                    ids.append(response.get_json()["id"])
                import sqlalchemy as sa

                engine = sa.create_engine(f"sqlite:///{database}")
                with engine.begin() as conn:  # what the checks stage leaves behind
                    conn.execute(sa.text("UPDATE applications SET status = 'awaiting_payment', fee_amount = 135000"))
                engine.dispose()
                step = pay
            for n in range(WARM_UP):
                step(n)
            profiler = None
            if args.pyinstrument:
                from pyinstrument import Profiler

                profiler = Profiler(interval=0.0005)
                profiler.start()
            wall, cpu = time.perf_counter(), time.process_time()
            for n in range(WARM_UP, WARM_UP + args.count):
                step(n)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if profiler is not None:
                profiler.stop()
                print(profiler.output_text(unicode=True, color=False))
    what = "payments" if args.pay else "submits"
    print(f"{args.count} {what}: {wall / args.count * 1000:.2f} ms wall, {cpu / args.count * 1000:.2f} ms CPU each")
    return 0


if __name__ == "__main__":
    sys.exit(main())
