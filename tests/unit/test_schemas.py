"""The request schemas (PORTAL.md §1) load what the portal sends and name every problem."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from marshmallow import ValidationError

from schemas.applications import MAX_PHOTO_BYTES, ApplicationRequestSchema, PaymentRequestSchema
from tests.support.data import application_body, pact


def load(body):
    return ApplicationRequestSchema().load(body)


def errors_of(body):
    with pytest.raises(ValidationError) as err:
        load(body)
    return err.value.messages


def test_every_application_body_in_the_pact_that_should_be_accepted_loads():
    bodies = [i["request"]["body"] for i in pact()["interactions"]
              if i["request"]["path"] == "/api/v1/applications" and i["request"]["method"] == "POST"
              and i["response"]["status"] in (200, 202, 401, 409)]
    assert len(bodies) == 5
    for body in bodies:
        data = load(body)
        assert data["received_at"].tzinfo is not None
        assert data["photo"]["data"].startswith(b"\xff\xd8\xff")


def test_loaded_values_are_typed():
    data = load(application_body())
    assert data["received_at"] == dt.datetime(2026, 11, 27, 2, 15, tzinfo=dt.UTC)
    assert data["applicant"]["date_of_birth"] == dt.date(1989, 5, 17)
    assert data["channel"] == "online" and data["force_majeure"] is False


def test_citizen_id_against_sex_and_birth_date_R_ID():
    body = application_body()
    body["applicant"].update(sex="female", date_of_birth="1979-05-17")
    assert errors_of(body) == {"applicant": {"citizen_id": ["does not match date_of_birth", "does not match sex"]}}


def test_received_at_without_offset_is_refused():
    assert "received_at" in errors_of(application_body(received_at="2026-11-27T09:15:00"))


def test_post_delivery_needs_an_address_and_pickup_does_not():
    assert errors_of(application_body(delivery={"method": "post"})) == {
        "delivery": {"address": ["required when method is post"]}}
    assert load(application_body(delivery={"method": "pickup"}))["delivery"] == {"method": "pickup"}


def test_renewal_needs_a_reason_and_the_permit_does_not():
    body = application_body()
    del body["reason"]
    assert errors_of(body) == {"reason": ["required for licence_renewal"]}
    body["procedure"] = "international_permit"
    assert load(body)["procedure"] == "international_permit"


def test_photo_over_one_mebibyte_is_refused():
    big = base64.b64encode(b"\xff\xd8\xff" + b"\0" * MAX_PHOTO_BYTES).decode()
    body = application_body(photo={"content_type": "image/jpeg", "data": big})
    assert errors_of(body) == {"photo": {"data": [f"must be at most {MAX_PHOTO_BYTES} bytes once decoded"]}}


def test_control_characters_in_a_name_are_refused():
    body = application_body()
    body["applicant"]["full_name"] = "NGUYỄN\x00VĂN AN"
    assert errors_of(body) == {"applicant": {"full_name": ["must not contain control characters"]}}


def test_payment_amount_must_be_an_integer_and_currency_vnd():
    with pytest.raises(ValidationError) as err:
        PaymentRequestSchema().load({"transaction_id": "T", "amount": "135000", "currency": "USD",
                                     "paid_at": "2026-11-27T10:30:00+07:00"})
    assert set(err.value.messages) == {"amount", "currency"}
