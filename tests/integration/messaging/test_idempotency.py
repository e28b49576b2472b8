"""Handlers are idempotent by construction, and a card is issued at most once per application by a
database constraint, on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from licence_service.messaging.envelope import Event
from licence_service.messaging.names import RoutingKeys
from licence_service.services import stages
from licence_service.store import models
from tests.support import delivery

STEPS = [
    ("checks", RoutingKeys.RECEIVED, stages.checks, "accepted"),
    ("fee", RoutingKeys.ACCEPTED, stages.fee, "awaiting_payment"),
    ("conversion", RoutingKeys.PAID, stages.conversion, "processing"),
    ("issuance", RoutingKeys.CONVERTED, stages.issuance, "issued"),
]


def test_every_stage_handler_given_the_same_event_twice_changes_nothing_the_second_time(service):
    citizen = delivery.citizens(1)[0]
    delivery.seed(service.uow(), [citizen])
    application_id = service.submit(citizen)
    for name, routing_key, handler, after in STEPS:
        if name == "conversion":
            service.pay(application_id)
        event = service.event(application_id, routing_key)
        assert handler(service.ctx, event) is True, name
        assert service.status(application_id) == after
        before = service.snapshot(application_id)
        assert handler(service.ctx, event) is False, f"{name} did its work a second time"
        assert service.snapshot(application_id) == before, name
    assert delivery.history_by_application(service.db)[application_id] == delivery.ISSUED_HISTORY


def test_a_re_driven_event_with_a_new_id_changes_nothing_once_the_application_has_moved_on(service):
    # The sweeper's re-drive of a merely slow message: same step, different event id.
    citizen = delivery.citizens(1)[0]
    delivery.seed(service.uow(), [citizen])
    application_id = service.submit(citizen)
    service.drive_to(application_id, "issued")
    before = service.snapshot(application_id)
    for _name, routing_key, handler, _after in STEPS:
        assert handler(service.ctx, Event(type=routing_key, application_id=application_id)) is False
    assert service.snapshot(application_id) == before


def test_conversion_re_driven_after_it_ran_does_not_emit_a_second_converted_event(service):
    citizen = delivery.citizens(1)[0]
    delivery.seed(service.uow(), [citizen])
    application_id = service.submit(citizen)
    service.drive_to(application_id, "converted")
    # Already converted: a re-driven PAID event has nothing to do.
    assert stages.conversion(service.ctx, Event(type=RoutingKeys.PAID, application_id=application_id)) is False
    assert len(service.events(application_id, RoutingKeys.CONVERTED)) == 1
    assert delivery.history_by_application(service.db)[application_id].count("processing") == 2


@pytest.mark.parametrize("same_event_id", [True, False], ids=["redelivered", "re-driven"])
def test_concurrent_duplicates_of_the_issuance_event_issue_one_card(service, same_event_id):
    citizen = delivery.citizens(1)[0]
    delivery.seed(service.uow(), [citizen])
    application_id = service.submit(citizen)
    service.drive_to(application_id, "converted")
    original = service.event(application_id, RoutingKeys.CONVERTED)
    events = [original if same_event_id else Event(type=original.type, application_id=application_id)
              for _ in range(4)]
    start = threading.Barrier(len(events))
    results: list[object] = []

    def issue(event: Event) -> None:
        start.wait()
        try:
            results.append(stages.issuance(service.ctx, event))
        except Exception as exc:  # collected, so the assertion below names it
            results.append(exc)

    threads = [threading.Thread(target=issue, args=(e,)) for e in events]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results, key=repr) == sorted([True, False, False, False], key=repr), results
    assert delivery.cards_by_application(service.db)[application_id] == 1
    assert delivery.history_by_application(service.db)[application_id] == delivery.ISSUED_HISTORY
    with service.db() as s:
        licence = s.get(models.Licence, citizen.licence_number)
        assert [c.status for c in licence.cards].count("valid") == 1


def test_the_database_refuses_a_second_card_for_one_application(service):
    citizen = delivery.citizens(1)[0]
    delivery.seed(service.uow(), [citizen])
    with service.db() as s:
        s.add(models.Card(serial="DUP000000001", licence_number=citizen.licence_number, application_id="app-1"))
        s.commit()
        s.add(models.Card(serial="DUP000000002", licence_number=citizen.licence_number, application_id="app-1"))
        with pytest.raises(IntegrityError):
            s.commit()
        s.rollback()
        # Cards from before this service (no application) are not limited.
        s.add_all([models.Card(serial=f"LEGACY00000{i}", licence_number=citizen.licence_number) for i in (1, 2)])
        s.commit()
        assert s.scalar(select(func.count()).select_from(models.Card)
                        .where(models.Card.application_id == "app-1")) == 1


def test_the_database_refuses_a_second_international_permit_for_one_application(service):
    citizen = delivery.citizens(1)[0]
    delivery.seed(service.uow(), [citizen])
    today = dt.date.today()

    def permit(number: str) -> models.InternationalPermit:
        return models.InternationalPermit(number=number, licence_number=citizen.licence_number, classes=["B"],
                                          issued_on=today, valid_until=today, application_id="app-2")

    with service.db() as s:
        s.add(permit("IDP-1"))
        s.commit()
        s.add(permit("IDP-2"))
        with pytest.raises(IntegrityError):
            s.commit()


@pytest.mark.parametrize("name, routing_key, handler, after", STEPS[:3], ids=[s[0] for s in STEPS[:3]])
def test_one_event_handled_by_two_workers_at_once_is_applied_once_without_error(service, name, routing_key,
                                                                                handler, after):
    # Two workers of one stage can hold the same message: the broker handed it out again while the
    # first was still on it. Neither may fail (a failure would be retried or dead-lettered).
    citizen = delivery.citizens(1)[0]
    delivery.seed(service.uow(), [citizen])
    application_id = service.submit(citizen)
    for step, key, run, _after in STEPS:
        if step == name:
            break
        if step == "conversion":
            service.pay(application_id)
        run(service.ctx, service.event(application_id, key))
    if name == "conversion":
        service.pay(application_id)
    event = service.event(application_id, routing_key)
    start = threading.Barrier(3)
    results: list[object] = []

    def run_handler() -> None:
        start.wait()
        try:
            results.append(handler(service.ctx, event))
        except Exception as exc:  # collected, so the assertion below names it
            results.append(exc)

    threads = [threading.Thread(target=run_handler) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results, key=repr) == sorted([True, False, False], key=repr), results
    assert service.status(application_id) == after
