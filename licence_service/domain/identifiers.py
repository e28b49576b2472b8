"""Citizen IDs, licence numbers and province codes (R-ID)."""

from __future__ import annotations

import datetime

__all__ = [
    "BIRTH_PROVINCE_CODES",
    "PROVINCE_CODES_2025",
    "citizen_id_problems",
    "is_licence_number",
]


def _codes(spec: str) -> frozenset[str]:
    """Expand "001 033-038" style ranges as written in RULES.md R-ID."""
    out: set[str] = set()
    for part in spec.split():
        if "-" in part:
            lo, hi = part.split("-")
            out.update(f"{n:03d}" for n in range(int(lo), int(hi) + 1))
        else:
            out.add(part)
    return frozenset(out)


# R-ID: the 63 pre-2025 birth-registration province codes (PPP of a citizen ID).
BIRTH_PROVINCE_CODES: frozenset[str] = _codes(
    "001 002 004 006 008 010 011 012 014 015 017 019 020 022 024 025 026 027 030 031 "
    "033-038 040 042 044-046 048 049 051 052 054 056 058 060 062 064 066-068 070 072 "
    "074 075 077 079 080 082-084 086 087 089 091-096"
)

# R-ID: the 34 province codes after the 2025 merger (Decision 19/2025/QĐ-TTg).
# fmt: off
PROVINCE_CODES_2025: frozenset[str] = frozenset(
    {
        "01", "04", "08", "11", "12", "14", "15", "19", "20", "22", "24", "25",
        "31", "33", "37", "38", "40", "42", "44", "46", "48", "51", "52", "56",
        "66", "68", "75", "79", "80", "82", "86", "91", "92", "96",
    }
)
# fmt: on

# R-ID: G digit -> (first year of its century, sex).
_GENDER_CENTURY: dict[str, tuple[int, str]] = {
    "0": (1900, "male"),
    "1": (1900, "female"),
    "2": (2000, "male"),
    "3": (2000, "female"),
    "4": (2100, "male"),
    "5": (2100, "female"),
}


def _is_ascii_digits(s: str, n: int) -> bool:
    # str.isdigit() accepts non-ASCII digits such as "١"; identifiers must be 0-9 only.
    return len(s) == n and all("0" <= c <= "9" for c in s)


def is_licence_number(s: object) -> bool:
    """R-ID: a licence number is exactly 12 ASCII digits; its digits carry no meaning."""
    return isinstance(s, str) and _is_ascii_digits(s, 12)


def citizen_id_problems(
    citizen_id: str,
    sex: str | None,
    date_of_birth: datetime.date | None,
) -> list[str]:
    """R-ID: structural problems of a citizen ID ``PPP G YY RRRRRR``; empty when fine.

    ``sex``/``date_of_birth`` are cross-checked only when given, because legacy records
    may lack them. A contradiction is a validation error (HTTP 422), not a refusal, so
    this returns readable messages rather than reason codes.
    """
    if not isinstance(citizen_id, str) or not _is_ascii_digits(citizen_id, 12):
        return ["must be 12 digits"]
    problems: list[str] = []
    ppp, g, yy = citizen_id[:3], citizen_id[3], citizen_id[4:6]
    # Births registered abroad use a code whose first digit is non-zero (R-ID).
    if ppp not in BIRTH_PROVINCE_CODES and ppp[0] == "0":
        problems.append("unknown province code")
    decoded = _GENDER_CENTURY.get(g)
    if decoded is None:
        problems.append("unknown century/sex digit")
        return problems
    century, coded_sex = decoded
    if date_of_birth is not None and date_of_birth.year != century + int(yy):
        problems.append("does not match date_of_birth")
    if sex is not None and sex != coded_sex:
        problems.append("does not match sex")
    return problems
