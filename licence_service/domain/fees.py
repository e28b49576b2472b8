"""Fees by date of receipt, procedure and channel (R-FEE).

The amounts are partly from secondary sources, so the table is configuration: a default
here, replaceable by JSON without a code change.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "CHANNELS",
    "DEFAULT_FEE_SCHEDULE",
    "DEFAULT_FEE_TABLE",
    "PROCEDURES",
    "FeeRow",
    "FeeSchedule",
    "NoFeeError",
    "fee_for",
]

PROCEDURES: frozenset[str] = frozenset({"licence_renewal", "international_permit"})
CHANNELS: frozenset[str] = frozenset({"online", "counter"})


class NoFeeError(LookupError):
    """No fee row covers the date: the configuration has a gap, never charge a guess."""


@dataclass(frozen=True)
class FeeRow:
    """One effective-dated fee; ``valid_to`` inclusive, None = open-ended."""

    valid_from: datetime.date
    valid_to: datetime.date | None
    procedure: str
    channel: str
    amount: int

    def __post_init__(self) -> None:
        if self.procedure not in PROCEDURES:
            raise ValueError(f"unknown procedure {self.procedure!r}")
        if self.channel not in CHANNELS:
            raise ValueError(f"unknown channel {self.channel!r}")
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError(f"fee row ends before it starts: {self}")
        if (
            isinstance(self.amount, bool)
            or not isinstance(self.amount, int)
            or self.amount < 0
        ):
            raise ValueError(
                f"fee amount must be a non-negative integer (VND): {self.amount!r}"
            )

    def covers(self, day: datetime.date) -> bool:
        return self.valid_from <= day and (
            self.valid_to is None or day <= self.valid_to
        )


def _table(
    periods: Iterable[tuple[str, str | None, int, int, int, int]],
) -> tuple[FeeRow, ...]:
    rows = []
    for start, end, renew_online, renew_counter, idp_online, idp_counter in periods:
        frm = datetime.date.fromisoformat(start)
        to = datetime.date.fromisoformat(end) if end else None
        rows += [
            FeeRow(frm, to, "licence_renewal", "online", renew_online),
            FeeRow(frm, to, "licence_renewal", "counter", renew_counter),
            FeeRow(frm, to, "international_permit", "online", idp_online),
            FeeRow(frm, to, "international_permit", "counter", idp_counter),
        ]
    return tuple(rows)


# R-FEE: same layout as the table in RULES.md (renewal online/counter, IDP online/counter).
DEFAULT_FEE_TABLE: tuple[FeeRow, ...] = _table(
    [
        ("2016-01-01", "2023-12-31", 135_000, 135_000, 135_000, 135_000),
        ("2024-01-01", "2025-12-31", 115_000, 135_000, 115_000, 135_000),
        ("2026-01-01", None, 135_000, 135_000, 135_000, 135_000),
    ]
)


@dataclass(frozen=True)
class FeeSchedule:
    """R-FEE: an effective-dated fee table. Overlapping rows are rejected at construction,
    so a lookup has at most one answer."""

    rows: tuple[FeeRow, ...]

    def __post_init__(self) -> None:
        rows = tuple(self.rows)
        object.__setattr__(self, "rows", rows)
        for i, a in enumerate(rows):
            for b in rows[i + 1 :]:
                if (a.procedure, a.channel) == (b.procedure, b.channel) and _overlap(
                    a, b
                ):
                    raise ValueError(f"overlapping fee rows: {a} and {b}")

    @classmethod
    def from_json(cls, text: str) -> FeeSchedule:
        """Configuration format: a JSON list of
        ``{"from": "YYYY-MM-DD", "to": "YYYY-MM-DD" | null, "procedure": ..., "channel": ..., "amount": int}``.
        """
        data = json.loads(text)
        if not isinstance(data, list):
            raise TypeError("fee table JSON must be a list of rows")
        rows = []
        for n, item in enumerate(data):
            try:
                rows.append(
                    FeeRow(
                        datetime.date.fromisoformat(item["from"]),
                        datetime.date.fromisoformat(item["to"])
                        if item.get("to")
                        else None,
                        item["procedure"],
                        item["channel"],
                        item["amount"],
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"fee table row {n}: {exc}") from exc
        return cls(tuple(rows))

    def fee_for(self, procedure: str, channel: str, received_on: datetime.date) -> int:
        """R-FEE: the fee (VND) for an application received on ``received_on``."""
        if procedure not in PROCEDURES:
            raise ValueError(f"unknown procedure {procedure!r}")
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}")
        for row in self.rows:
            if (
                row.procedure == procedure
                and row.channel == channel
                and row.covers(received_on)
            ):
                return row.amount
        raise NoFeeError(
            f"no fee configured for {procedure}/{channel} on {received_on.isoformat()}"
        )


def _overlap(a: FeeRow, b: FeeRow) -> bool:
    a_end = a.valid_to or datetime.date.max
    b_end = b.valid_to or datetime.date.max
    return a.valid_from <= b_end and b.valid_from <= a_end


DEFAULT_FEE_SCHEDULE = FeeSchedule(DEFAULT_FEE_TABLE)


def fee_for(
    procedure: str,
    channel: str,
    received_on: datetime.date,
    schedule: FeeSchedule = DEFAULT_FEE_SCHEDULE,
) -> int:
    """R-FEE: the fee (VND) by procedure, channel and date of receipt; raises NoFeeError
    when no row of ``schedule`` covers the date."""
    return schedule.fee_for(procedure, channel, received_on)
