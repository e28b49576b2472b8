"""Reading the register back, and making variants of the sample export, for the import tests."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from licence_service.domain.model import PORTAL_STATUS
from licence_service.legacy.rows import COLUMNS
from licence_service.store import models
from tests.unit.legacy.exports import export_text

TABLES = ("people", "licences", "licence_classes", "cards", "licence_history")


def sample_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def with_rows(sample: Path, target: Path, extra: list[dict[str, str]]) -> Path:
    """The sample's exact bytes followed by ``extra`` rows (same CRLF layout)."""
    tail = export_text(extra).split("\r\n", 1)[1]
    target.write_bytes(sample.read_bytes() + tail.encode("utf-8"))
    return target


def changed_copy(sample: Path, target: Path, number: str, **changes: str) -> Path:
    """The sample with ``changes`` applied to every row of licence ``number`` (a newer export)."""
    rows = sample_rows(sample)
    for r in rows:
        if r["SO_GPLX"].replace(" ", "").replace(".", "") == number:
            r.update(changes)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    target.write_text(out.getvalue(), encoding="utf-8-sig", newline="")
    return target


def snapshot(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the register's tables, in a stable order."""
    with engine.connect() as conn:
        return {
            t: [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {t} ORDER BY 1, 2"))] for t in TABLES
        }


def licence(engine: sa.Engine, number: str) -> dict[str, Any] | None:
    """One licence as stored: its columns, its holder, its classes and its cards."""
    with Session(engine) as session:
        found = session.get(models.Licence, number)
        if found is None:
            return None
        p = found.holder
        return {
            "regime": found.regime, "issued_on": found.issued_on, "issuing_authority": found.issuing_authority,
            "status": found.status, "points": found.points,
            "holder": {
                "citizen_id": p.citizen_id, "legacy_id_number": p.legacy_id_number, "full_name": p.full_name,
                "date_of_birth": p.date_of_birth, "birth_year": p.birth_year, "sex": p.sex,
                "nationality": p.nationality, "province_code": p.province_code, "commune_code": p.commune_code,
                "residence_detail": p.residence_detail,
            },
            "classes": {
                c.code: (c.passed_on, c.issued_on, c.valid_until, c.restrictions) for c in found.classes
            },
            "cards": {c.serial: (c.status, c.issued_on) for c in found.cards},
        }


def history(engine: sa.Engine, number: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(models.LicenceHistory.source, models.LicenceHistory.change)
            .where(models.LicenceHistory.licence_number == number)
            .order_by(models.LicenceHistory.id)
        )
        return [{"source": source, **(change if isinstance(change, dict) else json.loads(change))}
                for source, change in rows]


def add_application(engine: sa.Engine, licence_number: str, citizen_id: str, status: str) -> str:
    """An application for ``licence_number`` in ``status`` (open or final, R-ELIG-5)."""
    app_id = str(uuid.uuid4())
    now = dt.datetime.now(dt.UTC)
    with Session(engine) as session, session.begin():
        session.add(models.Application(
            id=app_id, portal_dossier_id=f"G01.99-20261127-{app_id[:8]}", body_sha256="0" * 64,
            procedure="licence_renewal", channel="online", status=status,
            portal_status=PORTAL_STATUS[status], regime="vn-2025", received_at=now,
            citizen_id=citizen_id, licence_number=licence_number, applicant={}, details={},
            fee_currency="VND", fee_paid=False, refusal_reasons=[], created_at=now, updated_at=now,
        ))
    return app_id


def set_application_status(engine: sa.Engine, app_id: str, status: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.update(models.Application).where(models.Application.id == app_id).values(status=status))


def report(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def foreign_key_violations(engine: sa.Engine) -> list[tuple[Any, ...]]:
    """Rows whose foreign keys point nowhere (SQLite checks on demand; PostgreSQL never lets them in)."""
    if engine.dialect.name != "sqlite":
        return []
    with engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql("PRAGMA foreign_key_check")]
