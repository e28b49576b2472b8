"""/api/v1/applications: thin views over the service layer (licence_service.services)."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, g, request
from flask.views import MethodView
from flask_smorest import Blueprint

from licence_service.api import presenters
from licence_service.api.auth import BEARER, json_body, requires_scope
from licence_service.api.errors import validation_problem
from licence_service.bootstrap import services_for
from licence_service.services import applications as service
from licence_service.services import portal_sync
from schemas.applications import (
    ApplicationCreatedSchema,
    ApplicationDetailSchema,
    ApplicationListSchema,
    ApplicationQuerySchema,
    ApplicationRequestSchema,
    PaymentRequestSchema,
    StatusSchema,
    WithdrawalRequestSchema,
)
from schemas.problems import ProblemSchema

blp = Blueprint("applications", __name__, url_prefix="/api/v1/applications",
                description="Applications forwarded by the National Public Service Portal")



def _uow() -> Any:
    return services_for(current_app).uow


def _correlation_id() -> str | None:
    return g.get("correlation_id")


# Request schemas are passed as instances: webargs would build a new one (and new nested schemas,
# deep-copying every field) for each request given a class. Loading keeps no state on them.
@blp.route("")
class Applications(MethodView):
    @blp.doc(security=BEARER)
    @requires_scope("applications:submit")
    @json_body
    @blp.arguments(ApplicationRequestSchema())
    @blp.response(202, ApplicationCreatedSchema, description="Accepted for processing")
    @blp.alt_response(200, schema=ApplicationCreatedSchema, description="Already submitted with the same body")
    @blp.alt_response(409, schema=ProblemSchema, description="Dossier id already used with another body")
    def post(self, data: dict[str, Any]) -> Any:
        """Submit an application (idempotent by portal_dossier_id)."""
        try:
            result = service.submit(_uow(), data, request.get_json(), client_id=g.principal.client_id,
                                    correlation_id=_correlation_id())
        except service.DossierConflict:
            abort(409, description="This portal_dossier_id was already submitted with a different body.")
        body = presenters.created(result.application)
        if result.created:
            return body, 202, {"Location": body["links"]["self"]}
        return body, 200

    @blp.doc(security=BEARER)
    @requires_scope("applications:read")
    @blp.arguments(ApplicationQuerySchema(), location="query")
    @blp.response(200, ApplicationListSchema)
    def get(self, query: dict[str, Any]) -> Any:
        """Find applications by portal dossier id."""
        found = service.find_by_dossier(_uow(), query["portal_dossier_id"])
        return {"items": [presenters.summary(a) for a in found]}


@blp.route("/<uuid:application_id>")
class ApplicationById(MethodView):
    @blp.doc(security=BEARER)
    @requires_scope("applications:read")
    @blp.response(200, ApplicationDetailSchema)
    @blp.alt_response(404, schema=ProblemSchema)
    def get(self, application_id: Any) -> Any:
        """An application's state, fee, history and (once issued) the licence or permit."""
        application = service.get(_uow(), str(application_id))
        issued = service.issued_document(_uow(), application)
        return presenters.detail(application, issued, portal_sync.sync_state(_uow(), application))


@blp.route("/<uuid:application_id>/payments")
class Payments(MethodView):
    @blp.doc(security=BEARER)
    @requires_scope("applications:submit")
    @json_body
    @blp.arguments(PaymentRequestSchema())
    @blp.response(202, StatusSchema, description="Payment recorded; processing starts")
    @blp.alt_response(200, schema=StatusSchema, description="This transaction was already recorded")
    @blp.alt_response(404, schema=ProblemSchema)
    @blp.alt_response(409, schema=ProblemSchema, description="The application is not awaiting payment")
    def post(self, data: dict[str, Any], application_id: Any) -> Any:
        """Record the fee payment (idempotent by transaction_id)."""
        try:
            result = service.pay(_uow(), str(application_id), data, client_id=g.principal.client_id,
                                 correlation_id=_correlation_id(), read_uow_factory=services_for(current_app).read_uow)
        except service.PaymentRejected as exc:
            return validation_problem(exc.errors)
        return presenters.status_only(result.application), 202 if result.created else 200


@blp.route("/<uuid:application_id>/withdrawal")
class Withdrawal(MethodView):
    @blp.doc(security=BEARER)
    @requires_scope("applications:submit")
    @json_body
    @blp.arguments(WithdrawalRequestSchema())
    @blp.response(202, StatusSchema, description="Withdrawn (portal status 7)")
    @blp.alt_response(404, schema=ProblemSchema)
    @blp.alt_response(409, schema=ProblemSchema, description="Already issued: can no longer be withdrawn")
    def post(self, data: dict[str, Any], application_id: Any) -> Any:
        """The citizen withdraws the application."""
        application = service.withdraw(_uow(), str(application_id), data["reason"],
                                       client_id=g.principal.client_id, correlation_id=_correlation_id())
        return presenters.status_only(application)
