"""Load the sandbox population and health-certificate registers from a JSON file
(NATIONAL-MODEL.md, "Sandbox registers")."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from licence_service.domain.names import normalise_name
from licence_service.store import models
from licence_service.store.unit_of_work import UnitOfWork


class SandboxFileError(ValueError):
    """The file is not in the sandbox format; the message names every problem."""


@dataclass(frozen=True)
class SandboxLoadSummary:
    population: int
    health_certificates: int


def _date(value: Any, where: str, problems: list[str]) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        problems.append(f"{where}: {value!r} is not a YYYY-MM-DD date")
        return None


def parse_sandbox_file(
    path: Path,
) -> tuple[list[models.SandboxPopulationRecord], list[models.SandboxHealthCertificate]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SandboxFileError(f"{path}: cannot read JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SandboxFileError(f"{path}: the top level must be an object with population and health_certificates")
    problems: list[str] = []
    people, certificates = [], []
    for i, rec in enumerate(data.get("population") or []):
        where = f"population[{i}]"
        try:
            dob = _date(rec["date_of_birth"], where, problems)
            if rec["sex"] not in ("male", "female"):
                problems.append(f"{where}: sex must be male or female")
            people.append(models.SandboxPopulationRecord(
                citizen_id=str(rec["citizen_id"]), full_name=normalise_name(rec["full_name"]),
                date_of_birth=dob, sex=rec["sex"]))
        except (KeyError, TypeError) as exc:
            problems.append(f"{where}: missing or bad field {exc}")
    for i, rec in enumerate(data.get("health_certificates") or []):
        where = f"health_certificates[{i}]"
        try:
            certificates.append(models.SandboxHealthCertificate(
                number=str(rec["number"]), citizen_id=str(rec["citizen_id"]),
                issued_on=_date(rec["issued_on"], where, problems), facility_code=str(rec["facility_code"]),
                fit_for=[str(c) for c in rec.get("fit_for") or []]))
        except (KeyError, TypeError) as exc:
            problems.append(f"{where}: missing or bad field {exc}")
    if problems:
        raise SandboxFileError(f"{path}: " + "; ".join(problems))
    return people, certificates


def load_sandbox(uow: UnitOfWork, path: Path) -> SandboxLoadSummary:
    """Upsert every record of the file (loading the same file twice changes nothing)."""
    people, certificates = parse_sandbox_file(path)
    with uow:
        for obj in [*people, *certificates]:
            uow.sandbox.merge(obj)
        uow.commit()
    return SandboxLoadSummary(len(people), len(certificates))
