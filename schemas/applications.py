"""Request and response schemas of /api/v1/applications (contracts/PORTAL.md §1)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import current_app, has_app_context
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from licence_service.domain.identifiers import PROVINCE_CODES_2025, citizen_id_problems
from licence_service.domain.regime import LOCAL_TZ
from schemas.fields import Base64Bytes, Digits, FullMatch, Name, Pattern, Text, no_control_characters
from schemas.images import MAGIC, image_problem

PROCEDURES = ("licence_renewal", "international_permit")
REASONS = ("expiring", "expired", "damaged", "lost", "details_changed", "card_conversion")
STATUSES = (
    "received", "accepted", "refused", "needs_supplement", "awaiting_payment",
    "processing", "issued", "delivered", "withdrawn", "stopped",
)
CLASS_CODE = FullMatch(r"^[A-Z][A-Z0-9]{0,4}$", error="is not a licence class code")
MAX_CLASSES = 20
MAX_PHOTO_BYTES = 1024 * 1024
PHOTO_MAGIC = {kind: (magic,) for kind, magic in MAGIC.items()}
# Certificate numbers and facility codes (KSK-2026-000123, 01-BVBM): letters, digits and . / _ -
CODE = r"^[A-Za-z0-9][A-Za-z0-9./_-]{0,31}$"
EARLIEST_DATE = dt.date(1900, 1, 1)
EARLIEST_TIMESTAMP = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
DEFAULT_CLOCK_SKEW_SECONDS = 300


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


def clock_skew() -> dt.timedelta:
    """How far ahead of this server's clock a client's timestamp may be (CLOCK_SKEW_SECONDS)."""
    seconds = current_app.config.get("CLOCK_SKEW_SECONDS") if has_app_context() else None
    return dt.timedelta(seconds=DEFAULT_CLOCK_SKEW_SECONDS if seconds is None else seconds)


def past_timestamp(value: dt.datetime) -> None:
    """Not in the future (beyond the allowed clock skew), not before 2000."""
    if value > dt.datetime.now(dt.UTC) + clock_skew():
        raise ValidationError("must not be in the future")
    if value < EARLIEST_TIMESTAMP:
        raise ValidationError("must not be before 2000-01-01")


def past_date(value: dt.date) -> None:
    """Not after today in Asia/Ho_Chi_Minh (with the clock skew), not before 1900."""
    if value > (dt.datetime.now(LOCAL_TZ) + clock_skew()).date():
        raise ValidationError("must not be in the future")
    if value < EARLIEST_DATE:
        raise ValidationError("must not be before 1900-01-01")


class AddressSchema(StrictSchema):
    # R-ID: the 34 province codes after the 2025 merger.
    province_code = fields.String(required=True, validate=validate.OneOf(
        sorted(PROVINCE_CODES_2025), error="is not a province code (R-ID, 2025 list)"))
    commune_code = Digits(5, required=True)
    detail = Text(300, required=True)


class ApplicantSchema(StrictSchema):
    citizen_id = Digits(12, required=True)
    full_name = Name(100, required=True)
    date_of_birth = fields.Date(required=True, validate=past_date)
    sex = fields.String(required=True, validate=validate.OneOf(("male", "female")))
    nationality = Pattern(r"^[A-Z]{2}$", "is not an ISO 3166-1 alpha-2 code", load_default="VN")
    phone = Pattern(r"^\+?[0-9]{9,15}$", "is not a phone number")
    email = fields.Email(validate=[validate.Length(max=254), no_control_characters])
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
    number = Pattern(CODE, "is not a certificate number", required=True)
    issued_on = fields.Date(required=True, validate=past_date)
    facility_code = Pattern(CODE, "is not a facility code", required=True)
    fit_for = fields.List(fields.String(validate=CLASS_CODE), load_default=list,
                          validate=validate.Length(max=MAX_CLASSES))


class PhotoSchema(StrictSchema):
    content_type = fields.String(required=True, validate=validate.OneOf(tuple(PHOTO_MAGIC)))
    data = Base64Bytes(max_bytes=MAX_PHOTO_BYTES, required=True)

    @validates_schema(skip_on_field_errors=False)
    def _content_matches_type(self, data: dict[str, Any], **kwargs: Any) -> None:
        # The declared type is not trusted: the bytes must be a well-formed JPEG or PNG file of that
        # type, with nothing glued to it (schemas.images).
        kind, content = data.get("content_type"), data.get("data")
        if kind in PHOTO_MAGIC and content is not None:
            problem = image_problem(kind, content)
            if problem:
                raise ValidationError([problem], field_name="data")


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
    received_at = fields.AwareDateTime(required=True, format="iso", validate=past_timestamp)
    channel = fields.String(load_default="online", validate=validate.OneOf(("online", "counter")))
    reason = fields.String(validate=validate.OneOf(REASONS))
    applicant = fields.Nested(ApplicantSchema, required=True)
    licence = fields.Nested(LicenceRefSchema, required=True)
    requested_classes = fields.Dict(keys=fields.String(validate=CLASS_CODE), values=fields.String(validate=CLASS_CODE),
                                    validate=validate.Length(max=MAX_CLASSES))
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
    portal_sync = fields.Dict(metadata={"description": (
        "DongBoHoSoMC sync: acknowledged_portal_status (the last status the portal acknowledged), "
        "state (in_sync | pending | retrying | failed) and the failing calls")})
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
    amount = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=1_000_000_000))
    currency = fields.String(required=True, validate=validate.OneOf(("VND",)))
    paid_at = fields.AwareDateTime(required=True, format="iso", validate=past_timestamp)


class WithdrawalRequestSchema(StrictSchema):
    reason = Text(1000, required=True)
