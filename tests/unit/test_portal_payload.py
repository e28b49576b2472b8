"""The DongBoHoSoMC payload (PORTAL.md §2, R-PORTAL), its signature, the answer classification and the
retry schedule — pure functions, no server."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from types import SimpleNamespace
from typing import Any

import pytest

from licence_service.config import ConfigError, Settings, load_settings
from licence_service.registers.portal import build_payload, payload_entry, portal_time, sign, sync_call
from licence_service.services.portal_sync import backoff, retry_horizon

ICT = dt.timezone(dt.timedelta(hours=7))


def settings(**overrides: Any) -> Settings:
    return load_settings({"VAR_DIR": "/tmp/unused", "TOKEN_SECRET": "x" * 40}).with_overrides(**overrides)


def application(**overrides: Any) -> SimpleNamespace:
    values: dict[str, Any] = {
        "portal_dossier_id": "G01.99-20261127-0000123", "procedure": "licence_renewal", "channel": "online",
        "received_at": dt.datetime(2026, 11, 27, 9, 15, tzinfo=ICT), "appointment_date": dt.date(2026, 12, 4),
        "applicant": {"full_name": "  nguyễn   văn an "}, "fee_amount": 135000,
    }
    values.update(overrides)
    return SimpleNamespace(**values)


def only_entry(payload: dict[str, Any]) -> dict[str, Any]:
    """The entry of a one-application call (a call's `data` is a list, PORTAL.md §2)."""
    [entry] = payload["data"]
    return entry


def test_the_payload_has_the_fields_of_portal_md():
    payload = build_payload(application(), 2, first=False, settings=settings())
    assert payload == {
        "service": "DongBoHoSoMC", "isUpdating": "True",
        "data": [{"MaHoSo": "G01.99-20261127-0000123", "MaTTHC": "1.002809", "TrangThaiHoSo": "2",
                  "NgayTiepNhan": "20261127091500", "NgayHenTra": "20261204170000", "ChuHoSo": "NGUYỄN VĂN AN",
                  "LoaiDoiTuong": "1", "KenhThucHien": "2", "HinhThuc": "1",
                  "DonViXuLy": "Sở Giao thông vận tải Hà Nội",
                  "DanhSachLePhi": [{"TenPhiLePhi": "Lệ phí đổi GPLX", "Gia": "135000"}]}],
    }


def test_is_updating_is_false_only_for_the_first_sync():
    assert build_payload(application(), 1, first=True, settings=settings())["isUpdating"] == "False"
    assert build_payload(application(), 1, first=False, settings=settings())["isUpdating"] == "True"


def test_procedure_code_and_agency_come_from_configuration():
    configured = load_settings({"VAR_DIR": "/tmp/unused", "TOKEN_SECRET": "x" * 40,
                                "PORTAL_PROCEDURE_CODES": '{"licence_renewal": "9.9", "international_permit": "8.8"}',
                                "PORTAL_AGENCY_NAME": "Sở GTVT TP. Hồ Chí Minh"})
    renewal = only_entry(build_payload(application(), 1, first=True, settings=configured))
    permit = only_entry(build_payload(application(procedure="international_permit"), 1, first=True,
                                      settings=configured))
    assert (renewal["MaTTHC"], permit["MaTTHC"]) == ("9.9", "8.8")
    assert renewal["DonViXuLy"] == permit["DonViXuLy"] == "Sở GTVT TP. Hồ Chí Minh"
    assert permit["DanhSachLePhi"][0]["TenPhiLePhi"] == "Lệ phí cấp GPLX quốc tế"


@pytest.mark.parametrize("instant, expected", [
    (dt.datetime(2026, 11, 27, 2, 15, tzinfo=dt.UTC), "20261127091500"),
    # Just before midnight UTC is the next morning in Hà Nội: the local date is the one sent.
    (dt.datetime(2026, 12, 31, 23, 30, 5, tzinfo=dt.UTC), "20270101063005"),
    (dt.datetime(2026, 11, 27, 9, 15, 59, 999999, tzinfo=ICT), "20261127091559"),
])
def test_dates_are_yyyymmddhhmmss_in_asia_ho_chi_minh(instant, expected):
    assert portal_time(instant) == expected
    assert only_entry(build_payload(application(received_at=instant), 1, first=True,
                                    settings=settings()))["NgayTiepNhan"] == expected


def test_before_acceptance_there_is_no_appointment_and_no_fee_yet():
    data = only_entry(build_payload(application(appointment_date=None, fee_amount=None), 1, first=True,
                                    settings=settings()))
    assert data["NgayHenTra"] == "" and data["DanhSachLePhi"] == []


def test_a_counter_application_is_channel_1():
    assert only_entry(build_payload(application(channel="counter"), 1, first=True,
                                    settings=settings()))["KenhThucHien"] == "1"


def test_one_call_carries_several_dossiers_under_one_is_updating():
    """`data` is a list (PORTAL.md §2): a call of several applications' entries, in the order given;
    isUpdating is the call's."""
    a = payload_entry(application(), 2, settings=settings())
    b = payload_entry(application(portal_dossier_id="G01.99-20261127-0000124", fee_amount=None), 6,
                      settings=settings())
    call = sync_call([a, b], first=False)
    assert call == {"service": "DongBoHoSoMC", "isUpdating": "True", "data": [a, b]}
    assert [(e["MaHoSo"], e["TrangThaiHoSo"]) for e in call["data"]] == [
        ("G01.99-20261127-0000123", "2"), ("G01.99-20261127-0000124", "6")]
    assert sync_call([a], first=True) == build_payload(application(), 2, first=True, settings=settings())
    assert sync_call([a], first=True)["isUpdating"] == "False"


def test_the_signature_is_the_hmac_sha256_of_the_raw_body():
    body = '{"ChuHoSo":"NGUYỄN VĂN AN"}'.encode()
    assert sign(body, "s3cret") == "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()


def test_backoff_doubles_from_the_base_up_to_the_cap():
    s = settings(portal_sync_backoff_base_seconds=5.0, portal_sync_backoff_cap_seconds=60.0)
    assert [backoff(n, s).total_seconds() for n in range(1, 8)] == [5, 10, 20, 40, 60, 60, 60]
    # However many attempts, no overflow: still the cap.
    assert backoff(10_000, s).total_seconds() == 60


def test_the_default_schedule_retries_for_24_hours_every_15_minutes_at_most():
    s = settings()
    assert retry_horizon(s) == dt.timedelta(hours=24)
    assert backoff(1, s) == dt.timedelta(seconds=5)
    assert backoff(100, s) == dt.timedelta(minutes=15)


def test_retry_settings_come_from_the_environment_and_are_validated():
    env = {"VAR_DIR": "/tmp/unused", "TOKEN_SECRET": "x" * 40}
    s = load_settings({**env, "PORTAL_SYNC_RETRY_HOURS": "48", "PORTAL_SYNC_BACKOFF_BASE_SECONDS": "2",
                       "PORTAL_SYNC_BACKOFF_CAP_SECONDS": "300", "PORTAL_SYNC_LEASE_SECONDS": "90"})
    assert (s.portal_sync_retry_hours, s.portal_sync_backoff_base_seconds, s.portal_sync_backoff_cap_seconds,
            s.portal_sync_lease_seconds) == (48, 2, 300, 90)
    with pytest.raises(ConfigError) as bad:
        load_settings({**env, "PORTAL_SYNC_RETRY_HOURS": "soon", "PORTAL_SYNC_BACKOFF_BASE_SECONDS": "60",
                       "PORTAL_SYNC_BACKOFF_CAP_SECONDS": "10", "PORTAL_SYNC_LEASE_SECONDS": "15"})
    message = str(bad.value)
    assert "PORTAL_SYNC_RETRY_HOURS" in message
    assert "PORTAL_SYNC_BACKOFF_CAP_SECONDS must be at least" in message
    assert "PORTAL_SYNC_LEASE_SECONDS must be more than twice" in message


def test_the_batch_size_defaults_to_20_and_must_be_at_least_1():
    env = {"VAR_DIR": "/tmp/unused", "TOKEN_SECRET": "x" * 40}
    assert load_settings(env).portal_sync_batch == 20
    assert load_settings({**env, "PORTAL_SYNC_BATCH": "1"}).portal_sync_batch == 1
    for bad in ("0", "many"):
        with pytest.raises(ConfigError, match="PORTAL_SYNC_BATCH"):
            load_settings({**env, "PORTAL_SYNC_BATCH": bad})


@pytest.mark.parametrize(("variable", "attribute", "default"),
                         [("PORTAL_SYNC_GATHER_SECONDS", "portal_sync_gather_seconds", 0.05),
                          ("STAGE_GATHER_SECONDS", "stage_gather_seconds", 0.2)])
def test_the_gathering_times_default_to_50_and_200_ms_and_0_means_at_once(variable, attribute, default):
    env = {"VAR_DIR": "/tmp/unused", "TOKEN_SECRET": "x" * 40}
    assert getattr(load_settings(env), attribute) == default
    assert getattr(load_settings({**env, variable: "0"}), attribute) == 0
    for bad in ("-1", "soon"):
        with pytest.raises(ConfigError, match=variable):
            load_settings({**env, variable: bad})
