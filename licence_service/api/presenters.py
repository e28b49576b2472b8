"""Turn stored rows into the response documents of PORTAL.md (times in Asia/Ho_Chi_Minh)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from licence_service.domain.regime import LOCAL_TZ
from licence_service.store import models


def local_time(value: dt.datetime | None) -> str | None:
    return value.astimezone(LOCAL_TZ).isoformat() if value else None


def self_link(application: models.Application) -> dict[str, str]:
    return {"self": f"/api/v1/applications/{application.id}"}


def summary(application: models.Application) -> dict[str, Any]:
    return {
        "id": application.id,
        "portal_dossier_id": application.portal_dossier_id,
        "status": application.status,
        "portal_status": application.portal_status,
    }


def created(application: models.Application) -> dict[str, Any]:
    return {**summary(application), "links": self_link(application)}


def status_only(application: models.Application) -> dict[str, Any]:
    return {"id": application.id, "status": application.status, "portal_status": application.portal_status}


def detail(application: models.Application, issued: dict[str, Any] | None,
           portal_sync: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": application.id,
        "portal_dossier_id": application.portal_dossier_id,
        "procedure": application.procedure,
        "status": application.status,
        "portal_status": application.portal_status,
        "regime": application.regime,
        "received_at": local_time(application.received_at),
        "accepted_at": local_time(application.accepted_at),
        "appointment_date": application.appointment_date,
        "fee": {"amount": application.fee_amount, "currency": application.fee_currency,
                "paid": bool(application.fee_paid)},
        "refusal_reasons": list(application.refusal_reasons or []),
        "licence": issued,
        "portal_sync": portal_sync or {"acknowledged_portal_status": application.portal_acked_status},
        "history": [
            {"status": h.status, "portal_status": h.portal_status, "at": local_time(h.at), "note": h.note}
            for h in application.history
        ],
        "links": self_link(application),
    }
