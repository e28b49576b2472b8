"""Test data: the portal's sample application and the register entries it needs."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

PACT_FILE = Path(__file__).resolve().parent.parent / "contract" / "pacts" / "portal-licence-service.pact.json"

# The portal's sample photo (the pact's): a well-formed 30x40 JPEG, as the photo check requires.
PHOTO = (
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAA0JCgsKCA0LCgsODg0PEyAVExISEyccHhcgLikxMC4pLSwzOko+MzZGNywtQFdB"
    "RkxOUlNSMj5aYVpQYEpRUk//2wBDAQ4ODhMREyYVFSZPNS01T09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09P"
    "T09PT09PT09PT09PT0//wAARCAAoAB4DASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAA"
    "AgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6"
    "Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXG"
    "x8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREA"
    "AgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5"
    "OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPE"
    "xcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDpaKKK7zyQooooAKKKKACiiigAooooAKKK"
    "KAP/2Q=="
)



def png_bytes(width: int = 1, height: int = 1) -> bytes:
    """A well-formed PNG of grey pixels (the photo check reads the whole file's structure)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


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


# --------------------------------------------------------------------------------------------------
# Other citizens, licences and applications built from parts (rule-book and review tests)


def citizen(citizen_id: str, full_name: str, date_of_birth: str, sex: str) -> dict[str, str]:
    """An applicant's identity as the portal sends it (its citizen ID must agree with sex and birth
    year, R-ID)."""
    return {"citizen_id": citizen_id, "full_name": full_name, "date_of_birth": date_of_birth, "sex": sex}


def today_local() -> Any:
    import datetime as dt

    from licence_service.domain.regime import LOCAL_TZ

    return dt.datetime.now(LOCAL_TZ).date()


def seed_citizen(uow: Any, holder: dict[str, str], *, licence_number: str, classes: list[dict[str, Any]],
                 regime: str = "vn-2017", status: str = "valid", points: int | None = 12,
                 issued_on: str | None = None, card_serial: str | None = None,
                 certificate: dict[str, Any] | None = None) -> None:
    """A licence held by `holder` in the national register, `holder` in the sandbox population
    register and, when given, a health certificate in the sandbox health register (its `issued_on`
    a date or ISO text). Commits."""
    import datetime as dt

    from licence_service.registers.national import put_licence
    from licence_service.store import models

    with uow:
        put_licence(uow, number=licence_number, holder=holder, classes=classes, regime=regime, status=status,
                    points=points, issued_on=issued_on or classes[0].get("passed_on"), card_serial=card_serial)
        uow.sandbox.merge(models.SandboxPopulationRecord(
            citizen_id=holder["citizen_id"], full_name=holder["full_name"],
            date_of_birth=dt.date.fromisoformat(holder["date_of_birth"]), sex=holder["sex"]))
        if certificate:
            issued = certificate["issued_on"]
            uow.sandbox.merge(models.SandboxHealthCertificate(
                number=certificate["number"], citizen_id=holder["citizen_id"],
                issued_on=issued if isinstance(issued, dt.date) else dt.date.fromisoformat(issued),
                facility_code=certificate.get("facility_code", "01-BVBM"),
                fit_for=list(certificate.get("fit_for", []))))
        uow.commit()


def application_for(holder: dict[str, str], licence_number: str, dossier_id: str, *,
                    procedure: str = "licence_renewal", received_at: str | None = None,
                    certificate: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """application_body() for another citizen and licence, received now (Asia/Ho_Chi_Minh) unless
    `received_at` says otherwise. A permit application carries none of the renewal-only fields."""
    import datetime as dt

    from licence_service.domain.regime import LOCAL_TZ

    body = application_body(procedure=procedure, portal_dossier_id=dossier_id,
                            received_at=received_at or dt.datetime.now(LOCAL_TZ).isoformat(timespec="seconds"),
                            licence={"number": licence_number})
    body["applicant"].update(holder)
    # The sample's certificate is AN's: another citizen refers to their own, or to none.
    body.pop("health_certificate")
    if certificate:
        body["health_certificate"] = {
            "number": certificate["number"], "issued_on": str(certificate["issued_on"]),
            "facility_code": certificate.get("facility_code", "01-BVBM"),
            "fit_for": list(certificate.get("fit_for", []))}
    if procedure == "international_permit":
        for key in ("reason", "requested_classes", "health_certificate", "force_majeure"):
            body.pop(key, None)
    body.update(copy.deepcopy(overrides))
    return body
