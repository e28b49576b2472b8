"""The sweeper re-publishes the next step of an application stuck in a working state past the grace
period, once per grace period, and never duplicates work when the original message was only slow.
On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from licence_service.messaging.envelope import Event
from licence_service.messaging.names import RoutingKeys
from licence_service.services import stages
from licence_service.services.sweeper import sweep
from licence_service.store import models
from tests.support import delivery

GRACE = dt.timedelta(minutes=5)


def later(seconds: float) -> dt.datetime:
    return models.utcnow() + dt.timedelta(seconds=seconds)


def sweep_at(service, moment: dt.datetime) -> list[str]:
    return sweep(service.uow, grace=GRACE, now=lambda: moment)


@pytest.mark.parametrize("reached, next_key", [
    ("received", RoutingKeys.RECEIVED),
    ("accepted", RoutingKeys.ACCEPTED),
    ("processing", RoutingKeys.PAID),  # paid, not yet converted
    ("converted", RoutingKeys.CONVERTED),  # still `processing`, conversion done
])
def test_a_stuck_application_gets_the_event_of_its_next_step_again(service, reached, next_key):
    citizen = delivery.citizens(1)[0]
    delivery.seed(service.uow(), [citizen])
    application_id = service.submit(citizen)
    if reached != "received":
        service.drive_to(application_id, reached)
    before = service.events(application_id, next_key)

    assert sweep_at(service, later(GRACE.total_seconds() - 5)) == []  # not stuck yet
    assert sweep_at(service, later(GRACE.total_seconds() + 5)) == [application_id]
    redriven = service.events(application_id, next_key)
    assert len(redriven) == len(before) + 1
    assert redriven[-1].event_id not in {e.event_id for e in before}
    # The re-driven event does the step, exactly as the lost one would have.
    handler = {RoutingKeys.RECEIVED: stages.checks, RoutingKeys.ACCEPTED: stages.fee,
               RoutingKeys.PAID: stages.conversion, RoutingKeys.CONVERTED: stages.issuance}[next_key]
    assert handler(service.ctx, redriven[-1]) is True


def test_a_stuck_application_is_re_driven_at_most_once_per_grace_period(service):
    citizen = delivery.citizens(1)[0]
    delivery.seed(service.uow(), [citizen])
    application_id = service.submit(citizen)
    first = later(GRACE.total_seconds() + 5)
    assert sweep_at(service, first) == [application_id]
    assert sweep_at(service, first + dt.timedelta(seconds=30)) == []
    assert sweep_at(service, first + GRACE + dt.timedelta(seconds=1)) == [application_id]
    assert len(service.events(application_id, RoutingKeys.RECEIVED)) == 3
    with service.db() as s:
        assert s.get(models.StuckRedrive, application_id).redrives == 2


@pytest.mark.parametrize("reached", ["awaiting_payment", "issued"])
def test_applications_waiting_for_the_citizen_or_finished_are_not_stuck(service, reached):
    citizen = delivery.citizens(1)[0]
    delivery.seed(service.uow(), [citizen])
    application_id = service.submit(citizen)
    service.drive_to(application_id, reached)
    assert sweep_at(service, later(GRACE.total_seconds() * 100)) == []


def test_a_refused_or_supplement_awaiting_application_is_not_stuck(service):
    refused, review = delivery.citizens(2)
    delivery.seed(service.uow(), [refused, review])
    body = refused.body()
    body["applicant"]["full_name"] = "TRẦN THỊ BÌNH"  # R-ELIG-1: refused
    first = service.submit_body(body)
    # R-ELIG-6: expired ten days ago, force majeure declared: held for an officer (needs_supplement).
    with service.db() as s:
        s.get(models.Licence, review.licence_number).classes[0].valid_until = dt.date.today() - dt.timedelta(days=10)
        s.commit()
    second = service.submit_body({**review.body(), "force_majeure": True})
    for application_id in (first, second):
        stages.checks(service.ctx, service.event(application_id, RoutingKeys.RECEIVED))
    assert service.status(first) == "refused"
    assert service.status(second) == "needs_supplement"
    assert sweep_at(service, later(GRACE.total_seconds() * 100)) == []


@pytest.mark.parametrize("parked", ["retry", "dead letter"])
def test_an_application_whose_next_message_is_parked_or_dead_lettered_is_left_alone(service, parked):
    citizen = delivery.citizens(1)[0]
    delivery.seed(service.uow(), [citizen])
    application_id = service.submit(citizen)
    event = service.event(application_id, RoutingKeys.RECEIVED)
    with service.uow() as uow:
        if parked == "retry":
            uow.deliveries.add_retry(models.ScheduledRetry(stage="checks", application_id=application_id,
                                                           event_id=event.event_id, body=event.to_dict(),
                                                           attempts=1, due_at=later(3600)))
        else:
            uow.deliveries.add_dead_letter(models.DeadLetter(stage="checks", application_id=application_id,
                                                             event_id=event.event_id, body=event.to_dict(),
                                                             error="RegisterUnavailable", attempts=5))
        # A dead letter of another stage does not stop the re-drive of this one.
        uow.deliveries.add_dead_letter(models.DeadLetter(stage="portal_sync", application_id=application_id,
                                                         body={}, error="x", attempts=1))
        uow.commit()
    assert sweep_at(service, later(GRACE.total_seconds() * 2)) == []
    if parked == "dead letter":
        # Replayed: the message is the relay's again, still not lost.
        from licence_service.messaging.failures import replay

        replay(service.uow, None)
        assert sweep_at(service, later(GRACE.total_seconds() * 2)) == []


def test_a_merely_slow_original_and_its_re_drive_make_one_transition_at_each_step(service):
    citizen = delivery.citizens(1)[0]
    delivery.seed(service.uow(), [citizen])
    application_id = service.submit(citizen)
    steps = [(RoutingKeys.RECEIVED, stages.checks), (RoutingKeys.ACCEPTED, stages.fee), (None, None),
             (RoutingKeys.PAID, stages.conversion), (RoutingKeys.CONVERTED, stages.issuance)]
    moment = models.utcnow()
    for key, handler in steps:
        if key is None:
            service.pay(application_id)
            continue
        original = service.event(application_id, key) if key != RoutingKeys.CONVERTED else \
            service.events(application_id, key)[0]
        moment = max(moment, models.utcnow()) + GRACE + dt.timedelta(seconds=1)
        assert sweep_at(service, moment) == [application_id]
        redriven = service.events(application_id, key)[-1]
        assert redriven.event_id != original.event_id
        # The re-drive wins the race; the slow original arrives after it and finds the work done.
        assert handler(service.ctx, redriven) is True
        before = service.snapshot(application_id)
        handler(service.ctx, original)
        assert service.snapshot(application_id) == before
    assert delivery.history_by_application(service.db)[application_id] == delivery.ISSUED_HISTORY
    assert delivery.cards_by_application(service.db)[application_id] == 1
    # The conversion's own CONVERTED and the sweeper's re-drive of it: the slow PAID added none.
    assert len(service.events(application_id, RoutingKeys.CONVERTED)) == 2


def test_only_one_of_two_concurrent_sweepers_re_drives_an_application(service):
    import threading

    citizen = delivery.citizens(1)[0]
    delivery.seed(service.uow(), [citizen])
    application_id = service.submit(citizen)
    moment = later(GRACE.total_seconds() + 5)
    barrier = threading.Barrier(2)
    results: list[list[str]] = []

    def run() -> None:
        barrier.wait()
        results.append(sweep_at(service, moment))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [[], [application_id]]
    assert len(service.events(application_id, RoutingKeys.RECEIVED)) == 2


def test_a_re_driven_event_for_an_application_that_moved_on_meanwhile_is_harmless(service):
    citizen = delivery.citizens(1)[0]
    delivery.seed(service.uow(), [citizen])
    application_id = service.submit(citizen)
    stale = Event(type=RoutingKeys.RECEIVED, application_id=application_id)
    service.drive_to(application_id, "awaiting_payment")
    assert stages.checks(service.ctx, stale) is False
    assert delivery.history_by_application(service.db)[application_id] == ["received", "accepted",
                                                                            "awaiting_payment"]
