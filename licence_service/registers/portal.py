"""The portal side of DongBoHoSoMC (PORTAL.md §2): building, signing and sending the payload."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
from dataclasses import dataclass
from typing import Any

import requests

from licence_service.config import Settings
from licence_service.domain.names import normalise_name
from licence_service.domain.regime import LOCAL_TZ

FEE_NAMES = {"licence_renewal": "Lệ phí đổi GPLX", "international_permit": "Lệ phí cấp GPLX quốc tế"}
CHANNEL_CODES = {"online": "2", "counter": "1"}
# NgayHenTra is a date; the portal shows a time, so the end of the working day is sent.
APPOINTMENT_TIME = dt.time(17, 0)


def portal_time(value: dt.datetime) -> str:
    """yyyyMMddHHmmss in Asia/Ho_Chi_Minh (R-PORTAL)."""
    return value.astimezone(LOCAL_TZ).strftime("%Y%m%d%H%M%S")


def build_payload(application: Any, portal_status: int, *, first: bool, settings: Settings) -> dict[str, Any]:
    """A DongBoHoSoMC call carrying one application's status."""
    return sync_call([payload_entry(application, portal_status, settings=settings)], first=first)


def sync_call(entries: list[dict[str, Any]], *, first: bool) -> dict[str, Any]:
    """A DongBoHoSoMC call carrying several dossiers (`data` is a list, PORTAL.md §2). `isUpdating`
    belongs to the call, so every entry must share it: "False" only for first syncs."""
    return {"service": "DongBoHoSoMC", "isUpdating": "False" if first else "True", "data": entries}


def payload_entry(application: Any, portal_status: int, *, settings: Settings) -> dict[str, Any]:
    """One dossier's entry of a DongBoHoSoMC call's `data`."""
    fees = []
    if application.fee_amount is not None:
        fees.append({"TenPhiLePhi": FEE_NAMES[application.procedure], "Gia": str(application.fee_amount)})
    appointment = ""
    if application.appointment_date is not None:
        appointment = portal_time(dt.datetime.combine(application.appointment_date, APPOINTMENT_TIME, LOCAL_TZ))
    return {
        "MaHoSo": application.portal_dossier_id,
        "MaTTHC": settings.portal_procedure_codes[application.procedure],
        "TrangThaiHoSo": str(portal_status),
        "NgayTiepNhan": portal_time(application.received_at),
        "NgayHenTra": appointment,
        "ChuHoSo": normalise_name(application.applicant["full_name"]),
        "LoaiDoiTuong": "1",
        "KenhThucHien": CHANNEL_CODES.get(application.channel, "2"),
        "HinhThuc": "1",
        "DonViXuLy": settings.portal_agency_name,
        "DanhSachLePhi": fees,
    }


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class SyncResult:
    ok: bool
    retryable: bool
    detail: str


class PortalClient:
    """Sends one signed DongBoHoSoMC call and classifies the answer: acknowledged, worth retrying
    (5xx, 429, network error), or refused for good (any other answer). The answer is the call's, so
    it covers every entry of its `data`."""

    def __init__(self, settings: Settings, session: requests.Session | None = None) -> None:
        self.settings = settings
        self._session = session
        # A portal_sync worker sends from several threads; requests' Session is not thread-safe.
        self._local = threading.local()

    @property
    def http(self) -> requests.Session:
        if self._session is not None:
            return self._session
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    @property
    def configured(self) -> bool:
        return bool(self.settings.portal_sync_url)

    def send(self, payload: dict[str, Any]) -> SyncResult:
        body = json.dumps(payload, ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Authorization": f"Bearer {self.settings.portal_sync_token}",
            "X-Signature": sign(body, self.settings.portal_sync_secret or ""),
        }
        try:
            response = self.http.post(self.settings.portal_sync_url, data=body, headers=headers,
                                      timeout=self.settings.portal_sync_timeout_seconds)
        except requests.RequestException as exc:
            return SyncResult(False, True, f"network error: {type(exc).__name__}")
        if response.status_code >= 500 or response.status_code == 429:
            return SyncResult(False, True, f"HTTP {response.status_code}")
        if response.status_code >= 400:
            return SyncResult(False, False, f"HTTP {response.status_code}: {response.text[:200]}")
        try:
            code = response.json().get("error_code")
        except (ValueError, AttributeError):
            code = None
        if code != "00":
            # The portal answered but did not accept: someone must look, retrying will not help.
            return SyncResult(False, False, f"portal error_code {code!r}")
        return SyncResult(True, False, "ok")
