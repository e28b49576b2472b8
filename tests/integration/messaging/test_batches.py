"""A stage handles the messages it has in hand in one transaction (stages.*_batch, StageWorker's
handle_batch), each with exactly the effects it would have alone: one that fails fails alone, a
duplicate changes nothing, and every message is acknowledged only once its batch has committed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections import Counter
from typing import Any

import redis as redis_lib
from kombu import Producer
from sqlalchemy import select

from licence_service.domain.regime import LOCAL_TZ
from licence_service.messaging.broker import connect
from licence_service.messaging.consumer import StageWorker
from licence_service.messaging.envelope import Event, batch_body
from licence_service.messaging.names import RoutingKeys, events_exchange, queue_name
from licence_service.messaging.relay import declare_topology
from licence_service.registers.citizens import RegisterUnavailable, SandboxPopulationRegister
from licence_service.services import stages
from licence_service.store import models
from tests.support import delivery
from tests.support.servers import wait_for
from tests.support.statements import Statements

UNKNOWN = "00000000-0000-0000-0000-000000000000"


def test_each_stage_batch_moves_every_application_on_with_its_single_effects(service):
    people = delivery.citizens(3)
    delivery.seed(service.uow(), people)
    ids = [service.submit(citizen) for citizen in people]
    for key, batch, after in [(RoutingKeys.RECEIVED, stages.checks_batch, "accepted"),
                              (RoutingKeys.ACCEPTED, stages.fee_batch, "awaiting_payment"),
                              (RoutingKeys.PAID, stages.conversion_batch, "processing"),
                              (RoutingKeys.CONVERTED, stages.issuance_batch, "issued")]:
        if key == RoutingKeys.PAID:
            for application_id in ids:
                service.pay(application_id)
        events = [service.event(application_id, key) for application_id in ids]
        # The first event twice (a redelivery in the same batch) and one for no known application.
        results = batch(service.ctx, [*events, events[0], Event(type=key, application_id=UNKNOWN)])
        assert results[:4] == [None] * 4, key
        assert isinstance(results[4], stages.NonRetryable), key
        assert [service.status(application_id) for application_id in ids] == [after] * 3, key
        before = {application_id: service.snapshot(application_id) for application_id in ids}
        assert batch(service.ctx, events) == [None] * 3
        assert {application_id: service.snapshot(application_id) for application_id in ids} == before, key
    history = delivery.history_by_application(service.db)
    assert all(history[application_id] == delivery.ISSUED_HISTORY for application_id in ids)


def test_a_batch_reads_its_applications_and_processed_events_once_not_per_event(service):
    people = delivery.citizens(4)
    delivery.seed(service.uow(), people)
    ids = [service.submit(citizen) for citizen in people]
    stages.checks_batch(service.ctx, [service.event(a, RoutingKeys.RECEIVED) for a in ids])
    events = [service.event(a, RoutingKeys.ACCEPTED) for a in ids]
    with Statements(service.services.engine) as selects:
        assert stages.fee_batch(service.ctx, events) == [None] * 4
    assert [service.status(a) for a in ids] == ["awaiting_payment"] * 4
    assert selects.of("applications") == 1
    assert selects.of("processed_events") == 1
    assert selects.of("portal_sync_items") == 1  # the next DongBoHoSoMC items' seqs
    assert selects.savepoints() == 0  # no step failed: no savepoint was needed


def test_a_checks_batch_reads_its_applications_once_before_and_once_in_its_transaction(service):
    people = delivery.citizens(4)
    delivery.seed(service.uow(), people)
    ids = [service.submit(citizen) for citizen in people]
    with Statements(service.services.engine) as selects:
        assert stages.checks_batch(service.ctx, [service.event(a, RoutingKeys.RECEIVED) for a in ids]) == [None] * 4
    assert [service.status(a) for a in ids] == ["accepted"] * 4
    # Loaded once to ask the registers about each (no lock), once locked to write the verdicts
    # (and asked, under the lock, for another open application of each licence: R-ELIG-5).
    loads = [s for s in selects.selects if s.startswith("SELECT applications.id, applications.portal_dossier_id")]
    assert len(loads) == 2
    assert selects.of("licences") == 2  # all four locked with one statement, then loaded with one
    # The sandbox registers asked once each for the four (PeopleAtOnce, CertificatesAtOnce).
    assert selects.of("sandbox_population") == 1 and selects.of("sandbox_health_certificates") == 1


def test_two_applications_for_one_licence_in_one_checks_batch_exactly_one_passes_R_ELIG_5(service):
    [citizen] = delivery.citizens(1)
    delivery.seed(service.uow(), [citizen])
    again = dataclasses.replace(citizen, dossier_id="G01.99-T-9999999")
    ids = [service.submit(citizen), service.submit(again)]
    with Statements(service.services.engine) as recorded:
        assert stages.checks_batch(service.ctx, [service.event(a, RoutingKeys.RECEIVED) for a in ids]) == [None] * 2
    statuses = sorted(service.status(a) for a in ids)
    assert statuses == ["accepted", "refused"]
    [refused] = [a for a in ids if service.status(a) == "refused"]
    assert service.application(refused).refusal_reasons == ["application_in_progress"]
    # Asked once for the batch, not once per application.
    assert len([s for s in recorded.selects if s.startswith("SELECT applications.id, applications.licence_number")
                or "EXISTS" in s]) == 1


def test_an_application_open_before_the_checks_batch_refuses_another_for_its_licence_R_ELIG_5(service):
    people = delivery.citizens(2)
    delivery.seed(service.uow(), people)
    first = service.submit(people[0])
    assert stages.checks_batch(service.ctx, [service.event(first, RoutingKeys.RECEIVED)]) == [None]
    assert service.status(first) == "accepted"
    again = dataclasses.replace(people[0], dossier_id="G01.99-T-9999998")
    ids = [service.submit(again), service.submit(people[1])]
    assert stages.checks_batch(service.ctx, [service.event(a, RoutingKeys.RECEIVED) for a in ids]) == [None] * 2
    assert [service.status(a) for a in ids] == ["refused", "accepted"]
    assert service.application(ids[0]).refusal_reasons == ["application_in_progress"]


class DownForBatches(SandboxPopulationRegister):
    """The sandbox population register, failing every request for several citizens at once."""

    def __init__(self, inner: SandboxPopulationRegister) -> None:
        super().__init__(inner._session_factory)
        self.asked_alone: list[str] = []

    def people(self, citizen_ids: Any) -> Any:
        raise RegisterUnavailable("population register: read timed out (10 s)")

    def person(self, citizen_id: str) -> Any:
        self.asked_alone.append(citizen_id)
        return super().person(citizen_id)


def test_a_checks_batch_asks_for_each_application_alone_when_asking_for_all_at_once_fails(service):
    people = delivery.citizens(3)
    delivery.seed(service.uow(), people)
    ids = [service.submit(citizen) for citizen in people]
    register = DownForBatches(service.ctx.population)
    ctx = dataclasses.replace(service.ctx, population=register)
    assert stages.checks_batch(ctx, [service.event(a, RoutingKeys.RECEIVED) for a in ids]) == [None] * 3
    assert [service.status(a) for a in ids] == ["accepted"] * 3
    assert sorted(register.asked_alone) == sorted(c.citizen_id for c in people)


def converted(service: Any, n: int) -> tuple[list[delivery.Citizen], list[str]]:
    """n citizens with their applications paid and converted: the issuance stage's to do."""
    people = delivery.citizens(n)
    delivery.seed(service.uow(), people)
    ids = [service.submit(citizen) for citizen in people]
    for application_id in ids:
        service.drive_to(application_id, "processing")
    stages.conversion_batch(service.ctx, [service.event(a, RoutingKeys.PAID) for a in ids])
    return people, ids


def test_an_issuance_batch_reads_its_licences_once_not_per_event(service):
    _people, ids = converted(service, 4)
    with Statements(service.services.engine) as selects:
        assert stages.issuance_batch(service.ctx, [service.event(a, RoutingKeys.CONVERTED) for a in ids]) == [None] * 4
    assert [service.status(a) for a in ids] == ["issued"] * 4
    assert delivery.cards_by_application(service.db) == {a: 1 for a in ids}
    # The licences with their holders (joined) and classes: a query each, for the four.
    assert selects.of("licences") == 1 and selects.of("licence_classes") == 1
    assert selects.of("portal_sync_items") == 1


def test_an_issuance_batch_writes_each_register_table_once_for_all_its_licences(service):
    people, ids = converted(service, 4)
    with Statements(service.services.engine) as recorded:
        assert stages.issuance_batch(service.ctx, [service.event(a, RoutingKeys.CONVERTED) for a in ids]) == [None] * 4
    writes = Counter(text.split(" WHERE ")[0].split(" (")[0].split(" SET ")[0]
                     for text, _held in recorded.all if text.split()[0] in ("INSERT", "UPDATE", "DELETE"))
    # One execution per table (an executemany for the four), not one per licence.
    for statement in ("UPDATE cards", "DELETE FROM licence_classes", "INSERT INTO licence_classes",
                      "INSERT INTO cards", "INSERT INTO licence_history", "UPDATE licences"):
        assert writes[statement] == 1, (statement, writes)
    today = dt.datetime.now(LOCAL_TZ).date()
    with service.db() as s:
        for citizen, application_id in zip(people, ids, strict=True):
            application = s.get(models.Application, application_id)
            licence = s.get(models.Licence, citizen.licence_number)
            # What conversion decided (B2 renewed as B, R-CONV-6), as the register now holds it.
            assert [(c.code, c.issued_on, c.valid_until and c.valid_until.isoformat())
                    for c in licence.classes] == [(c["code"], today, c["valid_until"])
                                                  for c in application.converted["classes"]]
            assert licence.regime == application.converted["regime"] and licence.issued_on == today
            cards = {c.serial: c.status for c in licence.cards}
            assert cards == {f"OLD{citizen.index:09d}": "replaced", application.issued_card_serial: "valid"}
            [history] = s.scalars(select(models.LicenceHistory).where(
                models.LicenceHistory.licence_number == citizen.licence_number)).all()
            assert history.source == f"application:{application_id}"
            assert [c["code"] for c in history.change["classes_before"]] == ["B2"]
            assert history.change["classes_after"] == application.converted["classes"]
            assert history.change["card_serial"] == application.issued_card_serial


def test_a_step_failing_in_its_transaction_fails_alone(service):
    people = delivery.citizens(3)
    delivery.seed(service.uow(), people)
    ids = [service.submit(citizen) for citizen in people]
    service.drive_to(ids[0], "converted")
    for application_id in ids[1:]:
        service.drive_to(application_id, "processing")  # paid, not yet converted
    # Issuance of the two not converted fails inside the transaction, after writing nothing.
    events = [Event(type=RoutingKeys.CONVERTED, application_id=application_id) for application_id in ids]
    results = stages.issuance_batch(service.ctx, events)
    assert results[0] is None
    assert all(isinstance(r, stages.NonRetryable) for r in results[1:])
    assert [service.status(application_id) for application_id in ids] == ["issued", "processing", "processing"]
    assert service.application(ids[0]).issued_card_serial


def test_a_step_failing_after_changing_status_leaves_none_of_its_rows_and_the_others_all_of_theirs(service):
    # History, DongBoHoSoMC items and outbox rows are appended and written at commit (UnitOfWork.append):
    # a step that fails must take its appended rows with its savepoint.
    from licence_service.services.transitions import change_status

    people = delivery.citizens(2)
    delivery.seed(service.uow(), people)
    ids = [service.submit(citizen) for citizen in people]
    stages.checks_batch(service.ctx, [service.event(a, RoutingKeys.RECEIVED) for a in ids])
    before = {a: service.snapshot(a) for a in ids}

    def works(uow: Any, application: Any) -> None:
        change_status(uow, application, "awaiting_payment", actor="test")

    def fails(uow: Any, application: Any) -> None:
        change_status(uow, application, "awaiting_payment", actor="test")
        raise stages.NonRetryable("after appending")

    steps = [stages.Step(service.event(ids[0], RoutingKeys.ACCEPTED), works, frozenset({"accepted"})),
             stages.Step(service.event(ids[1], RoutingKeys.ACCEPTED), fails, frozenset({"accepted"}))]
    results = stages.apply_batch(service.ctx, "test", steps)
    assert results[0] is True and isinstance(results[1], stages.NonRetryable)
    # Its own rows only ("outbox" counts every application's).
    assert {**service.snapshot(ids[1]), "outbox": None} == {**before[ids[1]], "outbox": None}
    changed = [len(service.events(a, RoutingKeys.STATUS_CHANGED)) for a in ids]
    assert changed[1] == changed[0] - 1
    assert service.status(ids[0]) == "awaiting_payment" and service.snapshot(ids[0]) != before[ids[0]]
    history = delivery.history_by_application(service.db)
    assert history[ids[0]][-1] == "awaiting_payment" and history[ids[1]][-1] == "accepted"


class CountingBatches:
    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.sizes: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, events: list[Event]) -> list[BaseException | None]:
        with self.lock:
            self.sizes.append(len(events))
        return stages.fee_batch(self.ctx, events)


def run_fee_worker(service: Any, ids: list[str], prefetch: int | None = None) -> tuple[CountingBatches, list[Any]]:
    """A fee worker with a batch handler, run until these applications await payment and every
    message in its queue is acknowledged; its batches, and the dead letters then."""
    url = service.services.broker_url
    batches = CountingBatches(service.ctx)
    worker = StageWorker("fee", lambda event: stages.fee(service.ctx, event), handle_batch=batches, prefetch=prefetch)
    worker.configure(service.services)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(url, stop), daemon=True)
    thread.start()
    client = redis_lib.Redis.from_url(url)
    try:
        wait_for(lambda: all(service.status(a) == "awaiting_payment" for a in ids), timeout=60, interval=0.1,
                 message="every application past the fee stage")
        wait_for(lambda: client.llen(queue_name("fee")) == 0 and client.hlen("unacked") == 0, timeout=30,
                 interval=0.1, message="every message acknowledged")
        with service.uow() as uow:
            return batches, list(uow.deliveries.dead_letters(include_replayed=True))
    finally:
        stop.set()
        thread.join(30)


def test_a_worker_handles_what_waits_in_its_queue_in_batches_and_acknowledges_every_message(service):
    people = delivery.citizens(12)
    delivery.seed(service.uow(), people)
    ids = [service.submit(citizen) for citizen in people]
    for application_id in ids:
        service.drive_to(application_id, "accepted")
    url = service.services.broker_url
    events = [service.event(application_id, RoutingKeys.ACCEPTED) for application_id in ids]
    with connect(url) as conn:
        declare_topology(conn)
        producer = Producer(conn.default_channel)
        for event in events:
            producer.publish(event.to_dict(), exchange=events_exchange, routing_key=event.type, serializer="json",
                             declare=[])
        # and one that can never be handled, in the middle of a batch
        producer.publish({**events[0].to_dict(), "application_id": UNKNOWN, "event_id": "x-1"},
                         exchange=events_exchange, routing_key=RoutingKeys.ACCEPTED, serializer="json", declare=[])
    batches, letters = run_fee_worker(service, ids)
    assert max(batches.sizes) > 1, batches.sizes
    assert [letter.event_id for letter in letters] == ["x-1"]
    assert all(len(delivery.history_by_application(service.db)[a]) == 3 for a in ids)


def test_a_message_carrying_many_events_has_each_handled_alone_and_is_acknowledged_once_all_are(service):
    # As the relay publishes them (envelope.batch_body): 25 events of the fee stage in two messages,
    # the first with a malformed event and one for no known application among them. The worker
    # handles them in batches of at most its prefetch count (10 here), dead-letters the two bad
    # ones alone, and acknowledges each message once every event it carries is settled.
    people = delivery.citizens(23)
    delivery.seed(service.uow(), people)
    ids = [service.submit(citizen) for citizen in people]
    for application_id in ids:
        service.drive_to(application_id, "accepted")
    bodies = [service.event(application_id, RoutingKeys.ACCEPTED).to_dict() for application_id in ids]
    bodies.insert(3, {"type": RoutingKeys.ACCEPTED, "event_id": "x-malformed"})  # no application id
    bodies.insert(7, {**bodies[0], "application_id": UNKNOWN, "event_id": "x-unknown"})
    url = service.services.broker_url
    with connect(url) as conn:
        declare_topology(conn)
        producer = Producer(conn.default_channel)
        for chunk in (bodies[:15], bodies[15:]):
            producer.publish(batch_body(chunk), exchange="", routing_key=queue_name("fee"), serializer="json")
    batches, letters = run_fee_worker(service, ids, prefetch=10)
    assert max(batches.sizes) == 10 and sum(batches.sizes) == 24, batches.sizes  # the unknown one included
    assert sorted(letter.event_id for letter in letters) == ["x-malformed", "x-unknown"]
    assert {letter.body["event_id"] for letter in letters} == {"x-malformed", "x-unknown"}  # the event, not the batch
    assert all(delivery.history_by_application(service.db)[a] == ["received", "accepted", "awaiting_payment"]
               for a in ids)


def test_a_worker_holding_less_than_a_batch_waits_for_more_and_goes_once_a_batch_is_in_hand(service):
    # STAGE_GATHER_SECONDS: under load, fewer and fuller transactions. Here the gathering time is
    # long (30 s) and a batch is 4 events: the first event waits for three more, and the four are
    # handled together as soon as they are in hand, not when the time is up.
    people = delivery.citizens(4)
    delivery.seed(service.uow(), people)
    ids = [service.submit(citizen) for citizen in people]
    for application_id in ids:
        service.drive_to(application_id, "accepted")
    url = service.services.broker_url
    client = redis_lib.Redis.from_url(url)

    def publish(application_ids: list[str]) -> None:
        with connect(url) as conn:
            declare_topology(conn)
            producer = Producer(conn.default_channel)
            for application_id in application_ids:
                producer.publish(service.event(application_id, RoutingKeys.ACCEPTED).to_dict(), exchange="",
                                 routing_key=queue_name("fee"), serializer="json")

    batches = CountingBatches(service.ctx)
    worker = StageWorker("fee", lambda event: stages.fee(service.ctx, event), handle_batch=batches, prefetch=4)
    worker.configure(service.services)
    worker.gather_seconds = 30.0
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(url, stop), daemon=True)
    thread.start()
    try:
        publish(ids[:1])
        wait_for(lambda: client.llen(queue_name("fee")) == 0 and client.hlen("unacked") == 1, timeout=30,
                 interval=0.02, message="the first event taken")
        assert service.status(ids[0]) == "accepted"  # held, gathering
        publish(ids[1:])
        wait_for(lambda: all(service.status(a) == "awaiting_payment" for a in ids), timeout=20, interval=0.05,
                 message="the four handled, well before the gathering time is up")
    finally:
        stop.set()
        thread.join(30)
    assert batches.sizes == [4]
    assert client.hlen("unacked") == 0
