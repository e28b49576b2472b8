"""RFC 9457 problem documents, the body of every error response (`application/problem+json`)."""

from __future__ import annotations

from marshmallow import Schema, fields

VALIDATION_TYPE = "https://errors.licence-service.vn/validation"


class ProblemSchema(Schema):
    type = fields.String(required=True, metadata={"example": "about:blank"})
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    errors = fields.Dict(metadata={"description": "field path -> list of messages, nested like the request"})
