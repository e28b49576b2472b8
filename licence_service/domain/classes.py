"""Licence classes of both regimes (R-CLASS) and the conversion table (R-CONV)."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .model import LicenceClass

__all__ = [
    "CONVERSION_TABLE",
    "NEW_CLASSES",
    "NEW_CLASS_ORDER",
    "OLD_CLASSES",
    "OLD_CLASS_ORDER",
    "RESTRICTION_AUTOMATIC_ONLY",
    "RESTRICTION_MC_LT_175CC",
    "Conversion",
    "ConversionResult",
    "classes_of",
    "convert_classes",
    "converted_code",
    "covered_by",
]

# R-CLASS: the order is the printing order; the sets are what validation uses.
# fmt: off
OLD_CLASS_ORDER: tuple[str, ...] = (
    "A1", "A2", "A3", "A4", "B1TD", "B1", "B2", "C", "D", "E", "FB2", "FC", "FD", "FE",
)
NEW_CLASS_ORDER: tuple[str, ...] = (
    "A1", "A", "B1", "B", "C1", "C", "D1", "D2", "D", "BE", "C1E", "CE", "D1E", "D2E", "DE",
)
# fmt: on
OLD_CLASSES: frozenset[str] = frozenset(OLD_CLASS_ORDER)
NEW_CLASSES: frozenset[str] = frozenset(NEW_CLASS_ORDER)

_CLASSES_BY_REGIME: Mapping[str, frozenset[str]] = MappingProxyType(
    {"vn-2017": OLD_CLASSES, "vn-2025": NEW_CLASSES}
)

# R-CONV: the service's own restriction ids; mapping them to printed codes is data elsewhere.
RESTRICTION_MC_LT_175CC = "MC_LT_175CC"
RESTRICTION_AUTOMATIC_ONLY = "AUTOMATIC_ONLY"


@dataclass(frozen=True)
class Conversion:
    """One row of the R-CONV table.

    ``new_code`` None means the class is no longer a driving licence class (R-CONV-4).
    ``on_request`` lists the other new classes the applicant may ask for instead.
    """

    rule: str
    new_code: str | None
    restrictions: tuple[str, ...] = ()
    on_request: frozenset[str] = frozenset()


# R-CONV-1..10 (L2024 art. 89), as data so a change in law is a change of one row.
CONVERSION_TABLE: Mapping[str, Conversion] = MappingProxyType(
    {
        "A1": Conversion("R-CONV-1", "A", (RESTRICTION_MC_LT_175CC,)),
        "A2": Conversion("R-CONV-2", "A"),
        "A3": Conversion("R-CONV-3", "B1"),
        "A4": Conversion("R-CONV-4", None),
        "B1TD": Conversion("R-CONV-5", "B", (RESTRICTION_AUTOMATIC_ONLY,)),
        "B1": Conversion("R-CONV-6", "B", on_request=frozenset({"C1"})),
        "B2": Conversion("R-CONV-6", "B", on_request=frozenset({"C1"})),
        "C": Conversion("R-CONV-7", "C"),
        "D": Conversion("R-CONV-8", "D2"),
        "E": Conversion("R-CONV-9", "D"),
        "FB2": Conversion("R-CONV-10", "BE"),
        "FC": Conversion("R-CONV-10", "CE"),
        "FD": Conversion("R-CONV-10", "D2E"),
        "FE": Conversion("R-CONV-10", "DE"),
    }
)


@dataclass(frozen=True)
class ConversionResult:
    """Outcome of R-CONV for one licence.

    ``classes`` have ``valid_until`` None: the expiry is computed at issuance (R-VALID,
    see ``renewal.renew``), because the old expiry does not carry over.
    ``not_renewable`` holds old codes with no new equivalent (R-CONV-4 → R-ELIG-7).
    ``ignored_requests`` holds requested_classes entries that cannot be honoured (a class
    not on the licence, or a target the table does not allow: only B1/B2 → C1 is an
    alternative, R-CONV-6), so the API can tell the applicant.
    """

    classes: tuple[LicenceClass, ...]
    not_renewable: tuple[str, ...] = ()
    ignored_requests: tuple[tuple[str, str], ...] = ()


def classes_of(regime: str) -> frozenset[str]:
    """R-CLASS: the class codes valid in ``regime``."""
    try:
        return _CLASSES_BY_REGIME[regime]
    except KeyError:
        raise ValueError(f"unknown regime {regime!r}") from None


def converted_code(old_code: str, requested: str | None = None) -> str | None:
    """R-CONV: the new class an old class becomes (None for R-CONV-4), honouring a
    permitted request such as B2 → C1."""
    try:
        row = CONVERSION_TABLE[old_code]
    except KeyError:
        raise ValueError(f"unknown old class {old_code!r}") from None
    if requested is not None and requested in row.on_request:
        return requested
    return row.new_code


def convert_classes(
    licence_regime: str,
    classes: Iterable[LicenceClass],
    target_regime: str,
    requested: Mapping[str, str] | None = None,
) -> ConversionResult:
    """R-CONV: the classes a renewal under ``target_regime`` prints.

    Same regime → class for class (pass dates and restrictions kept). vn-2017 licence under
    vn-2025 → converted by ``CONVERSION_TABLE``. ``requested`` maps old code → wanted new
    code (the API's ``requested_classes``).
    """
    classes = tuple(classes)
    requested = dict(requested or {})
    known = classes_of(licence_regime)
    classes_of(target_regime)
    unknown = [c.code for c in classes if c.code not in known]
    if unknown:
        raise ValueError(f"classes {unknown} are not {licence_regime} classes")

    if licence_regime == target_regime:
        # Nothing converts, so every request is moot.
        kept = tuple(
            LicenceClass(c.code, c.passed_on, None, c.restrictions) for c in classes
        )
        return ConversionResult(kept, (), tuple(sorted(requested.items())))
    if (licence_regime, target_regime) != ("vn-2017", "vn-2025"):
        # A vn-2025 licence cannot exist for an application received before 2025.
        raise ValueError(f"cannot convert {licence_regime} classes to {target_regime}")

    on_licence = {c.code for c in classes}
    ignored = tuple(
        sorted(
            (old, new)
            for old, new in requested.items()
            if old not in on_licence
            or (
                new != CONVERSION_TABLE[old].new_code
                and new not in CONVERSION_TABLE[old].on_request
            )
        )
    )
    converted: dict[str, LicenceClass] = {}
    not_renewable: list[str] = []
    for old in classes:
        row = CONVERSION_TABLE[old.code]
        new_code = converted_code(old.code, requested.get(old.code))
        if new_code is None:
            not_renewable.append(old.code)
            continue
        candidate = LicenceClass(
            new_code,
            old.passed_on,
            None,
            tuple(dict.fromkeys(old.restrictions + row.restrictions)),
        )
        converted[new_code] = _merge(converted.get(new_code), candidate)
    ordered = tuple(converted[code] for code in NEW_CLASS_ORDER if code in converted)
    return ConversionResult(ordered, tuple(not_renewable), ignored)


# Sorts a class without a pass date after any dated one when choosing between sources.
_FAR_FUTURE = datetime.date.max


def _merge(existing: LicenceClass | None, candidate: LicenceClass) -> LicenceClass:
    """Two old classes can become one new class (A1 + A2 → A; B1TD + B2 → B).

    The holder keeps the widest right: a restriction survives only if every source carries
    it, and the pass date is the one of the least restricted source (the test that earned
    the printed right), the earlier one on a tie.
    """
    if existing is None:
        return candidate
    restrictions = tuple(
        r for r in existing.restrictions if r in candidate.restrictions
    )

    def rank(c: LicenceClass) -> tuple[int, object]:
        return (len(c.restrictions), c.passed_on or _FAR_FUTURE)

    best = min(existing, candidate, key=rank)
    return LicenceClass(best.code, best.passed_on, None, restrictions)


def covered_by(fit_for: Iterable[str], code: str, regime: str) -> bool:
    """R-HEALTH with R-CONV: is class ``code`` (read in ``regime``) covered by a certificate
    fit for the new-regime classes ``fit_for``?

    An old class is covered when the class it converts to is listed. A4 converts to
    nothing; since no new class is called "A4", the literal code is accepted for it.
    No class implies another: a certificate fit for C1 does not cover B unless it says so.
    """
    fit = frozenset(fit_for)
    if code not in classes_of(regime):
        raise ValueError(f"{code!r} is not a {regime} class")
    if regime == "vn-2025":
        return code in fit
    new_code = converted_code(code)
    if new_code is None:
        return code in fit and code not in NEW_CLASSES
    return new_code in fit
