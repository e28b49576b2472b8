"""Population and health-certificate registers (other ministries' systems) behind interfaces.

The sandbox implementations read the local tables that `flask sandbox load` fills; an HTTP
implementation for a real deployment plugs in behind the same Protocol by configuration.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from licence_service.domain.model import HealthCertificate, Person
from licence_service.store import models


class RegisterUnavailable(Exception):
    """The register did not answer (timeout, 5xx): a retryable technical failure, not a refusal."""


class PopulationRegister(Protocol):
    def person(self, citizen_id: str) -> Person | None: ...


class HealthCertificateRegister(Protocol):
    def certificate(self, number: str) -> HealthCertificate | None: ...


class SandboxPopulationRegister:
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory

    def person(self, citizen_id: str) -> Person | None:
        with self._session_factory() as session:
            rec = session.get(models.SandboxPopulationRecord, citizen_id)
            if rec is None:
                return None
            return Person(citizen_id=rec.citizen_id, full_name=rec.full_name,
                          date_of_birth=rec.date_of_birth, sex=rec.sex)


class SandboxHealthCertificateRegister:
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory

    def certificate(self, number: str) -> HealthCertificate | None:
        with self._session_factory() as session:
            rec = session.get(models.SandboxHealthCertificate, number)
            if rec is None:
                return None
            return HealthCertificate(number=rec.number, citizen_id=rec.citizen_id, issued_on=rec.issued_on,
                                     facility_code=rec.facility_code, fit_for=frozenset(rec.fit_for or ()))
