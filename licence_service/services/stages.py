"""The workflow's stage handlers: checks, fee, conversion, issuance.

Each takes an event (which carries only the application id), reloads the application, and returns
early when the event was already processed or the application has moved on (GOV.UK Notify style),
so a redelivered or duplicated message changes nothing. Its effects, the processed-event record,
a history row and the next event are committed in one transaction; the worker acknowledges the
message only after that commit.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from licence_service.config import Settings
from licence_service.domain import eligibility, fees, permit, renewal
from licence_service.domain.health import HealthPolicy
from licence_service.domain.model import OPEN_STATUSES, HealthCertificate, LicenceClass, Person
from licence_service.domain.model import Licence as DomainLicence
from licence_service.domain.regime import local_date
from licence_service.logs import log_context
from licence_service.messaging.envelope import Event
from licence_service.messaging.names import RoutingKeys
from licence_service.registers.citizens import (
    CertificatesAtOnce,
    HealthCertificateRegister,
    PeopleAtOnce,
    PopulationRegister,
)
from licence_service.services.acceptance import accept
from licence_service.services.transitions import change_status, emit
from licence_service.store import models
from licence_service.store.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


class NonRetryable(Exception):
    """The message can never succeed as it is (unknown application, malformed event)."""


@dataclass
class StageContext:
    settings: Settings
    uow_factory: Callable[[], UnitOfWork]
    population: PopulationRegister
    health_certificates: HealthCertificateRegister
    now: Callable[[], dt.datetime] = field(default=models.utcnow)
    # For transactions that only read (on SQLite they skip the writer lock); uow_factory when unset.
    read_uow_factory: Callable[[], UnitOfWork] | None = None

    def reader(self) -> UnitOfWork:
        return (self.read_uow_factory or self.uow_factory)()

    @property
    def fee_schedule(self) -> fees.FeeSchedule:
        if self.settings.fee_table_json:
            return fees.FeeSchedule.from_json(self.settings.fee_table_json)
        return fees.DEFAULT_FEE_SCHEDULE

    @property
    def policy(self) -> eligibility.EligibilityPolicy:
        return eligibility.EligibilityPolicy(
            health=HealthPolicy(validity_months=self.settings.health_certificate_validity_months)
        )


def _apply(ctx: StageContext, handler: str, event: Event, expected: frozenset[str],
           work: Callable[[UnitOfWork, models.Application], None],
           done: Callable[[models.Application], bool] = lambda application: False) -> bool:
    """Run `work` once per event, only while the application is in an `expected` state and the
    stage's own result (`done`) is not there yet — a re-driven event has a new id, so the event id
    alone cannot tell.

    Returns True when it did the work, False when it returned early (duplicate or moved on)."""
    with ctx.uow_factory() as uow:
        did = _apply_in(uow, handler, Step(event, work, expected, done))
        uow.commit()
        return did


@dataclass(frozen=True)
class Step:
    """One event's work, as _apply runs it alone or apply_batch runs it with others."""

    event: Event
    work: Callable[[UnitOfWork, models.Application], None]
    expected: frozenset[str]
    done: Callable[[models.Application], bool] = lambda application: False


@dataclass
class _Loaded:
    """What apply_batch read for all its events at once, before the first: their applications
    (locked) and which of the events this handler has already processed. Asking per event cost two
    queries each, a fifth of a stage's time."""

    applications: dict[str, models.Application]
    seen: set[str]
    # Held for the transaction: the session keeps loaded objects only as long as someone does.
    licences: dict[str, models.Licence] = field(default_factory=dict)


def _apply_in(uow: UnitOfWork, handler: str, step: Step, loaded: _Loaded | None = None) -> bool:
    """_apply's checks and work inside the caller's transaction."""
    event = step.event
    if loaded is None:
        application = uow.applications.get(event.application_id, for_update=True, with_history=False)
    else:
        application = loaded.applications.get(event.application_id)
    if application is None:
        raise NonRetryable(f"no application {event.application_id}")
    # Asked only once the application's row lock is held: on PostgreSQL a second worker given
    # the same event (redelivered while the first was still on it) waits for the lock above,
    # then sees the first one's record here instead of failing on its primary key.
    seen = event.event_id in loaded.seen if loaded is not None else uow.processed.seen(event.event_id, handler)
    if seen:
        return False
    if application.status not in step.expected or step.done(application):
        log.info("%s: application %s is %s; nothing to do", handler, application.id, application.status)
        uow.append(models.ProcessedEvent(event_id=event.event_id, handler=handler))
        return False
    step.work(uow, application)
    uow.append(models.ProcessedEvent(event_id=event.event_id, handler=handler))
    return True


def _aborts_batch(exc: BaseException) -> bool:
    """The transaction itself is lost (database locked, gone, or a deadlock victim): nothing of the
    batch can commit, so the whole batch fails (and the worker handles its messages one by one)."""
    return isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and bool(exc.connection_invalidated))


Outcome = bool | BaseException


class _StepFailed(Exception):
    """A step failed in apply_batch's first run, which has no savepoints to roll it back alone."""


def apply_batch(ctx: StageContext, handler: str, steps: Sequence[Step | Outcome], *,
                duplicate_means_done: bool = False, with_licences: bool = False,
                lock_licences: bool = False) -> list[Outcome]:
    """Run several events' steps in one transaction, each exactly as _apply would run it alone: one
    that fails is rolled back alone and its exception returned in its place, while the others commit
    together. An entry that is already an outcome (decided before the transaction) is passed
    through. Raises, committing nothing, when the transaction itself fails.

    The steps are first run together without savepoints: a savepoint and its flush per step cost a
    batch a fifth of its time, and steps rarely fail. Only when one does (or the commit finds a
    unique-key conflict) is that run rolled back and the batch run again with a savepoint per step.

    Applications are locked in the order of their ids, so two batches do not deadlock over them
    (PostgreSQL; a deadlock it still detects fails the batch like any lost transaction, and the
    worker then handles its messages one by one). `duplicate_means_done`: a unique-key conflict
    means a concurrent duplicate already did this event's work (issuance), not a failure.
    `with_licences`: the steps read their applications' licences, loaded here for all at once (as
    the next DongBoHoSoMC items' seqs are); `lock_licences`: locked first, in the order of their
    numbers, so that they are read as they stand under the lock (PostgreSQL)."""
    options = {"duplicate_means_done": duplicate_means_done, "with_licences": with_licences,
               "lock_licences": lock_licences}
    try:
        return _apply_steps(ctx, handler, steps, savepoints=False, **options)
    except _StepFailed as failed:
        log.info("%s: a step of a batch of %d failed (%s); running the batch again step by step", handler,
                 len(steps), type(failed.__cause__).__name__)
        return _apply_steps(ctx, handler, steps, savepoints=True, **options)


def _apply_steps(ctx: StageContext, handler: str, steps: Sequence[Step | Outcome], *, savepoints: bool,
                 duplicate_means_done: bool, with_licences: bool, lock_licences: bool) -> list[Outcome]:
    results: list[Outcome] = [s if not isinstance(s, Step) else False for s in steps]
    order = sorted((i for i, s in enumerate(steps) if isinstance(s, Step)),
                   key=lambda i: steps[i].event.application_id)  # type: ignore[union-attr]
    with ctx.uow_factory() as uow:
        events = [steps[i].event for i in order]  # type: ignore[union-attr]
        loaded = _Loaded(
            uow.applications.lock_many([e.application_id for e in events]),
            uow.processed.seen_many([e.event_id for e in events], handler),
        )
        numbers = [a.licence_number for a in loaded.applications.values()]
        if lock_licences:
            uow.register.lock_licences(numbers)
        if with_licences:
            loaded.licences = uow.register.load_licences(numbers)
        uow.next_sync_seqs = uow.applications.next_sync_seqs(loaded.applications)
        for i in order:
            step = steps[i]
            assert isinstance(step, Step)
            with log_context(application_id=step.event.application_id, correlation_id=step.event.correlation_id):
                if not savepoints:
                    try:
                        results[i] = _apply_in(uow, handler, step, loaded)
                    except Exception as exc:
                        if _aborts_batch(exc):
                            raise
                        raise _StepFailed from exc
                    loaded.seen.add(step.event.event_id)
                    continue
                appended = len(uow.appended)
                try:
                    with uow.session.begin_nested():
                        results[i] = _apply_in(uow, handler, step, loaded)
                        # In the step's savepoint, so that a unique-key conflict is this step's.
                        uow.write_appended()
                    # Recorded now (or already): the same event again later in this batch is a duplicate.
                    loaded.seen.add(step.event.event_id)
                except IntegrityError as exc:
                    del uow.appended[appended:]  # the rows it appended go with its savepoint
                    if not duplicate_means_done:
                        results[i] = exc
                        continue
                    log.warning("%s: application %s already has its result", handler, step.event.application_id)
                    results[i] = False
                except Exception as exc:
                    del uow.appended[appended:]
                    if _aborts_batch(exc):
                        raise
                    results[i] = exc
        try:
            uow.commit()
        except IntegrityError as exc:
            if savepoints:
                raise
            raise _StepFailed from exc  # which step's, only savepoints can tell
    return results


def outcomes(results: Sequence[Outcome]) -> list[BaseException | None]:
    """apply_batch's results as StageWorker.handle_batch reports them: None for handled."""
    return [r if isinstance(r, BaseException) else None for r in results]


def _prepared(prepare: Callable[[Event], Step | Outcome], events: Sequence[Event]) -> list[Step | Outcome]:
    """Each event's step, or the exception preparing it raised (that event fails alone)."""
    steps: list[Step | Outcome] = []
    for event in events:
        try:
            steps.append(prepare(event))
        except Exception as exc:
            steps.append(exc)
    return steps


def domain_licence(row: models.Licence) -> DomainLicence:
    holder = row.holder
    return DomainLicence(
        number=row.number,
        regime=row.regime,
        status=row.status,
        points=row.points,
        classes=tuple(LicenceClass(c.code, c.passed_on, c.valid_until, tuple(c.restrictions or ()))
                      for c in row.classes),
        holder=Person(citizen_id=holder.citizen_id, full_name=holder.full_name,
                      date_of_birth=holder.date_of_birth, sex=holder.sex),
        issued_on=row.issued_on,
    )


def _applicant(application: models.Application) -> Person:
    a = application.applicant
    return Person(citizen_id=a["citizen_id"], full_name=a["full_name"],
                  date_of_birth=dt.date.fromisoformat(a["date_of_birth"]), sex=a["sex"])


# ------------------------------------------------------------------------------------------------
# checks: R-ELIG, R-HEALTH, R-IDP at intake


def checks(ctx: StageContext, event: Event) -> bool:
    step = _checks_step(ctx, event)
    if not isinstance(step, Step):
        return bool(step)
    return _apply(ctx, "checks", event, step.expected, step.work)


def checks_batch(ctx: StageContext, events: Sequence[Event]) -> list[BaseException | None]:
    """checks for several events: the registers are asked for each first, then every verdict is
    written in one transaction (apply_batch)."""
    # The applications read for all at once, in one read-only transaction, not one each.
    with ctx.reader() as uow:
        applications = uow.applications.get_many([e.application_id for e in events], with_history=False)
    received = [a for a in applications.values() if a.status == "received"]
    answers = _ask_registers_at_once(ctx, received)
    open_elsewhere = _OpenElsewhere(received)
    steps = _prepared(lambda event: _checks_step(ctx, event, applications.get(event.application_id), answers,
                                                 open_elsewhere), events)
    return outcomes(apply_batch(ctx, "checks", steps, with_licences=True, lock_licences=True))


@dataclass(frozen=True)
class _Answers:
    """What the registers answered for a whole batch at once; None for a register not asked so
    (it cannot answer for several, or its answer failed): each application then asks it alone."""

    people: dict[str, Person] | None = None
    certificates: dict[str, HealthCertificate] | None = None


def _certificate_number(application: models.Application) -> str | None:
    ref = (application.details or {}).get("health_certificate")
    return ref["number"] if ref else None


def _ask_registers_at_once(ctx: StageContext, applications: Sequence[models.Application]) -> _Answers:
    """One request per register for the batch instead of one per application: the registers'
    two lookups were two transactions and a third of the checks stage's statements (issue 8)."""
    if not applications:
        return _Answers()
    people = certificates = None
    try:
        if isinstance(ctx.population, PeopleAtOnce):
            people = ctx.population.people([a.citizen_id for a in applications])
        if isinstance(ctx.health_certificates, CertificatesAtOnce):
            certificates = ctx.health_certificates.certificates(
                [n for a in applications if (n := _certificate_number(a)) is not None])
    except Exception as exc:
        # Each application asks again alone, so that a register that is down fails (and retries)
        # each event on its own, as without batches.
        log.warning("checks: asking the registers for %d applications at once failed (%s); asking for each",
                    len(applications), exc)
    return _Answers(people, certificates)


# R-ELIG-5: what counts as another open application. Other "received" applications do not: they
# have not passed the checks yet, and whichever is checked first wins.
_OPEN_ELSEWHERE = OPEN_STATUSES - {"received"}


class _OpenElsewhere:
    """R-ELIG-5 for a checks batch: whether another application for the licence is open, asked of
    the database once per transaction for all the batch's licences instead of once per application
    (each of those queries also flushed the application checked before it: a third of the checks'
    time under the writer lock). The batch's own applications are looked at in the session as they
    stand, so a verdict given earlier in the batch counts, and one rolled back with its savepoint
    does not. Asked inside apply_batch's transaction, after it has locked the licences: as
    race-free as the query per application (see the work function)."""

    def __init__(self, applications: Sequence[models.Application]) -> None:
        self._batch: dict[str, list[str]] = {}
        for application in applications:
            self._batch.setdefault(application.licence_number, []).append(application.id)
        self._uow: UnitOfWork | None = None
        self._stored: dict[str, set[str]] = {}

    def exists(self, uow: UnitOfWork, application: models.Application) -> bool:
        if self._uow is not uow:  # a new transaction (apply_batch's second run): ask again
            self._stored = uow.applications.open_for_licences(self._batch, _OPEN_ELSEWHERE)
            self._uow = uow
        batch = self._batch.get(application.licence_number, [])
        for other_id in batch:
            if other_id != application.id:
                other = uow.session.get(models.Application, other_id)  # locked by the batch: no query
                if other is not None and other.status in _OPEN_ELSEWHERE:
                    return True
        return bool(self._stored.get(application.licence_number, set()) - {application.id, *batch})


def _checks_step(ctx: StageContext, event: Event, application: models.Application | None = None,
                 answers: _Answers = _Answers(), open_elsewhere: _OpenElsewhere | None = None) -> Step | bool:
    """`application` as read before (checks_batch), or read here; `answers`, the registers' for
    the batch, where they were asked at once; `open_elsewhere`, R-ELIG-5 for the batch."""
    if application is None:
        with ctx.reader() as uow:
            application = uow.applications.get(event.application_id, with_history=False)
    if application is None:
        raise NonRetryable(f"no application {event.application_id}")
    if application.status != "received":
        return False
    citizen_id = application.citizen_id
    certificate_number = _certificate_number(application)
    # Outside registers are asked before the transaction opens: no lock is held while they answer.
    population_record = (answers.people.get(citizen_id) if answers.people is not None
                         else ctx.population.person(citizen_id))
    certificate: HealthCertificate | None = None
    if certificate_number is not None:
        certificate = (answers.certificates.get(certificate_number) if answers.certificates is not None
                       else ctx.health_certificates.certificate(certificate_number))

    def work(uow: UnitOfWork, application: models.Application) -> None:
        # R-ELIG-5 across applications: two checks of different applications for one licence each
        # lock only their own application row, so on PostgreSQL both could see the other still
        # "received" and both pass. Locking the licence's register row first serialises them: the
        # second waits here until the first has committed its verdict, then sees it as open.
        # (SQLite's BEGIN IMMEDIATE already serialises every writer.)
        uow.register.lock_licence(application.licence_number)
        row = uow.register.licence(application.licence_number)
        facts = eligibility.ApplicationFacts(
            procedure=application.procedure,
            reason=application.reason,
            received_on=local_date(application.received_at),
            regime=application.regime,
            licence_number=application.licence_number,
            applicant=_applicant(application),
            force_majeure=bool(application.details.get("force_majeure")),
            requested_classes=application.details.get("requested_classes") or {},
        )
        verdict = eligibility.assess(
            facts,
            licence=domain_licence(row) if row else None,
            population_record=population_record,
            health_certificate=certificate,
            # R-ELIG-5: race-free under the licence lock above (_OPEN_ELSEWHERE says what counts).
            open_application_exists=(
                open_elsewhere.exists(uow, application) if open_elsewhere is not None
                else uow.applications.open_for_licence(application.licence_number, _OPEN_ELSEWHERE,
                                                       exclude_id=application.id)),
            policy=ctx.policy,
        )
        note = "; ".join(verdict.details) or None
        if verdict.outcome == "refuse":
            application.refusal_reasons = list(verdict.reasons)
            change_status(uow, application, "refused", actor="checks", note=note,
                          event_id=event.event_id, correlation_id=event.correlation_id)
        elif verdict.outcome == "review":
            # Kept for the officer's decision: a refusal then gives these reasons (R-ELIG-6).
            application.details = {**application.details, "review_reasons": list(verdict.reasons)}
            change_status(uow, application, "needs_supplement", actor="checks", note=note,
                          event_id=event.event_id, correlation_id=event.correlation_id)
        else:
            accept(uow, application, now=ctx.now(), working_days=ctx.settings.processing_working_days,
                   actor="checks", note=note, event_id=event.event_id, correlation_id=event.correlation_id)

    return Step(event, work, frozenset({"received"}))


# ------------------------------------------------------------------------------------------------
# fee: R-FEE, fixed at acceptance from the date of receipt and the channel


def fee(ctx: StageContext, event: Event) -> bool:
    step = _fee_step(ctx, event)
    return _apply(ctx, "fee", event, step.expected, step.work)


def fee_batch(ctx: StageContext, events: Sequence[Event]) -> list[BaseException | None]:
    return outcomes(apply_batch(ctx, "fee", [_fee_step(ctx, event) for event in events]))


def _fee_step(ctx: StageContext, event: Event) -> Step:
    def work(uow: UnitOfWork, application: models.Application) -> None:
        application.fee_amount = ctx.fee_schedule.fee_for(
            application.procedure, application.channel, local_date(application.received_at))
        application.fee_currency = "VND"
        change_status(uow, application, "awaiting_payment", actor="fee",
                      note=f"fee {application.fee_amount} VND", event_id=event.event_id,
                      correlation_id=event.correlation_id)

    return Step(event, work, frozenset({"accepted"}))


# ------------------------------------------------------------------------------------------------
# conversion: the renewed licence (or permit) in the national model, R-CONV + R-VALID / R-IDP


def _class_json(c: LicenceClass) -> dict[str, Any]:
    return {"code": c.code, "passed_on": c.passed_on.isoformat() if c.passed_on else None,
            "valid_until": c.valid_until.isoformat() if c.valid_until else None,
            "restrictions": list(c.restrictions)}


def conversion(ctx: StageContext, event: Event) -> bool:
    step = _conversion_step(ctx, event)
    return _apply(ctx, "conversion", event, step.expected, step.work, step.done)


def conversion_batch(ctx: StageContext, events: Sequence[Event]) -> list[BaseException | None]:
    return outcomes(apply_batch(ctx, "conversion", [_conversion_step(ctx, event) for event in events],
                                with_licences=True))


def _conversion_step(ctx: StageContext, event: Event) -> Step:
    def work(uow: UnitOfWork, application: models.Application) -> None:
        row = uow.register.licence(application.licence_number)
        if row is None:
            raise NonRetryable(f"licence {application.licence_number} vanished from the register")
        licence = domain_licence(row)
        issued_on = local_date(ctx.now())
        if application.procedure == "international_permit":
            p = permit.issue_permit(licence, issued_on)
            application.converted = {
                "kind": "international_permit", "number": p.number, "licence_number": p.licence_number,
                "issued_on": p.issued_on.isoformat(), "valid_until": p.valid_until.isoformat(),
                "classes": [_class_json(c) for c in p.classes],
            }
        else:
            classes = renewal.renew(licence, issued_on, application.regime,
                                    application.details.get("requested_classes") or {})
            application.converted = {
                "kind": "licence", "number": licence.number, "regime": application.regime,
                "issued_on": issued_on.isoformat(), "classes": [_class_json(c) for c in classes],
            }
        uow.append(models.ApplicationHistory(
            application_id=application.id, status=application.status, portal_status=application.portal_status,
            note="converted into the national model", actor="conversion", event_id=event.event_id))
        emit(uow, Event(type=RoutingKeys.CONVERTED, application_id=application.id,
                        correlation_id=event.correlation_id))

    return Step(event, work, frozenset({"processing"}), done=lambda application: bool(application.converted))


# ------------------------------------------------------------------------------------------------
# issuance: write the renewed licence into the national register with a new card


def new_card_serial() -> str:
    return f"{secrets.randbelow(10**12):012d}"


def issuance(ctx: StageContext, event: Event) -> bool:
    step = _issuance_step(ctx, event)
    try:
        return _apply(ctx, "issuance", event, step.expected, step.work)
    except IntegrityError:
        # cards.application_id / international_permits.application_id are unique: a concurrent
        # duplicate already issued this application's card, and this attempt wrote nothing.
        log.warning("issuance: application %s already has its card", event.application_id)
        return False


def issuance_batch(ctx: StageContext, events: Sequence[Event]) -> list[BaseException | None]:
    return outcomes(apply_batch(ctx, "issuance", [_issuance_step(ctx, event) for event in events],
                                duplicate_means_done=True, with_licences=True))


def _issuance_step(ctx: StageContext, event: Event) -> Step:
    def work(uow: UnitOfWork, application: models.Application) -> None:
        converted = application.converted
        if not converted:
            raise NonRetryable(f"application {application.id} reached issuance without conversion")
        row = uow.register.licence(application.licence_number)
        issued_on = dt.date.fromisoformat(converted["issued_on"])
        if converted["kind"] == "international_permit":
            uow.register.add(models.InternationalPermit(
                number=converted["number"], licence_number=row.number,
                classes=[c["code"] for c in converted["classes"]], issued_on=issued_on,
                valid_until=dt.date.fromisoformat(converted["valid_until"]), application_id=application.id))
            application.issued_permit_number = converted["number"]
            note = f"international permit {converted['number']} issued"
        else:
            serial = _issue_licence(uow, application, row, converted, issued_on, ctx.settings.issuing_authority)
            application.issued_card_serial = serial
            note = f"licence {row.number} issued on card {serial}"
        change_status(uow, application, "issued", actor="issuance", note=note, event_id=event.event_id,
                      correlation_id=event.correlation_id)

    return Step(event, work, frozenset({"processing"}))


def _issue_licence(uow: UnitOfWork, application: models.Application, row: models.Licence,
                   converted: dict[str, Any], issued_on: dt.date, authority: str) -> str:
    # The register's rows are written at commit with the batch's others (RegisterRepository:
    # replace_cards, replace_classes, append), not flushed per licence through the ORM: that was
    # seven statements and a flush per licence (issue 8). Only the licence row itself, loaded
    # already, is changed through the ORM. Each licence's replaced rows are appended before their
    # replacements, as the unit of work's ordering asks.
    before = [_class_json(LicenceClass(c.code, c.passed_on, c.valid_until, tuple(c.restrictions or ())))
              for c in row.classes]
    uow.register.replace_cards(row.number)
    uow.register.replace_classes(row.number, [
        models.LicenceClass(
            licence_number=row.number, code=c["code"],
            passed_on=dt.date.fromisoformat(c["passed_on"]) if c["passed_on"] else None,
            issued_on=issued_on, valid_until=dt.date.fromisoformat(c["valid_until"]) if c["valid_until"] else None,
            restrictions=list(c["restrictions"] or ()))
        for c in converted["classes"]])
    row.regime = converted["regime"]
    row.issued_on = issued_on
    row.issuing_authority = authority
    serial = new_card_serial()
    holder = row.holder
    printed = {
        "kind": "licence", "number": row.number, "card_serial": serial, "regime": row.regime,
        "issued_on": issued_on.isoformat(), "issuing_authority": authority,
        "holder": {"full_name": holder.full_name,
                   "date_of_birth": holder.date_of_birth.isoformat() if holder.date_of_birth else None,
                   "nationality": holder.nationality, "residence": application.applicant.get("residence")},
        "classes": converted["classes"],
    }
    uow.register.append(models.Card(serial=serial, licence_number=row.number, issued_on=issued_on,
                                    status="valid", application_id=application.id, printed=printed))
    uow.register.append(models.LicenceHistory(licence_number=row.number, source=f"application:{application.id}",
                                              change={"classes_before": before, "classes_after": converted["classes"],
                                                      "card_serial": serial}))
    return serial
