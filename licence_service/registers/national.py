"""Writing a licence into the national register from plain data: used by the provider states of the
portal's pact, by tests and by demos (the legacy import has its own bulk path)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from licence_service.domain.names import normalise_name
from licence_service.store import models
from licence_service.store.unit_of_work import UnitOfWork


def _date(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)


def put_licence(
    uow: UnitOfWork,
    *,
    number: str,
    holder: Mapping[str, Any],
    classes: Iterable[Mapping[str, Any]],
    regime: str,
    status: str = "valid",
    points: int | None = 12,
    issued_on: dt.date | str | None = None,
    issuing_authority: str = "SGTVT-01",
    card_serial: str | None = None,
) -> models.Licence:
    """Create or replace a licence (and its holder) in the caller's unit of work; does not commit."""
    person = uow.register.person_by_citizen_id(holder["citizen_id"])
    if person is None:
        person = models.Person(citizen_id=holder["citizen_id"])
        uow.register.add(person)
    person.full_name = normalise_name(holder["full_name"])
    person.date_of_birth = _date(holder["date_of_birth"])
    person.sex = holder["sex"]
    person.nationality = holder.get("nationality", "VN")
    uow.session.flush()
    licence = uow.register.licence(number)
    if licence is None:
        licence = models.Licence(number=number, person_id=person.id, regime=regime,
                                 issuing_authority=issuing_authority)
        uow.register.add(licence)
    licence.person_id = person.id
    licence.regime = regime
    licence.status = status
    licence.points = points
    licence.issued_on = _date(issued_on)
    licence.classes.clear()
    uow.session.flush()
    for c in classes:
        licence.classes.append(models.LicenceClass(
            code=c["code"], passed_on=_date(c.get("passed_on")), issued_on=_date(c.get("issued_on")),
            valid_until=_date(c.get("valid_until")), restrictions=list(c.get("restrictions") or [])))
    if card_serial and uow.session.get(models.Card, card_serial) is None:
        uow.register.add(models.Card(serial=card_serial, licence_number=number, issued_on=_date(issued_on)))
    uow.session.flush()
    return licence
