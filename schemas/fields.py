"""Field types shared by the request schemas."""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from typing import Any

from marshmallow import ValidationError, fields, validate

CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# Invisible characters that make one text display as another (bidirectional overrides, zero-width
# characters, the byte-order mark): no Vietnamese name or address needs them.
INVISIBLE_CHARS = re.compile(r"[\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
NAME_PUNCTUATION = frozenset(" '-.")


def no_control_characters(value: str) -> None:
    if CONTROL_CHARS.search(value):
        raise ValidationError("must not contain control characters")
    if INVISIBLE_CHARS.search(value):
        raise ValidationError("must not contain invisible formatting characters")


def not_blank(value: str) -> None:
    if value and not value.strip():  # an empty value is the length check's to report
        raise ValidationError("must not be blank")


class FullMatch(validate.Regexp):
    """validate.Regexp matched against the whole value: `$` alone would let a trailing newline through.

    The pattern is written with ^...$ as OpenAPI (ECMA-262) reads it; apispec copies it to the spec."""

    def __call__(self, value: Any) -> Any:
        if not isinstance(value, str) or self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


def Text(max_length: int, *, required: bool = False, **kwargs: Any) -> fields.String:
    """A free-text field with a length limit and no control or invisible characters."""
    return fields.String(
        required=required,
        validate=[validate.Length(min=1, max=max_length), no_control_characters, not_blank],
        **kwargs,
    )


def Pattern(regex: str, error: str, *, required: bool = False, **kwargs: Any) -> fields.String:
    """A code matched in full by `regex` (written ^...$)."""
    return fields.String(required=required, validate=FullMatch(regex, error=error), **kwargs)


def Digits(n: int, *, required: bool = False, **kwargs: Any) -> fields.String:
    """Exactly n ASCII digits (R-ID: citizen IDs, licence numbers, province and commune codes)."""
    return Pattern(rf"^[0-9]{{{n}}}$", f"must be {n} digits", required=required, **kwargs)


def personal_name(value: str) -> None:
    """R-NAME: letters (any script, composed or decomposed), spaces, apostrophes, hyphens and dots,
    and at least one letter."""
    no_control_characters(value)
    if not any(unicodedata.category(c).startswith("L") for c in value):
        raise ValidationError("must contain letters")
    for c in value:
        if not (c in NAME_PUNCTUATION or unicodedata.category(c)[0] in "LM"):
            raise ValidationError("may contain only letters, spaces, apostrophes, hyphens and dots")


def Name(max_length: int, *, required: bool = False, **kwargs: Any) -> fields.String:
    return fields.String(required=required, validate=[validate.Length(min=1, max=max_length), personal_name],
                         **kwargs)


class Base64Bytes(fields.Field):
    """Base64 text on the wire, bytes after loading, with a limit on the decoded size."""

    def __init__(self, *, max_bytes: int, **kwargs: Any) -> None:
        kwargs.setdefault("metadata", {}).update({"type": "string", "format": "byte"})
        super().__init__(**kwargs)
        self.max_bytes = max_bytes

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bytes:
        if not isinstance(value, str):
            raise ValidationError("must be base64 text")
        # Reject before decoding a huge string: 4 base64 characters carry 3 bytes.
        if len(value) > (self.max_bytes * 4) // 3 + 4:
            raise ValidationError(f"must be at most {self.max_bytes} bytes once decoded")
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError("is not valid base64") from None
        if not decoded:
            raise ValidationError("must not be empty")
        if len(decoded) > self.max_bytes:
            raise ValidationError(f"must be at most {self.max_bytes} bytes once decoded")
        return decoded

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else base64.b64encode(value).decode()
