"""Request and response schemas of /api/v1/applications (contracts/PORTAL.md §1)."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from licence_service.domain.identifiers import citizen_id_problems
from schemas.fields import Base64Bytes, Digits, Text

PROCEDURES = ("licence_renewal", "international_permit")
REASONS = ("expiring", "expired", "damaged", "lost", "details_changed", "card_conversion")
STATUSES = (
    "received", "accepted", "refused", "needs_supplement", "awaiting_payment",
    "processing", "issued", "delivered", "withdrawn", "stopped",
)
CLASS_CODE = validate.Regexp(r"^[A-Z][A-Z0-9]{0,4}$", error="is not a licence class code")
MAX_PHOTO_BYTES = 1024 * 1024
PHOTO_MAGIC = {"image/jpeg": (b"\xff\xd8\xff",), "image/png": (b"\x89PNG\r\n\x1a\n",)}


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class AddressSchema(StrictSchema):
    province_code = Digits(2, required=True)
    commune_code = Digits(5, required=True)
    detail = Text(300, required=True)


class ApplicantSchema(StrictSchema):
    citizen_id = Digits(12, required=True)
    full_name = Text(100, required=True)
    date_of_birth = fields.Date(required=True)
    sex = fields.String(required=True, validate=validate.OneOf(("male", "female")))
    nationality = fields.String(load_default="VN", validate=validate.Regexp(r"^[A-Z]{2}$"))
    phone = fields.String(validate=validate.Regexp(r"^\+?[0-9]{9,15}$", error="is not a phone number"))
    email = fields.Email(validate=validate.Length(max=254))
    residence = fields.Nested(AddressSchema, required=True)

    @validates_schema(skip_on_field_errors=False)
    def _citizen_id_matches(self, data: dict[str, Any], **kwargs: Any) -> None:
        # R-ID: a citizen ID whose G/YY contradict the stated sex or birth date is a 422.
        if "citizen_id" not in data:
            return
        problems = citizen_id_problems(data["citizen_id"], data.get("sex"), data.get("date_of_birth"))
        if problems:
            raise ValidationError(problems, field_name="citizen_id")


class LicenceRefSchema(StrictSchema):
    number = Digits(12, required=True)


class HealthCertificateRefSchema(StrictSchema):
    number = Text(32, required=True)
    issued_on = fields.Date(required=True)
    facility_code = Text(32, required=True)
    fit_for = fields.List(fields.String(validate=CLASS_CODE), load_default=list)


class PhotoSchema(StrictSchema):
    content_type = fields.String(required=True, validate=validate.OneOf(tuple(PHOTO_MAGIC)))
    data = Base64Bytes(max_bytes=MAX_PHOTO_BYTES, required=True)

    @validates_schema(skip_on_field_errors=False)
    def _content_matches_type(self, data: dict[str, Any], **kwargs: Any) -> None:
        # The declared type is not trusted: the bytes must start like a JPEG or PNG file.
        kind, content = data.get("content_type"), data.get("data")
        if kind in PHOTO_MAGIC and content is not None and not content.startswith(PHOTO_MAGIC[kind]):
            raise ValidationError([f"is not a {kind} image"], field_name="data")


class DeliverySchema(StrictSchema):
    method = fields.String(required=True, validate=validate.OneOf(("post", "pickup")))
    address = fields.Nested(AddressSchema)

    @validates_schema(skip_on_field_errors=False)
    def _address_for_post(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("method") == "post" and not data.get("address"):
            raise ValidationError(["required when method is post"], field_name="address")


class ApplicationRequestSchema(StrictSchema):
    procedure = fields.String(required=True, validate=validate.OneOf(PROCEDURES))
    portal_dossier_id = Text(50, required=True)
    received_at = fields.AwareDateTime(required=True, format="iso")
    channel = fields.String(load_default="online", validate=validate.OneOf(("online", "counter")))
    reason = fields.String(validate=validate.OneOf(REASONS))
    applicant = fields.Nested(ApplicantSchema, required=True)
    licence = fields.Nested(LicenceRefSchema, required=True)
    requested_classes = fields.Dict(keys=fields.String(validate=CLASS_CODE), values=fields.String(validate=CLASS_CODE))
    force_majeure = fields.Boolean(load_default=False)
    health_certificate = fields.Nested(HealthCertificateRefSchema, allow_none=True)
    photo = fields.Nested(PhotoSchema, required=True)
    delivery = fields.Nested(DeliverySchema)

    @validates_schema(skip_on_field_errors=False)
    def _procedure_fields(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("procedure") == "licence_renewal" and "reason" not in data:
            raise ValidationError(["required for licence_renewal"], field_name="reason")


class LinksSchema(Schema):
    self = fields.String(required=True)


class ApplicationCreatedSchema(Schema):
    id = fields.String(required=True)
    portal_dossier_id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    portal_status = fields.Integer(required=True)
    links = fields.Nested(LinksSchema, required=True)


class FeeSchema(Schema):
    amount = fields.Integer(allow_none=True)
    currency = fields.String()
    paid = fields.Boolean()


class HistoryEntrySchema(Schema):
    status = fields.String(required=True)
    portal_status = fields.Integer(required=True)
    at = fields.String(required=True, metadata={"format": "date-time"})
    note = fields.String(allow_none=True)


def DateText(**kwargs: Any) -> fields.String:
    """A date already rendered as YYYY-MM-DD (the register keeps printed data as JSON)."""
    return fields.String(metadata={"format": "date"}, **kwargs)


class LicenceClassOutSchema(Schema):
    code = fields.String(required=True)
    passed_on = DateText(allow_none=True)
    valid_until = DateText(allow_none=True)
    restrictions = fields.List(fields.String())


class IssuedLicenceSchema(Schema):
    kind = fields.String(validate=validate.OneOf(("licence", "international_permit")))
    number = fields.String()
    card_serial = fields.String(allow_none=True)
    licence_number = fields.String()
    regime = fields.String()
    issued_on = DateText()
    valid_until = DateText(allow_none=True)
    issuing_authority = fields.String()
    holder = fields.Dict()
    classes = fields.List(fields.Nested(LicenceClassOutSchema))


class ApplicationDetailSchema(Schema):
    id = fields.String(required=True)
    portal_dossier_id = fields.String(required=True)
    procedure = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    portal_status = fields.Integer(required=True)
    regime = fields.String(required=True)
    received_at = fields.String(required=True, metadata={"format": "date-time"})
    accepted_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    appointment_date = fields.Date(allow_none=True)
    fee = fields.Nested(FeeSchema, required=True)
    refusal_reasons = fields.List(fields.String(), required=True)
    licence = fields.Nested(IssuedLicenceSchema, allow_none=True)
    portal_sync = fields.Dict(metadata={"description": "the last portal status the portal acknowledged"})
    history = fields.List(fields.Nested(HistoryEntrySchema), required=True)
    links = fields.Nested(LinksSchema)


class ApplicationSummarySchema(Schema):
    id = fields.String(required=True)
    portal_dossier_id = fields.String(required=True)
    status = fields.String(required=True)
    portal_status = fields.Integer(required=True)


class ApplicationListSchema(Schema):
    items = fields.List(fields.Nested(ApplicationSummarySchema), required=True)


class ApplicationQuerySchema(StrictSchema):
    portal_dossier_id = Text(50, required=True)


class StatusSchema(Schema):
    """The short answer of the state-changing calls (payment, withdrawal)."""

    id = fields.String(required=True)
    status = fields.String(required=True)
    portal_status = fields.Integer(required=True)


class PaymentRequestSchema(StrictSchema):
    transaction_id = Text(64, required=True)
    amount = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    currency = fields.String(required=True, validate=validate.OneOf(("VND",)))
    paid_at = fields.AwareDateTime(required=True, format="iso")


class WithdrawalRequestSchema(StrictSchema):
    reason = Text(1000, required=True)
