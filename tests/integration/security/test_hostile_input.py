"""Hostile or malformed bodies (SECURITY.md: oversized or malformed bodies, photo smuggling): each kind
is a 422 problem naming the field, and nothing is stored. The rules: string lengths and character
classes on every field, the code patterns of RULES.md R-ID, dates in sane ranges, photos checked by
their content."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest

from licence_service.domain.regime import LOCAL_TZ
from tests.integration.security.conftest import assert_problem, row_counts
from tests.support.data import PHOTO, application_body, png_bytes

URL = "/api/v1/applications"
JPEG = base64.b64decode(PHOTO)


def at(path: str, value: Any) -> dict[str, Any]:
    """application_body() with `value` at the dotted `path`."""
    body = application_body()
    *parents, last = path.split(".")
    node = body
    for key in parents:
        node = node[key]
    node[last] = value
    return body


def errors_at(errors: dict[str, Any], path: str) -> Any:
    for key in path.split("."):
        errors = errors[key]
    return errors


def now_local(**delta: float) -> str:
    return (dt.datetime.now(LOCAL_TZ) + dt.timedelta(**delta)).isoformat(timespec="seconds")


def today(**delta: float) -> str:
    return (dt.datetime.now(LOCAL_TZ).date() + dt.timedelta(**delta)).isoformat()


def photo(content: bytes, kind: str = "image/jpeg") -> dict[str, str]:
    return {"content_type": kind, "data": base64.b64encode(content).decode()}


# (path of the bad field, its value, a fragment of the expected message)
BAD = {
    # No control characters in any free text (names, addresses, ids, reasons, codes).
    "NUL in the name": ("applicant.full_name", "NGUYỄN\x00VĂN AN", "control characters"),
    "newline in the address": ("applicant.residence.detail", "Số 1\nTràng Tiền", "control characters"),
    "escape sequence in the dossier id": ("portal_dossier_id", "G01\x1b[31m-1", "control characters"),
    "bidi override in the delivery address": ("delivery.address.detail", "Số 1 \u202eTràng Tiền",
                                              "invisible formatting"),
    "zero-width space in the name": ("applicant.full_name", "NGUYỄN\u200bVĂN AN", "invisible formatting"),
    "blank dossier id": ("portal_dossier_id", "   ", "blank"),
    "digits in the name": ("applicant.full_name", "NGUYỄN VĂN 4N", "only letters"),
    "markup in the name": ("applicant.full_name", "<script>alert(1)</script>", "only letters"),
    "name over 100 characters": ("applicant.full_name", "A" * 101, "Length"),
    "address over 300 characters": ("applicant.residence.detail", "x" * 301, "Length"),
    "dossier id over 50 characters": ("portal_dossier_id", "G" * 51, "Length"),
    # The 12-digit and code patterns (R-ID).
    "citizen id with a trailing newline": ("applicant.citizen_id", "001089012345\n", "12 digits"),
    "licence number with Arabic-Indic digits": ("licence.number", "٠١٠١٢٣٤٥٦٧٨٩", "12 digits"),
    "pre-2025 province code": ("applicant.residence.province_code", "02", "province code"),
    "commune code of 4 digits": ("applicant.residence.commune_code", "0004", "5 digits"),
    "phone with letters": ("applicant.phone", "09123abc78", "phone number"),
    "phone with a trailing newline": ("applicant.phone", "0912345678\n", "phone number"),
    "nationality in lower case": ("applicant.nationality", "vn", "ISO 3166"),
    "certificate number with spaces": ("health_certificate.number", "KSK 2026 000123", "certificate number"),
    "facility code with a quote": ("health_certificate.facility_code", "01-BV'BM", "facility code"),
    "class code with a newline": ("requested_classes", {"B2\n": "B"}, "class code"),
    "too many fit_for classes": ("health_certificate.fit_for", ["B"] * 21, "maximum length 20"),
    # Dates in sane ranges.
    "received_at in the future": ("received_at", now_local(hours=1), "future"),
    "received_at before 2000": ("received_at", "1999-12-31T23:00:00+07:00", "2000"),
    "received_at in year 1": ("received_at", "0001-01-01T00:00:00+07:00", "2000"),
    "date of birth in the future": ("applicant.date_of_birth", today(days=2), "future"),
    "date of birth before 1900": ("applicant.date_of_birth", "1899-12-31", "1900"),
    "certificate issued in the future": ("health_certificate.issued_on", today(days=2), "future"),
    # Photos checked by content.
    "JPEG header and nothing else": ("photo", photo(b"\xff\xd8\xff\xe0" + b"\x00" * 64), "decodable"),
    "JPEG cut short": ("photo", photo(JPEG[:-40]), "decodable"),
    "JPEG with a zip glued on": ("photo", photo(JPEG + b"PK\x03\x04" + b"\x00" * 26), "after the end-of-image"),
    "PNG with a bad CRC": ("photo", photo(png_bytes()[:-5] + b"\x00" + png_bytes()[-4:], "image/png"),
                           "decodable"),
    "PNG with HTML after IEND": ("photo", photo(png_bytes() + b"<html><script>", "image/png"), "after IEND"),
    "PNG declared as JPEG": ("photo", photo(png_bytes(), "image/jpeg"), "is not a image/jpeg image"),
    "GIF": ("photo", photo(b"GIF89a" + b"\x00" * 20, "image/gif"), "Must be one of"),
}


@pytest.mark.parametrize("kind", BAD)
def test_each_kind_of_hostile_field_is_422_naming_it_and_stores_nothing(client, services, portal_headers, kind):
    path, value, message = BAD[kind]
    before = row_counts(services)
    response = client.post(URL, json=at(path, value), headers=portal_headers)
    problem = assert_problem(response, 422)
    field_path = "photo" if path == "photo" else path
    found = errors_at(problem["errors"], field_path)
    assert message in str(found), problem["errors"]
    assert row_counts(services) == before


def test_received_at_within_the_clock_skew_is_accepted(client, portal_headers):
    body = application_body(received_at=now_local(seconds=60))  # the portal's clock runs a minute fast
    assert client.post(URL, json=body, headers=portal_headers).status_code == 202


def test_clock_skew_is_configurable(app_with):
    from tests.conftest import token_for
    from tests.integration.security.conftest import bearer

    client = app_with(CLOCK_SKEW_SECONDS="0").test_client()
    body = application_body(received_at=now_local(seconds=60))
    response = client.post(URL, json=body, headers=bearer(token_for("applications:submit")))
    assert errors_at(assert_problem(response, 422)["errors"], "received_at") == ["must not be in the future"]


def test_names_with_vietnamese_letters_in_either_unicode_form_and_punctuation_are_accepted(
        client, portal_headers):
    import unicodedata

    body = application_body()
    body["applicant"]["full_name"] = unicodedata.normalize("NFD", "Nguyễn Văn An")
    body["delivery"]["address"]["detail"] = "Ngõ 12/3, phố Tràng Tiền - P. Hoàn Kiếm"
    assert client.post(URL, json=body, headers=portal_headers).status_code == 202


def test_payment_in_the_future_is_422_and_records_nothing(client, services, portal_headers):
    application_id = client.post(URL, json=application_body(), headers=portal_headers).get_json()["id"]
    before = row_counts(services)
    response = client.post(f"{URL}/{application_id}/payments", headers=portal_headers, json={
        "transaction_id": "PAYGOV-FUTURE", "amount": 135000, "currency": "VND", "paid_at": now_local(days=1)})
    assert errors_at(assert_problem(response, 422)["errors"], "paid_at") == ["must not be in the future"]
    assert row_counts(services) == before


def test_deeply_nested_or_huge_bodies_are_refused_before_they_are_parsed(client, services, portal_headers):
    before = row_counts(services)
    nested = "[" * 100_000 + "]" * 100_000
    response = client.post(URL, data=nested, content_type="application/json", headers=portal_headers)
    assert response.status_code in (400, 413) and response.mimetype == "application/problem+json"
    huge = client.post(URL, data=b"{" + b" " * (services.settings.max_body_bytes + 1) + b"}",
                       content_type="application/json", headers=portal_headers)
    assert_problem(huge, 413)
    assert row_counts(services) == before


def test_an_unknown_field_named_by_a_lone_surrogate_is_422_not_a_crash(client, services, portal_headers):
    body = json.dumps({**application_body(), "\ud800": 1})  # JSON allows the escape; UTF-8 has no such character
    response = client.post(URL, data=body, content_type="application/json", headers=portal_headers)
    assert assert_problem(response, 422)["errors"] == {"\ud800": ["Unknown field."]}
    assert row_counts(services)["applications"] == 0
