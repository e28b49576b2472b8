"""Request schemas of the calls that settle an application held in `needs_supplement` (portal 5): the
citizen's supplementary documents (PORTAL.md §1) and an officer's decision."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from schemas.applications import HealthCertificateRefSchema, PhotoSchema, StrictSchema
from schemas.fields import Text

DECISIONS = ("accept", "refuse")


class DecisionRequestSchema(StrictSchema):
    decision = fields.String(required=True, validate=validate.OneOf(DECISIONS))
    note = Text(1000, metadata={"description": "the officer's reasoning, kept in the history"})


class SupplementRequestSchema(StrictSchema):
    health_certificate = fields.Nested(HealthCertificateRefSchema)
    photo = fields.Nested(PhotoSchema)

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _something_supplied(self, data: dict[str, Any], original: Any, **kwargs: Any) -> None:
        # Judged on the raw body: a document that was sent but is invalid has its own error already.
        if isinstance(original, dict) and not {"health_certificate", "photo"} & set(original):
            raise ValidationError(["a health_certificate or a photo is required"], field_name="_schema")
