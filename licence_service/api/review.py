"""/api/v1/applications/{id}/decision and /supplements: settling an application held in
`needs_supplement` (portal status 5). Thin views over licence_service.services.review."""

from __future__ import annotations

from typing import Any

from flask import current_app, g
from flask.views import MethodView
from flask_smorest import Blueprint

from licence_service.api import presenters
from licence_service.api.auth import BEARER, json_body, requires_scope
from licence_service.bootstrap import services_for
from licence_service.services import review as service
from schemas.applications import StatusSchema
from schemas.problems import ProblemSchema
from schemas.review import DecisionRequestSchema, SupplementRequestSchema

blp = Blueprint("review", __name__, url_prefix="/api/v1/applications",
                description="Settling applications held for documents or an officer's decision (portal status 5)")

# Request schemas are passed as instances: webargs would build a new one (and new nested schemas,
# deep-copying every field) for each request given a class. Loading keeps no state on them.
@blp.route("/<uuid:application_id>/decision")
class Decision(MethodView):
    @blp.doc(security=BEARER)
    @requires_scope("applications:review")
    @json_body
    @blp.arguments(DecisionRequestSchema())
    @blp.response(202, StatusSchema, description="Decided: accepted (then the fee is requested) or refused")
    @blp.alt_response(404, schema=ProblemSchema)
    @blp.alt_response(409, schema=ProblemSchema, description="The application is not held for a decision")
    def post(self, data: dict[str, Any], application_id: Any) -> Any:
        """An officer accepts or refuses an application held for review (e.g. R-ELIG-6 force majeure)."""
        services = services_for(current_app)
        application = service.decide(
            services.uow, str(application_id), data["decision"], data.get("note"),
            officer=g.principal.client_id, working_days=services.settings.processing_working_days,
            correlation_id=g.get("correlation_id"))
        return presenters.status_only(application)


@blp.route("/<uuid:application_id>/supplements")
class Supplements(MethodView):
    @blp.doc(security=BEARER)
    @requires_scope("applications:submit")
    @json_body
    @blp.arguments(SupplementRequestSchema())
    @blp.response(202, StatusSchema, description="Stored; the application goes back through the checks")
    @blp.alt_response(404, schema=ProblemSchema)
    @blp.alt_response(409, schema=ProblemSchema, description="The application is not waiting for documents")
    def post(self, data: dict[str, Any], application_id: Any) -> Any:
        """A new health certificate and/or photo for an application in portal status 5."""
        application = service.supplement(services_for(current_app).uow, str(application_id), data,
                                         client_id=g.principal.client_id, correlation_id=g.get("correlation_id"))
        return presenters.status_only(application)
