"""Hypothesis fuzzing of the DongBoHoSoMC payload builder (licence_service.registers.portal.build_payload,
PORTAL.md §2): for any application the API can have stored — any name, dossier code and channel it
admits, times with any offset within the accepted range, any appointment date and fee — the builder
does not crash, and what it builds can be sent: JSON-encodable to UTF-8 and signable, dates in the
portal's yyyyMMddHHmmss form (R-PORTAL), the holder's name normalised (R-NAME)."""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from licence_service.config import load_settings
from licence_service.domain.model import PORTAL_STATUS
from licence_service.registers.portal import build_payload, sign
from schemas.fields import no_control_characters, personal_name

SETTINGS = load_settings({"VAR_DIR": "/tmp/unused", "TOKEN_SECRET": "x" * 40})
PORTAL_TIME = re.compile(r"[0-9]{14}")


def admitted(validator):  # the API's own field rule decides what a stored value can be
    def check(value: str) -> bool:
        try:
            validator(value)
        except ValidationError:
            return False
        return True

    return check


NAMES = st.text(alphabet=st.characters(categories=("L", "M")) | st.sampled_from(" '-."), min_size=1,
                max_size=100).filter(admitted(personal_name))
DOSSIERS = st.text(min_size=1, max_size=50).filter(lambda t: t.strip()).filter(admitted(no_control_characters))
OFFSETS = st.integers(min_value=-12 * 60, max_value=14 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))
RECEIVED = st.builds(lambda moment, tz: moment.replace(tzinfo=dt.UTC).astimezone(tz),
                     st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2030, 12, 31)), OFFSETS)
APPLICATIONS = st.builds(
    SimpleNamespace,
    portal_dossier_id=DOSSIERS,
    procedure=st.sampled_from(["licence_renewal", "international_permit"]),
    channel=st.sampled_from(["online", "counter"]),
    received_at=RECEIVED,
    appointment_date=st.none() | st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 12, 31)),
    applicant=st.fixed_dictionaries({"full_name": NAMES}),
    fee_amount=st.none() | st.integers(min_value=0, max_value=1_000_000_000),
)


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(application=APPLICATIONS, portal_status=st.sampled_from(sorted(set(PORTAL_STATUS.values()))),
       first=st.booleans())
def test_any_stored_application_builds_a_sendable_payload(application, portal_status, first):
    payload = build_payload(application, portal_status, first=first, settings=SETTINGS)
    body = json.dumps(payload, ensure_ascii=False).encode()  # what PortalClient sends
    assert sign(body, "secret").startswith("sha256=")
    [item] = payload["data"]  # one application, one entry
    assert item["MaHoSo"] == application.portal_dossier_id
    assert item["TrangThaiHoSo"] == str(portal_status)
    assert payload["isUpdating"] == ("False" if first else "True")
    assert PORTAL_TIME.fullmatch(item["NgayTiepNhan"])
    assert item["NgayHenTra"] == "" if application.appointment_date is None else PORTAL_TIME.fullmatch(
        item["NgayHenTra"])
    name = item["ChuHoSo"]
    assert name == unicodedata.normalize("NFC", name) and name == name.upper() and "  " not in name
    assert item["DanhSachLePhi"] == ([] if application.fee_amount is None else [
        {"TenPhiLePhi": item["DanhSachLePhi"][0]["TenPhiLePhi"], "Gia": str(application.fee_amount)}])
