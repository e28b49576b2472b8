"""Hypothesis strategies for fuzzing: the portal's sample application with a few of its fields
replaced by anything at all — plausible values of the field's kind, or arbitrary JSON — so that most
bodies get past the first checks and reach the deeper ones (and some are accepted)."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from hypothesis import strategies as st

from tests.support.data import application_body

# Any code point, lone surrogates and control characters included (JSON can escape them all).
ANY_TEXT = st.text(alphabet=st.characters(exclude_categories=()), max_size=20)
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=6,
)
TEXT = st.text(max_size=120)
DIGITS = st.from_regex(r"[0-9]{9,13}", fullmatch=True)
DATES = st.dates(min_value=dt.date(1, 1, 1)).map(dt.date.isoformat)
DATETIMES = st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30),
                         timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=7)),
                                                    dt.timezone(dt.timedelta(hours=-12))])).map(dt.datetime.isoformat)
CLASSES = st.lists(st.sampled_from(["A1", "A", "B1", "B2", "B", "C1", "C", "D", "Z9", "b2"]), max_size=4)

# Each replaceable field with values of its own kind (any field may also get ANY_JSON).
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "procedure": st.sampled_from(["licence_renewal", "international_permit", "other"]),
    "portal_dossier_id": TEXT,
    "received_at": DATETIMES,
    "channel": st.sampled_from(["online", "counter", "fax"]),
    "reason": st.sampled_from(["expiring", "expired", "damaged", "lost", "details_changed", "card_conversion"]),
    "applicant.citizen_id": DIGITS,
    "applicant.full_name": TEXT,
    "applicant.date_of_birth": DATES,
    "applicant.sex": st.sampled_from(["male", "female", ""]),
    "applicant.nationality": st.text(max_size=3),
    "applicant.phone": DIGITS | TEXT,
    "applicant.email": TEXT.map(lambda t: f"{t}@example.vn"),
    "applicant.residence.province_code": st.from_regex(r"[0-9]{2}", fullmatch=True),
    "applicant.residence.commune_code": DIGITS,
    "applicant.residence.detail": TEXT,
    "licence.number": DIGITS,
    "requested_classes": st.dictionaries(st.sampled_from(["B1", "B2", "C", "x"]), st.sampled_from(["B", "C1", ""]),
                                         max_size=3),
    "force_majeure": st.booleans(),
    "health_certificate": st.none(),
    "health_certificate.number": TEXT,
    "health_certificate.issued_on": DATES,
    "health_certificate.facility_code": TEXT,
    "health_certificate.fit_for": CLASSES,
    "photo.content_type": st.sampled_from(["image/jpeg", "image/png", "image/gif"]),
    "photo.data": st.binary(max_size=64).map(lambda b: __import__("base64").b64encode(b).decode()) | TEXT,
    "delivery.method": st.sampled_from(["post", "pickup", "drone"]),
    "delivery.address": st.none(),
}
# A few dossier ids, so that repeats meet the idempotency rules (200 same body, 409 another).
DOSSIERS = st.sampled_from([f"G01.99-FUZZ-{i}" for i in range(5)])


def _set(body: dict[str, Any], path: str, value: Any, *, delete: bool) -> None:
    *parents, last = path.split(".")
    node: Any = body
    for key in parents:
        if not isinstance(node, dict) or not isinstance(node.get(key), dict):
            return
        node = node[key]
    if delete:
        node.pop(last, None)
    else:
        node[last] = value


@st.composite
def application_bodies(draw: st.DrawFn) -> dict[str, Any]:
    body = copy.deepcopy(application_body(portal_dossier_id=draw(DOSSIERS)))
    for path in draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=3, unique=True)):
        how = draw(st.sampled_from(["kind", "kind", "any", "delete"]))
        value = draw(FIELDS[path] if how == "kind" else ANY_JSON)
        _set(body, path, value, delete=how == "delete")
    if draw(st.booleans()):
        body[draw(ANY_TEXT)] = draw(ANY_JSON)  # an unknown field, perhaps with an unprintable name
    return body
