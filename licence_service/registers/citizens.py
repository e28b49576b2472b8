"""Population and health-certificate registers (other ministries' systems) behind interfaces.

The sandbox implementations read the local tables that `flask sandbox load` fills; an HTTP
implementation for a real deployment plugs in behind the same Protocol by configuration.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol, runtime_checkable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from licence_service.domain.model import HealthCertificate, Person
from licence_service.store import models


class RegisterUnavailable(Exception):
    """The register did not answer (timeout, 5xx): a retryable technical failure, not a refusal."""


class PopulationRegister(Protocol):
    def person(self, citizen_id: str) -> Person | None: ...


class HealthCertificateRegister(Protocol):
    def certificate(self, number: str) -> HealthCertificate | None: ...


# Registers that can also answer for several keys in one request (the sandbox's: one query). Those
# that cannot are asked key by key; the checks stage asks whichever way the register can.


@runtime_checkable
class PeopleAtOnce(Protocol):
    def people(self, citizen_ids: Collection[str]) -> dict[str, Person]: ...


@runtime_checkable
class CertificatesAtOnce(Protocol):
    def certificates(self, numbers: Collection[str]) -> dict[str, HealthCertificate]: ...


def _person(rec: models.SandboxPopulationRecord) -> Person:
    return Person(citizen_id=rec.citizen_id, full_name=rec.full_name, date_of_birth=rec.date_of_birth, sex=rec.sex)


def _certificate(rec: models.SandboxHealthCertificate) -> HealthCertificate:
    return HealthCertificate(number=rec.number, citizen_id=rec.citizen_id, issued_on=rec.issued_on,
                             facility_code=rec.facility_code, fit_for=frozenset(rec.fit_for or ()))


class SandboxPopulationRegister:
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory

    def person(self, citizen_id: str) -> Person | None:
        with self._session_factory() as session:
            rec = session.get(models.SandboxPopulationRecord, citizen_id)
            return None if rec is None else _person(rec)

    def people(self, citizen_ids: Collection[str]) -> dict[str, Person]:
        """The records of those of these citizens the register has, by citizen ID (the others are absent)."""
        record = models.SandboxPopulationRecord
        with self._session_factory() as session:
            rows = session.scalars(select(record).where(record.citizen_id.in_(sorted(set(citizen_ids)))))
            return {rec.citizen_id: _person(rec) for rec in rows}


class SandboxHealthCertificateRegister:
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory

    def certificate(self, number: str) -> HealthCertificate | None:
        with self._session_factory() as session:
            rec = session.get(models.SandboxHealthCertificate, number)
            return None if rec is None else _certificate(rec)

    def certificates(self, numbers: Collection[str]) -> dict[str, HealthCertificate]:
        """Those of these certificates the register has, by number (the others are absent)."""
        record = models.SandboxHealthCertificate
        with self._session_factory() as session:
            rows = session.scalars(select(record).where(record.number.in_(sorted(set(numbers)))))
            return {rec.number: _certificate(rec) for rec in rows}
