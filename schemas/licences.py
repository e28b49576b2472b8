"""Response schema of GET /api/v1/licences/{number}: a licence as the national register holds it
(NATIONAL-MODEL.md). Personal data in full, for authorised registry readers only (scope
registry:read); never cached (Cache-Control: no-store)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from licence_service.domain.model import LICENCE_STATUSES, REGIMES


class ResidenceSchema(Schema):
    province_code = fields.String(allow_none=True)
    commune_code = fields.String(allow_none=True)
    detail = fields.String(allow_none=True)


class HolderSchema(Schema):
    citizen_id = fields.String(allow_none=True, metadata={"description": "12 digits; absent on some legacy records"})
    legacy_id_number = fields.String(allow_none=True, metadata={"description": "9-digit CMND of legacy records"})
    full_name = fields.String(required=True)
    date_of_birth = fields.Date(allow_none=True)
    birth_year = fields.Integer(allow_none=True, metadata={"description": "legacy rows with only a year"})
    sex = fields.String(required=True)
    nationality = fields.String(required=True)
    residence = fields.Nested(ResidenceSchema, required=True)


class RegisterClassSchema(Schema):
    code = fields.String(required=True)
    passed_on = fields.Date(allow_none=True)
    issued_on = fields.Date(allow_none=True)
    valid_until = fields.Date(allow_none=True)
    restrictions = fields.List(fields.String(), required=True)


class CardSchema(Schema):
    serial = fields.String(required=True)
    issued_on = fields.Date(allow_none=True)
    status = fields.String(required=True, metadata={"description": "valid | replaced"})


class PermitSchema(Schema):
    number = fields.String(required=True)
    classes = fields.List(fields.String(), required=True)
    issued_on = fields.Date(required=True)
    valid_until = fields.Date(required=True)


class LicenceRecordSchema(Schema):
    number = fields.String(required=True)
    card_serial = fields.String(allow_none=True, metadata={"description": "the card now valid (số phôi)"})
    regime = fields.String(required=True, validate=validate.OneOf(sorted(REGIMES)))
    status = fields.String(required=True, validate=validate.OneOf(sorted(LICENCE_STATUSES)))
    points = fields.Integer(allow_none=True)
    issued_on = fields.Date(allow_none=True)
    issuing_authority = fields.String(required=True)
    holder = fields.Nested(HolderSchema, required=True)
    classes = fields.List(fields.Nested(RegisterClassSchema), required=True)
    cards = fields.List(fields.Nested(CardSchema), required=True)
    international_permits = fields.List(fields.Nested(PermitSchema), required=True)
    updated_at = fields.AwareDateTime(required=True)
