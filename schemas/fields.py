"""Field types shared by the request schemas."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from marshmallow import ValidationError, fields, validate

CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def no_control_characters(value: str) -> None:
    if CONTROL_CHARS.search(value):
        raise ValidationError("must not contain control characters")


def Text(max_length: int, *, required: bool = False, **kwargs: Any) -> fields.String:
    """A free-text field with a length limit and no control characters."""
    return fields.String(
        required=required,
        validate=[validate.Length(min=1, max=max_length), no_control_characters],
        **kwargs,
    )


def Digits(n: int, *, required: bool = False, **kwargs: Any) -> fields.String:
    return fields.String(
        required=required,
        validate=validate.Regexp(rf"^[0-9]{{{n}}}$", error=f"must be {n} digits"),
        metadata={"pattern": rf"^[0-9]{{{n}}}$"},
        **kwargs,
    )


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
