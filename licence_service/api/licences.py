"""/api/v1/licences/{number}: the national register's record of a licence, for authorised registry
readers (scope registry:read). A thin view over licence_service.services.registry."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from licence_service.api.auth import BEARER, requires_scope
from licence_service.api.errors import validation_problem
from licence_service.bootstrap import services_for
from licence_service.domain.identifiers import is_licence_number
from licence_service.logs import personal_values, remember_personal_data
from licence_service.services import registry
from schemas.licences import LicenceRecordSchema
from schemas.problems import ProblemSchema

blp = Blueprint("licences", __name__, url_prefix="/api/v1/licences",
                description="The national licence register (NATIONAL-MODEL.md), for registry readers")


NUMBER_PARAMETER = {"in": "path", "name": "number", "required": True,
                    "description": "the 12-digit licence number (R-ID)",
                    "schema": {"type": "string", "pattern": "^[0-9]{12}$"}}


@blp.route("/<number>", parameters=[NUMBER_PARAMETER])
class LicenceByNumber(MethodView):
    @blp.doc(security=BEARER)
    @requires_scope("registry:read")
    @blp.response(200, LicenceRecordSchema, description="The whole record, holder's personal data included")
    @blp.alt_response(404, schema=ProblemSchema, description="No licence has this number")
    @blp.alt_response(422, schema=ProblemSchema, description="Not a 12-digit licence number")
    def get(self, number: str) -> Any:
        """A licence with its holder, classes, cards and international permits."""
        if not is_licence_number(number):
            return validation_problem({"number": ["must be 12 digits"]})
        try:
            record = registry.licence_record(services_for(current_app).uow, number)
        except registry.LicenceNotFound:
            abort(404, description="No licence has this number.")
        # The holder's name and address are known from here on: anything logged masks them.
        remember_personal_data(*personal_values(record))
        return record
