"""Test data: the portal's sample application and the register entries it needs."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

PACT_FILE = Path(__file__).resolve().parent.parent / "contract" / "pacts" / "portal-licence-service.pact.json"

# A minimal JPEG header: the photo check looks at the magic bytes.
PHOTO = base64.b64encode(b"\xff\xd8\xff\xe0" + b"\x00" * 64).decode()

AN = {
    "citizen_id": "001089012345", "full_name": "NGUYỄN VĂN AN", "date_of_birth": "1989-05-17", "sex": "male",
}


def application_body(**overrides: Any) -> dict[str, Any]:
    """The PORTAL.md example application (licence 010123456789, B2, citizen 001089012345)."""
    body: dict[str, Any] = {
        "procedure": "licence_renewal",
        "portal_dossier_id": "G01.99-20261127-0000123",
        "received_at": "2026-11-27T09:15:00+07:00",
        "channel": "online",
        "reason": "expiring",
        "applicant": {
            **AN, "nationality": "VN", "phone": "0912345678", "email": "an.nguyen@example.vn",
            "residence": {"province_code": "01", "commune_code": "00004", "detail": "Số 1 Tràng Tiền"},
        },
        "licence": {"number": "010123456789"},
        "requested_classes": {"B2": "B"},
        "force_majeure": False,
        "health_certificate": {"number": "KSK-2026-000123", "issued_on": "2026-10-01",
                               "facility_code": "01-BVBM", "fit_for": ["B", "C1"]},
        "photo": {"content_type": "image/jpeg", "data": PHOTO},
        "delivery": {"method": "post", "address": {"province_code": "01", "commune_code": "00004",
                                                    "detail": "Số 1 Tràng Tiền"}},
    }
    for key, value in overrides.items():
        body[key] = value
    return copy.deepcopy(body)


def seed_an(uow: Any) -> None:
    """Licence 010123456789 (B2 to 2027-01-10) held by NGUYỄN VĂN AN, with his population record and
    a health certificate fit for B and C1 in the sandbox registers."""
    import datetime as dt

    from licence_service.registers.national import put_licence
    from licence_service.store import models

    with uow:
        put_licence(uow, number="010123456789", holder=AN, regime="vn-2017", issued_on="2017-01-10",
                    classes=[{"code": "B2", "passed_on": "2017-01-10", "valid_until": "2027-01-10"}],
                    card_serial="AN0000000001")
        uow.sandbox.merge(models.SandboxPopulationRecord(
            citizen_id=AN["citizen_id"], full_name=AN["full_name"],
            date_of_birth=dt.date.fromisoformat(AN["date_of_birth"]), sex=AN["sex"]))
        uow.sandbox.merge(models.SandboxHealthCertificate(
            number="KSK-2026-000123", citizen_id=AN["citizen_id"], issued_on=dt.date(2026, 10, 1),
            facility_code="01-BVBM", fit_for=["B", "C1"]))
        uow.commit()


def pact() -> dict[str, Any]:
    return json.loads(PACT_FILE.read_text(encoding="utf-8"))
