"""Reading the national register (NATIONAL-MODEL.md) for authorised registry readers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from licence_service.store import models


class LicenceNotFound(Exception):
    pass


def licence_record(uow_factory: Any, number: str) -> dict[str, Any]:
    """The register's whole record of licence `number`: holder, classes, every card it ever printed
    (replaced ones included) and its international permits."""
    with uow_factory() as uow:
        licence = uow.register.licence(number)
        if licence is None:
            raise LicenceNotFound(number)
        permits = uow.session.scalars(
            select(models.InternationalPermit)
            .where(models.InternationalPermit.licence_number == number)
            .order_by(models.InternationalPermit.issued_on, models.InternationalPermit.id)
        ).all()
        return _record(licence, permits)


def _record(licence: models.Licence, permits: Any) -> dict[str, Any]:
    holder = licence.holder
    current = [c for c in licence.cards if c.status == "valid"]
    return {
        "number": licence.number,
        "card_serial": current[-1].serial if current else None,
        "regime": licence.regime,
        "status": licence.status,
        "points": licence.points,
        "issued_on": licence.issued_on,
        "issuing_authority": licence.issuing_authority,
        "holder": {
            "citizen_id": holder.citizen_id,
            "legacy_id_number": holder.legacy_id_number,
            "full_name": holder.full_name,
            "date_of_birth": holder.date_of_birth,
            "birth_year": holder.birth_year,
            "sex": holder.sex,
            "nationality": holder.nationality,
            "residence": {"province_code": holder.province_code, "commune_code": holder.commune_code,
                          "detail": holder.residence_detail},
        },
        "classes": [
            {"code": c.code, "passed_on": c.passed_on, "issued_on": c.issued_on, "valid_until": c.valid_until,
             "restrictions": list(c.restrictions or [])}
            for c in licence.classes
        ],
        "cards": [{"serial": c.serial, "issued_on": c.issued_on, "status": c.status} for c in licence.cards],
        "international_permits": [
            {"number": p.number, "classes": list(p.classes), "issued_on": p.issued_on, "valid_until": p.valid_until}
            for p in permits
        ],
        "updated_at": licence.updated_at,
    }
