"""The provider states of the portal's pact (PORTAL.md §1), each built from its `params` through the
service's own store, register and service-layer code — never raw SQL — so a state is exactly what the
running service would have produced.

`ProviderStates` is the single state handler given to pact-python's Verifier (with teardown): setup
builds the named state; teardown empties every table so each interaction starts from nothing.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import delete

from licence_service.bootstrap import Services
from licence_service.domain import calendar
from licence_service.domain.regime import LOCAL_TZ, local_date, regime_for
from licence_service.registers.national import put_licence
from licence_service.services import applications as service
from licence_service.services.transitions import change_status
from licence_service.store import models
from schemas.applications import ApplicationRequestSchema
from tests.support.data import application_body, pact

CONTRACT_CLIENT = "portal-contract"

LICENCE_HELD = re.compile(r"^licence (?P<number>\d{12}) with .+ is held by citizen (?P<citizen>\d{12})$")
ALREADY_SUBMITTED = re.compile(r"^dossier (?P<dossier>\S+) was already submitted with the same body$")
AWAITING_FEE = re.compile(
    r"^application (?P<id>[0-9a-f-]{36}) for dossier (?P<dossier>\S+) is awaiting a fee of (?P<fee>\d+) VND$")
# Portal dossier ids carry their receipt date: G01.99-YYYYMMDD-nnnnnnn.
DOSSIER_DATE = re.compile(r"-(\d{8})-")


class UnknownProviderState(LookupError):
    """The pact names a state this handler cannot build: the verification must fail, not guess."""


class ProviderStates:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.calls: list[tuple[str, str]] = []
        self._builders: list[tuple[re.Pattern[str], Callable[[Mapping[str, Any]], None]]] = [
            (LICENCE_HELD, self.licence_held),
            (ALREADY_SUBMITTED, self.already_submitted),
            (AWAITING_FEE, self.awaiting_fee),
        ]

    def __call__(self, state: str, action: str, parameters: dict[str, Any] | None) -> None:
        """pact-python calls this with (state, action, parameters) for each state of an interaction."""
        self.calls.append((action, state))
        if action == "teardown":
            self.reset()
            return
        if not state:  # pact's generic set-up hook for interactions without a state
            return
        for pattern, build in self._builders:
            if pattern.match(state):
                build(parameters or {})
                return
        raise UnknownProviderState(state)

    # -- the states -------------------------------------------------------------------------------

    def licence_held(self, params: Mapping[str, Any]) -> None:
        """The licence in the national register, and the citizen (and health certificate, when
        given) in the sandbox population and health registers the checks consult."""
        holder = {k: params[k] for k in ("citizen_id", "full_name", "date_of_birth", "sex")}
        with self.services.uow() as uow:
            put_licence(uow, number=params["licence_number"], holder=holder, classes=params["classes"],
                        regime=params["regime"], issued_on=_latest_pass(params["classes"]))
            uow.sandbox.merge(models.SandboxPopulationRecord(
                citizen_id=params["citizen_id"], full_name=params["full_name"],
                date_of_birth=dt.date.fromisoformat(params["date_of_birth"]), sex=params["sex"]))
            certificate = params.get("health_certificate")
            if certificate:
                uow.sandbox.merge(models.SandboxHealthCertificate(
                    number=certificate["number"], citizen_id=params["citizen_id"],
                    issued_on=dt.date.fromisoformat(certificate["issued_on"]),
                    facility_code=certificate["facility_code"], fit_for=list(certificate["fit_for"])))
            uow.commit()

    def already_submitted(self, params: Mapping[str, Any]) -> None:
        """The portal's own first submission of this dossier (the pact's request body for it),
        through the service's submit handler — as if the portal had sent it before."""
        body = original_submission(params["portal_dossier_id"])
        data = ApplicationRequestSchema().load(body)
        result = service.submit(self.services.uow, data, body, client_id=CONTRACT_CLIENT)
        assert result.created, "the dossier was already there before its state was set up"

    def awaiting_fee(self, params: Mapping[str, Any]) -> None:
        """An application accepted by the checks with its fee fixed and unpaid (portal status 6),
        under the given id and dossier, with the history the workflow writes: received → accepted →
        awaiting_payment, each through transitions.change_status."""
        received_at = _received_at(params["portal_dossier_id"])
        body = application_body(portal_dossier_id=params["portal_dossier_id"],
                                received_at=received_at.isoformat(), licence={"number": params["licence_number"]})
        body["applicant"]["citizen_id"] = params["citizen_id"]
        data = ApplicationRequestSchema().load(body)
        accepted_at = received_at + dt.timedelta(hours=1)
        application = models.Application(
            id=str(uuid.UUID(params["id"])),
            portal_dossier_id=data["portal_dossier_id"],
            body_sha256=service.body_fingerprint(body),
            procedure=data["procedure"],
            channel=data["channel"],
            reason=data["reason"],
            status="new",
            portal_status=0,
            regime=regime_for(received_at),
            received_at=received_at,
            citizen_id=params["citizen_id"],
            licence_number=params["licence_number"],
            applicant=_jsonable(data["applicant"]),
            details={"requested_classes": data.get("requested_classes") or {},
                     "force_majeure": bool(data.get("force_majeure")),
                     "health_certificate": _jsonable(data.get("health_certificate")),
                     "delivery": _jsonable(data.get("delivery"))},
            refusal_reasons=[],
            created_at=received_at,
            updated_at=received_at,
        )
        with self.services.uow() as uow:
            uow.applications.add(application)
            change_status(uow, application, "received", actor=CONTRACT_CLIENT, note="submitted via portal",
                          at=received_at)
            application.accepted_at = accepted_at
            application.appointment_date = calendar.appointment_date(
                local_date(accepted_at), self.services.settings.processing_working_days)
            change_status(uow, application, "accepted", actor="checks", at=accepted_at)
            application.fee_amount = int(params["fee"])
            application.fee_currency = "VND"
            application.fee_paid = False
            change_status(uow, application, "awaiting_payment", actor="fee",
                          note=f"fee {application.fee_amount} VND", at=accepted_at)
            uow.commit()

    # -- teardown ---------------------------------------------------------------------------------

    def reset(self) -> None:
        """Empty every table (children first), so no interaction sees another's rows."""
        with self.services.uow() as uow:
            for table in reversed(models.Base.metadata.sorted_tables):
                uow.session.execute(delete(table))
            uow.commit()


def original_submission(portal_dossier_id: str) -> dict[str, Any]:
    """The body the portal first sent for a dossier: the pact's submission of that dossier id that
    does not itself presuppose an earlier submission."""
    for interaction in pact()["interactions"]:
        request = interaction["request"]
        body = request.get("body")
        states = [s["name"] for s in interaction.get("providerStates", [])]
        if (request["method"] == "POST" and request["path"] == "/api/v1/applications"
                and isinstance(body, dict) and body.get("portal_dossier_id") == portal_dossier_id
                and "Authorization" in request.get("headers", {})
                and not any(ALREADY_SUBMITTED.match(s) for s in states)):
            return body
    raise UnknownProviderState(f"the pact has no first submission of dossier {portal_dossier_id}")


def _received_at(portal_dossier_id: str) -> dt.datetime:
    match = DOSSIER_DATE.search(portal_dossier_id)
    day = dt.datetime.strptime(match.group(1), "%Y%m%d").date() if match else dt.date.today()
    return dt.datetime.combine(day, dt.time(8, 0), LOCAL_TZ)


def _latest_pass(classes: list[Mapping[str, Any]]) -> str | None:
    passed = sorted(c["passed_on"] for c in classes if c.get("passed_on"))
    return passed[-1] if passed else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return None
    return value
