"""The classes printed on a renewed licence (R-CONV + R-VALID)."""

from __future__ import annotations

import datetime
from collections.abc import Mapping

from .classes import convert_classes
from .model import Licence, LicenceClass
from .validity import valid_until

__all__ = ["renew"]


def renew(
    licence: Licence,
    issued_on: datetime.date,
    target_regime: str,
    requested: Mapping[str, str] | None = None,
    sex: str | None = None,
    date_of_birth: datetime.date | None = None,
) -> tuple[LicenceClass, ...]:
    """R-CONV, R-VALID: the renewed licence's classes, each valid from ``issued_on``.

    The old expiry does not carry over. ``sex``/``date_of_birth`` default to the holder's.
    A class that cannot be converted (R-CONV-4) raises: the application should have been
    refused (R-ELIG-7), and silently dropping a class from a licence would be worse.
    """
    result = convert_classes(licence.regime, licence.classes, target_regime, requested)
    if result.not_renewable:
        raise ValueError(
            f"classes {list(result.not_renewable)} cannot be renewed (R-CONV-4)"
        )
    sex = sex if sex is not None else licence.holder.sex
    dob = date_of_birth if date_of_birth is not None else licence.holder.date_of_birth
    return tuple(
        LicenceClass(
            c.code,
            c.passed_on,
            valid_until(target_regime, c.code, issued_on, sex, dob),
            c.restrictions,
        )
        for c in result.classes
    )
