"""Personal data never reaches a log (decree 13/2023/NĐ-CP; licence_service.logs): numbers that can be
citizen IDs, CMND or phone numbers, e-mail addresses and photo data are masked wherever they appear,
and names wherever the code has told the logger about them."""

from __future__ import annotations

import base64
import io
import json
import logging

import pytest

from licence_service.logs import (
    MASKED,
    JsonFormatter,
    PersonalDataFilter,
    install_masking,
    mask,
    mask_record,
    personal_data,
    personal_values,
)
from tests.support.data import PHOTO, application_body

CITIZEN_ID, PHONE, NAME = "001089012345", "0912345678", "NGUYỄN VĂN AN"


@pytest.mark.parametrize("text, gone", [
    ("citizen 001089012345 applied", "001089012345"),
    ("old id=123456789;", "123456789"),
    ("call +84912345678 or 0912345678", "912345678"),
    ("call 091 234 5678", "234 5678"),
    ("mail an.nguyen@example.vn", "an.nguyen"),
    (f"photo {PHOTO}", PHOTO[:40]),
    ("bytes " + repr(base64.b64decode(PHOTO)), "\\xff\\xd8\\xff\\xe0\\x00\\x10JFIF"),
])
def test_personal_numbers_addresses_and_photo_data_are_masked(text, gone):
    masked = mask(text)
    assert gone not in masked


def test_the_last_three_digits_stay_to_tell_lines_apart():
    assert mask("id 001089012345") == "id *********345"


def test_ids_of_applications_and_digests_are_left_alone():
    text = "application 6f1c2a3b-1111-4222-8333-123456789012 body ab12" + "cd" * 30
    assert mask(text) == text


def test_a_known_name_is_masked_in_any_case_spacing_or_unicode_form():
    import unicodedata

    text = f"{NAME} / nguyễn  văn an / {unicodedata.normalize('NFD', 'Nguyễn Văn An')} / {json.dumps(NAME)}"
    masked = mask(text, [NAME])
    assert "NGUY" not in masked.upper() and "\\u1ec4" not in masked.lower()


def test_personal_values_of_a_request_body_are_its_ids_names_phones_e_mails_and_addresses():
    values = personal_values(application_body())
    assert {CITIZEN_ID, NAME, PHONE, "an.nguyen@example.vn", "Số 1 Tràng Tiền"} <= set(values)


@pytest.fixture
def masking_installed():
    before = logging.getLogRecordFactory()
    install_masking()
    yield
    logging.setLogRecordFactory(before)


def test_every_handler_sees_masked_records_once_masking_is_installed(masking_installed, caplog):
    log = logging.getLogger("licence_service.test")
    with caplog.at_level(logging.INFO), personal_data(NAME):
        log.info("checking %s (%s), phone %s", NAME, CITIZEN_ID, PHONE)
        try:
            raise ValueError(f"register rejected {CITIZEN_ID} for {NAME}")
        except ValueError:
            log.exception("failed")
    assert CITIZEN_ID not in caplog.text and PHONE not in caplog.text and NAME not in caplog.text
    assert "[masked]" in caplog.text and "*********345" in caplog.text
    assert "register rejected" in caplog.text  # the traceback is kept, masked


def test_structured_personal_fields_are_masked_and_dropped_by_the_services_handlers():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("test"))
    handler.addFilter(PersonalDataFilter())
    log = logging.getLogger("licence_service.test.structured")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("holder %s does not match", NAME, extra={"personal": {"full_name": NAME},
                                                               "application_id": "app-1"})
    finally:
        log.removeHandler(handler)
    entry = json.loads(stream.getvalue())
    assert entry["message"] == "holder [masked] does not match"
    assert entry["application_id"] == "app-1" and "personal" not in entry


def test_a_record_whose_arguments_do_not_fit_its_format_does_not_leak_them(masking_installed, caplog):
    with caplog.at_level(logging.INFO):
        logging.getLogger("licence_service.test").info("one %s", CITIZEN_ID, PHONE)
    assert CITIZEN_ID not in caplog.text and PHONE not in caplog.text


@pytest.mark.parametrize("value, text", [
    ("Lê Thị Kim", "note: LÊ THỊ KIM called"),  # other case
    ("Kim", "note: \u212aim called"),  # KELVIN SIGN: re.IGNORECASE takes it for k
    ("sang", "note: \u017fang called"),  # LATIN SMALL LETTER LONG S, taken for s
    ("Inh", "note: \u0131nh called"),  # dotless ı, taken for i
    ("Kiên", "note: KİÊN called"),  # İ, whose simple lower case is i
    ("NGUYỄN VĂN AN", "note: nguye\u0302\u0303n   văn\tan called"),  # decomposed, other spacing
])
def test_a_known_value_is_masked_whatever_re_ignorecase_takes_for_its_letters(value, text):
    # mask() compiles the known values' expression only when a quick test says the text may hold
    # one of them: that test must never say no where the expression would match.
    masked = mask(text, [value])
    assert "called" in masked and MASKED in masked


def test_a_line_without_known_values_is_left_as_it_is():
    assert mask("POST /api/v1/applications 202", [NAME, CITIZEN_ID, "Số 1 Tràng Tiền"]) == \
        "POST /api/v1/applications 202"


def test_a_record_masked_again_is_masked_for_what_changed_since_and_otherwise_kept_as_it_was():
    # A record is masked where it is made and again by each handler (mask_record skips what it
    # has already done): a personal field set after the first masking (as `extra` fields are),
    # or a new message, is still masked the second time.
    record = logging.LogRecord("licence_service.test", logging.INFO, __file__, 1, "holder %s, id %s",
                               (NAME, CITIZEN_ID), None)
    mask_record(record)
    first = record.msg
    assert NAME in first and CITIZEN_ID not in first  # the name was not known yet
    assert mask_record(record).msg is first  # unchanged: kept as it was
    record.__dict__["full_name"] = NAME
    assert mask_record(record).msg == "holder [masked], id *********345"
    assert "full_name" not in record.__dict__
    record.msg, record.args = "call %s", (PHONE,)
    assert mask_record(record).msg == "call *******678"
    # A value made known after the record was masked is masked the next time it is.
    record.msg, record.args = "holder NGUYỄN VĂN AN", None
    mask_record(record)
    with personal_data(NAME):
        assert mask_record(record).msg == "holder [masked]"


def test_structured_fields_are_masked_and_ids_in_them_kept():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("test"))
    log = logging.getLogger("licence_service.test.fields")
    log.addHandler(handler)
    log.propagate = False
    application_id = "0b6f5f43-1c1e-4c52-9a5e-123456789012"  # twelve digits at its end, yet an id
    try:
        log.warning("seen", extra={"application_id": application_id, "path": f"/api/v1/licences/{CITIZEN_ID}"})
    finally:
        log.removeHandler(handler)
    entry = json.loads(stream.getvalue())
    assert entry["application_id"] == application_id
    assert entry["path"] == "/api/v1/licences/*********345"
