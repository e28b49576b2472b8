"""Normalisers for the fields of the Hà Nội legacy export (NATIONAL-MODEL.md, "Hà Nội legacy export").

Each normaliser takes the raw text of one field and returns the national-model value, or raises
`FieldError` with a stable reason code (the code is what the reject report and the summary count).
They are pure and know nothing about rows; `rows.RowParser` combines them, caches them and adds the
checks that need several fields.
"""

from __future__ import annotations

import datetime
import re
import unicodedata

from licence_service.domain.classes import OLD_CLASSES
from licence_service.domain.identifiers import BIRTH_PROVINCE_CODES, PROVINCE_CODES_2025
from licence_service.domain.names import normalise_name

__all__ = [
    "LAST_LEGACY_ISSUE",
    "FieldError",
    "card_serial",
    "citizen_id",
    "class_code",
    "class_date",
    "date_of_birth",
    "expiry",
    "fold",
    "full_name",
    "legacy_id",
    "licence_number",
    "nationality",
    "points",
    "province_code",
    "residence",
    "sex",
    "status",
]

# NATIONAL-MODEL: "The Department issued its last cards on 2024-12-31", which is what makes every
# imported class a vn-2017 class; a later issue date means the row is wrong, not a new regime.
LAST_LEGACY_ISSUE = datetime.date(2024, 12, 31)
_OLDEST_BIRTH_YEAR = 1900


class FieldError(ValueError):
    """A field that cannot be converted. ``code`` is stable (reports count by it), ``detail`` is for people."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


def fold(text: str) -> str:
    """Lower case, no diacritics, single spaces: the key the keyword tables below are looked up by.

    The export writes keywords by hand (`Nữ`/`NU`/`nu`, `B1 TĐ`/`B1 số tự động`), sometimes NFD;
    folding makes every spelling of one keyword the same key. `đ` has no decomposition, hence
    the explicit replacement.
    """
    decomposed = unicodedata.normalize("NFD", text.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c)).replace("đ", "d")
    return " ".join(bare.split())


def _ascii_digits(s: str) -> bool:
    # str.isdigit() (and int()) accept non-ASCII digits such as "١"; identifiers are 0-9 only.
    return s.isascii() and s.isdigit()


# -- identifiers -----------------------------------------------------------------------------------

_LICENCE_SEPARATORS = re.compile(r"[\s.]+")


def licence_number(raw: str) -> str:
    """`SO_GPLX`: 12 digits, written with spaces or dots at times (`01 0123 456789`, `01.0123.456789`)."""
    number = _LICENCE_SEPARATORS.sub("", raw)
    if len(number) != 12 or not _ascii_digits(number):
        raise FieldError("bad_licence_number", f"{raw.strip()!r} is not 12 digits")
    return number


def card_serial(raw: str) -> str | None:
    """`SO_PHOI`: the card serial, may be empty. The register column holds at most 16 characters."""
    serial = raw.strip()
    if not serial:
        return None
    if len(serial) > 16 or not (serial.isascii() and serial.isalnum()):
        raise FieldError("bad_card_serial", f"{serial!r} is not up to 16 letters or digits")
    return serial


def citizen_id(raw: str) -> str | None:
    """`SO_CCCD`: 12 digits or empty. Its structure against sex and birth year is checked per row."""
    value = raw.strip()
    if not value:
        return None
    if len(value) != 12 or not _ascii_digits(value):
        raise FieldError("bad_citizen_id", f"{value!r} is not 12 digits")
    return value


def legacy_id(raw: str) -> str | None:
    """`SO_CMND`: the old 9-digit identity card number, optional (kept as `legacy_id_number`)."""
    value = raw.strip()
    if not value:
        return None
    if len(value) != 9 or not _ascii_digits(value):
        raise FieldError("bad_legacy_id", f"{value!r} is not 9 digits")
    return value


# -- person ----------------------------------------------------------------------------------------

# Letters (any script, precomposed after NFC) in words joined by one space, hyphen, dot or apostrophe.
_NAME = re.compile(r"[^\W\d_]+(?:[ '.\-][^\W\d_]+)*")


def full_name(raw: str) -> str:
    """`HO_TEN`: R-NAME's stored form (upper case NFC, single spaces) from any case, NFD, doubled spaces."""
    name = normalise_name(raw)
    if not name:
        raise FieldError("missing_name")
    if len(name) > 200 or not _NAME.fullmatch(name):
        raise FieldError("bad_name", f"{name!r} is not a personal name")
    return name


def _day_month_year(raw: str, code: str) -> datetime.date:
    parts = raw.split("/")
    if len(parts) != 3 or not all(_ascii_digits(p) for p in parts):
        raise FieldError(code, f"{raw!r} is not dd/mm/yyyy")
    day, month, year = parts
    if len(day) > 2 or len(month) > 2 or len(year) != 4:
        raise FieldError(code, f"{raw!r} is not dd/mm/yyyy")
    try:
        return datetime.date(int(year), int(month), int(day))
    except ValueError:
        raise FieldError(code, f"{raw!r} is not a calendar date") from None


def date_of_birth(raw: str, today: datetime.date | None = None) -> tuple[datetime.date | None, int]:
    """`NGAY_SINH`: `dd/mm/yyyy`, `d/m/yyyy` or only `yyyy`.

    Returns (date, year); the date is None for a year-only value, which the register keeps as
    `birth_year` and the summary flags.
    """
    value = raw.strip()
    if not value:
        raise FieldError("bad_date_of_birth", "empty")
    if len(value) == 4 and _ascii_digits(value):
        born, year = None, int(value)
    else:
        born = _day_month_year(value, "bad_date_of_birth")
        year = born.year
    latest = (today or datetime.date.today()).year
    if not _OLDEST_BIRTH_YEAR <= year <= latest:
        raise FieldError("bad_date_of_birth", f"year {year} is not between {_OLDEST_BIRTH_YEAR} and {latest}")
    return born, year


_SEXES = {"nam": "male", "nu": "female"}


def sex(raw: str) -> str:
    """`GIOI_TINH`: `Nam` / `Nữ`, also `NAM`, `NU`, `nu` → `male` / `female`."""
    try:
        return _SEXES[fold(raw)]
    except KeyError:
        raise FieldError("bad_sex", f"{raw.strip()!r} is not Nam or Nữ") from None


_VIETNAM = {"", "viet nam", "vietnam", "vn"}


def nationality(raw: str) -> str:
    """`QUOC_TICH`: `Việt Nam` or empty (= VN) → ISO 3166-1 alpha-2."""
    if fold(raw) in _VIETNAM:
        return "VN"
    raise FieldError("unknown_nationality", f"{raw.strip()!r} is not Việt Nam")


# R-ID: a residence province code is a 2-digit code, before the 2025 merger (the birth-registration
# codes without their leading 0) or after it.
_PROVINCES = frozenset(c[1:] for c in BIRTH_PROVINCE_CODES if c[0] == "0") | PROVINCE_CODES_2025


def province_code(raw: str) -> str | None:
    """`MA_TINH`: the residence province, 2 digits, pre-2025 codes allowed (kept as written)."""
    value = raw.strip()
    if not value:
        return None
    if value not in _PROVINCES:
        raise FieldError("bad_province_code", f"{value!r} is not a province code")
    return value


def residence(raw: str) -> str | None:
    """`NOI_CU_TRU`: free text, kept as written except NFC and collapsed white space."""
    return " ".join(unicodedata.normalize("NFC", raw).split()) or None


# -- classes ---------------------------------------------------------------------------------------

# R-CLASS: the old class codes, plus the export's spellings of B1 automatic (`B1 số tự động`,
# `B1TD`, `B1 TĐ`), keyed by their folded form without spaces.
_CLASS_SPELLINGS = {fold(c).replace(" ", ""): c for c in OLD_CLASSES} | {
    "b1sotudong": "B1TD",
    "b1tudong": "B1TD",
}


def class_code(raw: str) -> str:
    """`HANG`: an old (vn-2017) class code; the B1 automatic spellings all become `B1TD`."""
    try:
        return _CLASS_SPELLINGS[fold(raw).replace(" ", "")]
    except KeyError:
        raise FieldError("unknown_class", f"{raw.strip()!r} is not a vn-2017 class") from None


def class_date(raw: str, code: str) -> datetime.date:
    """`NGAY_TRUNG_TUYEN` / `NGAY_CAP`: `dd/mm/yyyy` (also `d/m/yyyy`); ``code`` names the field's error."""
    value = raw.strip()
    if not value:
        raise FieldError(code, "empty")
    return _day_month_year(value, code)


_NO_EXPIRY = {"", "khong thoi han"}


def expiry(raw: str) -> datetime.date | None:
    """`NGAY_HET_HAN`: a date, or empty / `Không thời hạn` for a class with no expiry (None)."""
    if fold(raw) in _NO_EXPIRY:
        return None
    return _day_month_year(raw.strip(), "bad_expiry_date")


# -- licence ---------------------------------------------------------------------------------------

# NATIONAL-MODEL: `Hoạt động` (valid), `Tạm giữ` (confiscated), `Thu hồi` (revoked); empty = valid.
_STATUSES = {"": "valid", "hoat dong": "valid", "tam giu": "confiscated", "thu hoi": "revoked"}


def status(raw: str) -> str:
    """`TRANG_THAI` → the national licence status."""
    try:
        return _STATUSES[fold(raw)]
    except KeyError:
        raise FieldError("unknown_status", f"{raw.strip()!r} is not a known status") from None


def points(raw: str) -> int:
    """`DIEM`: demerit points 0-12; empty = 12 (the full allowance, L2024 art. 58)."""
    value = raw.strip()
    if not value:
        return 12
    if not _ascii_digits(value) or not 0 <= int(value) <= 12:
        raise FieldError("bad_points", f"{value!r} is not 0-12")
    return int(value)
