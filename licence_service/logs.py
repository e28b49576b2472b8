"""JSON logs, one object per line, naming the process, so every process's output can be merged —
and never carrying personal data (decree 13/2023/NĐ-CP, SECURITY.md).

Masking happens where a record is made (`install_masking`, a log-record factory), so every handler
sees the masked record: the JSON handler of the workers and of gunicorn, pytest's caplog, anything
added later. It masks

- runs of 9 to 15 digits, optionally after "+" (12-digit citizen IDs and licence numbers, 9-digit
  CMND numbers, phone numbers), and phone numbers written in groups ("091 234 5678");
- e-mail addresses, long base64 text and long bytes literals (photo data);
- the personal values the code has told it about: the values of the current request or task
  (`personal_data(...)`, `remember_personal_data(...)`), and structured fields of the record itself
  (`extra={"personal": {...}}`, or a `full_name` / `citizen_id` / `phone` / `email` field), which
  the service's handlers (`PersonalDataFilter`, `JsonFormatter`) mask and drop. Names cannot be
  recognised in free text, so a name is masked only when it is known this way.

Masking keeps the last three digits of a number, enough to tell two log lines apart, too few to find a
citizen.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import logging
import re
import sys
import types
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from licence_service.store.models import utcnow

# Structured fields of a log record that hold personal data.
PERSONAL_FIELDS = ("personal", "citizen_id", "full_name", "phone", "email", "legacy_id_number")
# Keys of a request body whose values are personal data (PORTAL.md §1; residence `detail` is an address).
PERSONAL_KEYS = frozenset({"citizen_id", "full_name", "phone", "email", "legacy_id_number", "detail"})
MASKED = "[masked]"

# A UUID (an application or event id) is matched first so that its digits are left alone.
_DIGITS = re.compile(r"(?P<uuid>\b[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}\b)"
                     r"|(?<![0-9A-Za-z])\+?\d{9,15}(?![0-9A-Za-z])")
_GROUPED_PHONE = re.compile(r"(?<![0-9A-Za-z+])(?:\+84|0)\d{2,3}(?:[ .-]\d{3,4}){2}(?![0-9A-Za-z])")
_EMAIL = re.compile(r"[\w.+-]+@((?:[\w-]+\.)+[\w-]+)")
_BASE64 = re.compile(r"[A-Za-z0-9+/]{64,}={0,2}")
_BYTES_LITERAL = re.compile(r"""b(['"])((?:\\.|(?!\1)[^\\]){48,}?)\1""")

_known: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("personal_data", default=())


def _mask_digits(match: re.Match[str]) -> str:
    text = match.group(0)
    if match.groupdict().get("uuid"):
        return text
    digits = sum(c.isdigit() for c in text)
    return "*" * (digits - 3) + "".join(c for c in text if c.isdigit())[-3:]


def _mask_base64(match: re.Match[str]) -> str:
    text = match.group(0)
    # Hex digests (sha256 of a body or photo) are one case only; base64 of real data mixes both.
    if re.search(r"[a-z]", text) and re.search(r"[A-Z]", text):
        return f"[base64, {len(text)} characters]"
    return text


def _variants(value: str) -> set[str]:
    """The value as it appears in text, in JSON (escaped or not), and in the repr of a JSON string
    (a database error quoting a statement's parameters doubles the backslashes)."""
    nfc = unicodedata.normalize("NFC", value)
    escaped = json.dumps(nfc)[1:-1]
    return {v for v in (nfc, escaped, escaped.replace("\\", "\\\\"),
                        json.dumps(nfc, ensure_ascii=False)[1:-1]) if v}


@functools.lru_cache(maxsize=64)
def _known_pattern(values: tuple[str, ...]) -> re.Pattern[str] | None:
    # Cached: the records of one request (and the handlers of one record) share their known values.
    parts: set[str] = set()
    for value in values:
        for variant in _variants(value):
            words = variant.split()
            if words:
                # R-NAME: the same name with other spacing or case is the same name.
                parts.add(r"\s+".join(re.escape(w) for w in words))
    if not parts:
        return None
    return re.compile("|".join(sorted(parts, key=len, reverse=True)), re.IGNORECASE)


# -- a quick test before the regular expression of the known values -------------------------------
# Compiling that expression costs about half a millisecond, and the values differ with every request,
# while most lines (an access line: method, path, status) contain none of them. A value can match
# only where the text contains its first word up to re.IGNORECASE's notion of case; `_FOLD` maps
# each character to one representative of the characters re.IGNORECASE treats as the same (the
# simple lower case of re's own tables, then its extra equivalences such as i/ı and s/ſ), so "the
# folded first word occurs in the folded text" is necessary for a match, and the expression is
# compiled only when it holds. Without those tables (another Python), every text takes the expression.
try:
    import _sre
    from re import _casefix

    def _equivalence_classes() -> dict[int, int]:
        rep: dict[int, int] = {}
        for start in _casefix._EXTRA_CASES:
            if start in rep:
                continue
            group, todo = {start}, [start]
            while todo:  # the closure, whether or not the table lists every class in full
                for other in _casefix._EXTRA_CASES.get(todo.pop(), ()):
                    if other not in group:
                        group.add(other)
                        todo.append(other)
            for member in group:
                rep[member] = min(group)
        return rep

    _CASE_CLASS = _equivalence_classes()
    _tolower = _sre.unicode_tolower
except (ImportError, AttributeError):  # pragma: no cover - CPython has both
    _tolower = None


class _FoldTable(dict[int, int]):
    """A str.translate table filled as characters are met (at most one entry per code point)."""

    def __missing__(self, code: int) -> int:
        lower = _tolower(code)  # type: ignore[misc]
        folded = self[code] = _CASE_CLASS.get(lower, lower)
        return folded


_FOLD = _FoldTable()


@functools.lru_cache(maxsize=1024)
def _first_words(value: str) -> tuple[str, ...]:
    """The folded first word of each variant of a known value (see _known_pattern)."""
    return tuple({words[0].translate(_FOLD) for words in (v.split() for v in _variants(value)) if words})


def _may_contain(text: str, values: tuple[str, ...]) -> bool:
    if _tolower is None:
        return True
    folded = text.translate(_FOLD)
    return any(word in folded for value in values for word in _first_words(value))


def mask(text: str, known: Iterable[str] = ()) -> str:
    """`text` with personal data replaced (see the module's docstring)."""
    text = unicodedata.normalize("NFC", text)
    values = tuple(v for v in known if isinstance(v, str) and len(v.strip()) >= 2)
    pattern = _known_pattern(values) if values and _may_contain(text, values) else None
    if pattern is not None:
        text = pattern.sub(MASKED, text)
    text = _BYTES_LITERAL.sub(lambda m: f"b'[{len(m.group(2))} characters of bytes]'", text)
    text = _BASE64.sub(_mask_base64, text)
    text = _EMAIL.sub(lambda m: f"[e-mail]@{m.group(1)}", text)
    text = _GROUPED_PHONE.sub(_mask_digits, text)
    return _DIGITS.sub(_mask_digits, text)


def personal_values(document: Any) -> list[str]:
    """The values under PERSONAL_KEYS anywhere in a JSON document (a request body)."""
    found: list[str] = []
    if isinstance(document, Mapping):
        for key, value in document.items():
            if key in PERSONAL_KEYS and isinstance(value, str):
                found.append(value)
            else:
                found.extend(personal_values(value))
    elif isinstance(document, list):
        for item in document:
            found.extend(personal_values(item))
    return found


def remember_personal_data(*values: object) -> None:
    """Mask these values in every record logged from here to the end of the current request or task
    (the caller clears them with `forget_personal_data` when it ends)."""
    new = tuple(v for v in values if isinstance(v, str) and len(v.strip()) >= 2)
    if new:
        _known.set(_known.get() + new)


def forget_personal_data() -> None:
    _known.set(())


@contextlib.contextmanager
def personal_data(*values: object) -> Iterator[None]:
    """Mask these values in every record logged inside the block."""
    token = _known.set(_known.get())
    try:
        remember_personal_data(*values)
        yield
    finally:
        _known.reset(token)


def _fields_of(record: logging.LogRecord) -> list[str]:
    values: list[str] = []
    for name in PERSONAL_FIELDS:
        value = record.__dict__.get(name)
        if isinstance(value, Mapping):
            values.extend(str(v) for v in value.values() if v is not None)
        elif isinstance(value, (list, tuple, set, frozenset)):
            values.extend(str(v) for v in value if v is not None)
        elif value is not None:
            values.append(str(value))
    return values


_TRACEBACKS = logging.Formatter()


# Set on a masked record: its message, traceback and stack as masked, and the known values they
# were masked against. A record is masked where it is made and again by the handlers (the factory
# runs before `extra` fields are set); masking it again unchanged was most of the cost of a log line.
_MASKED_AS = "_licence_service_masked_as"


def mask_record(record: logging.LogRecord) -> logging.LogRecord:
    """Mask `record` in place: its message (arguments merged in), traceback and stack, and drop its
    personal structured fields. Safe to repeat, and cheap when nothing changed since the last time."""
    known = (*_known.get(), *_fields_of(record))
    done = record.__dict__.get(_MASKED_AS)
    unchanged = (done is not None and record.args is None and done[0] is record.msg
                 and done[1] is record.exc_text and done[2] is record.stack_info)
    if unchanged and done[3].issuperset(known):
        return record
    try:
        message = record.getMessage()
    except Exception:  # a bad format string must not let the raw arguments through
        message = f"{record.msg} [log arguments not shown: they did not match the format]"
    record.msg, record.args = mask(str(message), known), None
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        record.exc_text = _TRACEBACKS.formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = mask(record.exc_text, known)
    if record.stack_info:
        record.stack_info = mask(record.stack_info, known)
    for name in PERSONAL_FIELDS:
        record.__dict__.pop(name, None)
    # What was masked before stays masked only if this is the text it was masked in.
    applied = frozenset(known) | (done[3] if unchanged else frozenset())
    record.__dict__[_MASKED_AS] = (record.msg, record.exc_text, record.stack_info, applied)
    return record


_UUID = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")


def _masked_field(value: str) -> str:
    # Most structured fields are ids (an application's, an event's, a correlation id), which
    # masking leaves alone (see _DIGITS): the whole of mask() for each was a fifth of a log line.
    return value if _UUID.fullmatch(value) else _masked_other_field(value)


@functools.lru_cache(maxsize=1024)
def _masked_other_field(value: str) -> str:
    # Without known values, masking depends on the text alone: a client id, a method, a path.
    return mask(value)


class PersonalDataFilter(logging.Filter):
    """A handler filter that masks every record it passes (see mask_record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        mask_record(record)
        return True


def install_masking() -> None:
    """Mask every log record this process makes from now on, whichever handler writes it. Safe to
    call more than once (create_app and configure_logging both do)."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "masks_personal_data", False):
        return

    def masking_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return mask_record(factory(*args, **kwargs))

    masking_factory.masks_personal_data = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(masking_factory)


class JsonFormatter(logging.Formatter):
    # Structured fields copied into the JSON object when a record carries them.
    FIELDS = ("application_id", "correlation_id", "event_id", "client_id", "method", "path", "status",
              "duration_ms")

    def __init__(self, process: str) -> None:
        super().__init__()
        self.process_name = process

    def format(self, record: logging.LogRecord) -> str:
        mask_record(record)
        entry: dict[str, Any] = {
            "at": utcnow().isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "process": self.process_name,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in self.FIELDS:
            if name in record.__dict__:
                value = record.__dict__[name]
                entry[name] = _masked_field(value) if isinstance(value, str) else value
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(process: str, level: int = logging.INFO, stream: Any = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(process))
    handler.addFilter(PersonalDataFilter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    install_masking()



# -- what a line is about ---------------------------------------------------------------------------
# The application and correlation ids of the request or message being handled, stamped on every line
# logged meanwhile (ContextFilter), so `grep <application id>` over every process's log shows one
# application's whole journey, and its correlation id ties the lines to the portal's request.

_log_context: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "log_context", default=types.MappingProxyType({}))


def bind_log_context(**fields: str | None) -> None:
    """Add these fields to every line logged from here to the end of the current request or task
    (the caller clears them with `clear_log_context`)."""
    _log_context.set({**_log_context.get(), **{k: str(v) for k, v in fields.items() if v}})


def clear_log_context() -> None:
    _log_context.set({})


def current_log_context() -> Mapping[str, str]:
    return _log_context.get()


@contextlib.contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Add these fields to every line logged inside the block."""
    token = _log_context.set({**_log_context.get(), **{k: str(v) for k, v in fields.items() if v}})
    try:
        yield
    finally:
        _log_context.reset(token)


class ContextFilter(logging.Filter):
    """A handler filter stamping the current log context on each record; a field the record was
    given explicitly (`extra=`) is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _log_context.get().items():
            record.__dict__.setdefault(name, value)
        return True
