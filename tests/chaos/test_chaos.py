"""Chaos: CHAOS_APPLICATIONS applications (300 by default) submitted (in waves, each after one more
kill) and paid while a loop SIGKILLs and restarts random worker processes, the relay and the sweeper
included. Every application must
reach `issued` with one card, one history row per transition, and its DongBoHoSoMC calls delivered
in order; the outbox must end up all sent. Real processes, real Redis, real database (SQLite and
PostgreSQL).

CHAOS_KILL_EVERY_SECONDS (default 1.5) sets the pace of the kills; CHAOS_SEED repeats a run."""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

from licence_service.app import create_app
from licence_service.bootstrap import build_services
from licence_service.store import models
from tests.conftest import COLLECTION_TOKEN_TTL, make_settings, token_for
from tests.support import delivery
from tests.support.portal_sync import statuses_by_dossier
from tests.support.servers import PortalStandIn, wait_for

APPLICATIONS = int(os.environ.get("CHAOS_APPLICATIONS", "300"))
KILL_EVERY = float(os.environ.get("CHAOS_KILL_EVERY_SECONDS", "1.5"))
SEED = int(os.environ.get("CHAOS_SEED", str(random.randrange(1 << 30))))
VICTIMS = ("relay", *delivery.STAGE_PROCESSES, "sweeper")
HEADERS = {"Authorization": "Bearer " + token_for("applications:submit", "applications:read",
                                                  ttl_seconds=COLLECTION_TOKEN_TTL)}
# The applications are submitted in this many waves, a kill apart.
WAVES = 10
# Bounds, not waits: every wait below polls and returns as soon as its condition holds.
DEADLINE_SECONDS = 60 + 1.5 * APPLICATIONS


class Chaos:
    """Every KILL_EVERY seconds, SIGKILL one random process and start it again."""

    def __init__(self, procs: delivery.Processes, rng: random.Random) -> None:
        self.procs = procs
        self.rng = rng
        self.kills: Counter[str] = Counter()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, name="chaos", daemon=True)

    def run(self) -> None:
        while not self.stop.wait(self.rng.uniform(0.5, 1.5) * KILL_EVERY):
            victim = self.rng.choice(VICTIMS)
            self.procs.kill(victim)
            self.kills[victim] += 1
            self.procs.start(victim)

    def __enter__(self) -> Chaos:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(60)


def test_applications_survive_workers_killed_at_random(tmp_path: Path, any_database_url: str, redis_url: str,
                                                       portal_stand_in: PortalStandIn):
    people = delivery.citizens(APPLICATIONS)
    settings = make_settings(tmp_path, any_database_url, redis_url)
    services = build_services(settings)
    delivery.seed(services.uow(), people)
    client = create_app(services=services).test_client()
    env = delivery.service_env(
        tmp_path, any_database_url, redis_url, portal_stand_in.url,
        # A killed worker's message comes back after 10 s; a lost one is re-driven after 30 s (a
        # backlog longer than that has merely slow messages re-driven too, which must do no harm).
        BROKER_VISIBILITY_TIMEOUT_SECONDS="10", PORTAL_SYNC_TIMEOUT_SECONDS="3", PORTAL_SYNC_LEASE_SECONDS="8",
        STUCK_GRACE_SECONDS="30", SWEEP_INTERVAL_SECONDS="2", RETRY_BASE_SECONDS="0.5", RETRY_CAP_SECONDS="5")
    procs = delivery.Processes(env, tmp_path / "logs").start(*VICTIMS)
    rng = random.Random(SEED)
    started = time.monotonic()
    paid: set[str] = set()
    try:
        with Chaos(procs, rng) as chaos:
            ids = []
            # In WAVES, each once the chaos has killed one more process: the kills then fall while
            # applications are in flight, however fast the pipeline (at 60 applications/s all 300
            # were done before a fifth kill).
            for wave in range(WAVES):
                wait_for(lambda wave=wave: sum(chaos.kills.values()) >= wave, timeout=DEADLINE_SECONDS, interval=0.05,
                         message=f"kill {wave} before wave {wave}")
                for citizen in people[wave::WAVES]:
                    response = client.post("/api/v1/applications", json=citizen.body(), headers=HEADERS)
                    assert response.status_code == 202, response.get_data(as_text=True)
                    ids.append(response.get_json()["id"])

            def pay_the_ones_waiting() -> bool:
                with services.session_factory() as s:
                    waiting = s.scalars(select(models.Application.id)
                                        .where(models.Application.status == "awaiting_payment")).all()
                for application_id in set(waiting) - paid:
                    response = client.post(f"/api/v1/applications/{application_id}/payments", headers=HEADERS,
                                           json={"transaction_id": f"PAY-{application_id}", "amount": delivery.FEE,
                                                 "currency": "VND", "paid_at": models.utcnow().isoformat()})
                    assert response.status_code in (200, 202), response.get_data(as_text=True)
                    paid.add(application_id)
                return len(paid) == APPLICATIONS

            wait_for(pay_the_ones_waiting, timeout=DEADLINE_SECONDS, interval=0.5,
                     message=f"all {APPLICATIONS} applications awaiting payment, and paid")
            wait_for(lambda: delivery.statuses(services.session_factory)["issued"] == APPLICATIONS,
                     timeout=DEADLINE_SECONDS, interval=0.5, message=f"all {APPLICATIONS} issued")
        chaos_seconds = time.monotonic() - started
        # The chaos over, everything owed goes out: the outbox, parked retries, the portal calls.
        wait_for(lambda: delivery.unsent_outbox(services.session_factory) == 0
                 and delivery.count(services.session_factory, models.ScheduledRetry) == 0
                 and delivery.count(services.session_factory, models.PortalSyncItem,
                                    models.PortalSyncItem.state != "sent") == 0,
                 timeout=DEADLINE_SECONDS, interval=0.5, message="the outbox, retries and portal calls all done")
    except AssertionError:
        print(f"seed {SEED}; statuses {dict(delivery.statuses(services.session_factory))}")
        print(procs.logs())
        raise
    finally:
        procs.stop()

    db = services.session_factory
    histories = delivery.history_by_application(db)
    wrong_history = {a: h for a, h in histories.items() if h != delivery.ISSUED_HISTORY}
    cards = delivery.cards_by_application(db)
    with db() as s:
        valid_cards = Counter(dict(s.execute(select(models.Card.licence_number, func.count())
                                             .where(models.Card.status == "valid")
                                             .group_by(models.Card.licence_number)).all()))
        redrives = int(s.scalar(select(func.coalesce(func.sum(models.StuckRedrive.redrives), 0))) or 0)
    dead = delivery.count(db, models.DeadLetter)
    # Every entry of every call (a call may carry several applications' dossiers).
    calls = {dossier: [int(s) for s in sent]
             for dossier, sent in statuses_by_dossier(portal_stand_in.snapshot()).items()}
    # At least once to the portal: a sender killed after the portal answered sends that call again,
    # but never out of order, so collapsing repeats leaves exactly the statuses in order.
    collapsed = {d: [s for i, s in enumerate(seq) if i == 0 or s != seq[i - 1]] for d, seq in calls.items()}
    out_of_order = {d: seq for d, seq in collapsed.items() if seq != delivery.ISSUED_PORTAL_STATUSES}
    repeated_calls = sum(len(seq) for seq in calls.values()) - sum(len(seq) for seq in collapsed.values())
    figures = {
        "database": any_database_url.split(":")[0], "applications": APPLICATIONS, "seed": SEED,
        "kills": sum(chaos.kills.values()), "kills_by_process": dict(chaos.kills),
        "sweeper_redrives": redrives, "repeated_portal_calls": repeated_calls,
        "duplicate_transitions": len(wrong_history), "duplicate_cards": sum(1 for n in cards.values() if n > 1),
        "dead_letters": dead, "seconds_under_chaos": round(chaos_seconds, 1),
    }
    print("chaos figures: " + json.dumps(figures))
    (tmp_path.parent / f"chaos-figures-{figures['database']}.json").write_text(json.dumps(figures))

    assert sum(chaos.kills.values()) >= WAVES - 1, "too few kills to prove anything"
    assert delivery.statuses(db) == {"issued": APPLICATIONS}
    assert wrong_history == {}
    assert sorted(cards) == sorted(histories) and set(cards.values()) == {1}
    assert set(valid_cards.values()) == {1} and len(valid_cards) == APPLICATIONS
    assert set(calls) == {c.dossier_id for c in people}
    assert out_of_order == {}
    assert dead == 0
    assert delivery.unsent_outbox(db) == 0
