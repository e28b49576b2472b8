"""R-FEE: date-effective fee table by procedure and channel."""

import datetime as dt
import itertools
import json

import pytest

from licence_service.domain.fees import (
    DEFAULT_FEE_TABLE,
    FeeSchedule,
    NoFeeError,
    fee_for,
)

D = dt.date


@pytest.mark.parametrize(
    ("procedure", "channel", "received", "amount"),
    [
        pytest.param(
            "licence_renewal", "online", D(2016, 1, 1), 135_000, id="R-FEE-first-day"
        ),
        pytest.param(
            "licence_renewal",
            "online",
            D(2023, 12, 31),
            135_000,
            id="R-FEE-last-day-before-discount",
        ),
        pytest.param(
            "licence_renewal",
            "online",
            D(2024, 1, 1),
            115_000,
            id="R-FEE-online-discount-starts",
        ),
        pytest.param(
            "licence_renewal",
            "counter",
            D(2024, 1, 1),
            135_000,
            id="R-FEE-counter-no-discount",
        ),
        pytest.param(
            "licence_renewal",
            "online",
            D(2025, 12, 31),
            115_000,
            id="R-FEE-online-discount-last-day",
        ),
        pytest.param(
            "licence_renewal",
            "online",
            D(2026, 1, 1),
            135_000,
            id="R-FEE-discount-ended",
        ),
        pytest.param(
            "international_permit",
            "online",
            D(2025, 6, 1),
            115_000,
            id="R-FEE-IDP-online-discount",
        ),
        pytest.param(
            "international_permit",
            "counter",
            D(2025, 6, 1),
            135_000,
            id="R-FEE-IDP-counter",
        ),
        pytest.param(
            "international_permit",
            "online",
            D(2040, 1, 1),
            135_000,
            id="R-FEE-open-ended-row",
        ),
    ],
)
def test_default_fee_table(procedure, channel, received, amount):
    assert fee_for(procedure, channel, received) == amount


def test_no_row_covering_the_date_is_a_clear_error_R_FEE():
    with pytest.raises(NoFeeError, match="licence_renewal/online on 2015-12-31"):
        fee_for("licence_renewal", "online", D(2015, 12, 31))


@pytest.mark.parametrize(
    ("procedure", "channel"),
    [("licence_renewal", "post"), ("learner_permit", "online")],
    ids=["unknown-channel", "unknown-procedure"],
)
def test_unknown_procedure_or_channel_raises(procedure, channel):
    with pytest.raises(ValueError):
        fee_for(procedure, channel, D(2026, 1, 1))


def test_default_table_has_no_gap_from_2016_for_any_procedure_and_channel_R_FEE():
    for procedure in ("licence_renewal", "international_permit"):
        for channel in ("online", "counter"):
            rows = sorted(
                (
                    r
                    for r in DEFAULT_FEE_TABLE
                    if (r.procedure, r.channel) == (procedure, channel)
                ),
                key=lambda r: r.valid_from,
            )
            assert rows[0].valid_from == D(2016, 1, 1)
            assert rows[-1].valid_to is None
            for a, b in itertools.pairwise(rows):
                assert a.valid_to + dt.timedelta(days=1) == b.valid_from


CONFIG = [
    {
        "from": "2026-01-01",
        "to": "2026-06-30",
        "procedure": "licence_renewal",
        "channel": "online",
        "amount": 100000,
    },
    {
        "from": "2026-07-01",
        "to": None,
        "procedure": "licence_renewal",
        "channel": "online",
        "amount": 150000,
    },
]


def test_schedule_from_json_is_used_instead_of_the_default_R_FEE():
    schedule = FeeSchedule.from_json(json.dumps(CONFIG))
    assert fee_for("licence_renewal", "online", D(2026, 6, 30), schedule) == 100_000
    assert schedule.fee_for("licence_renewal", "online", D(2026, 7, 1)) == 150_000
    with pytest.raises(NoFeeError):
        schedule.fee_for("licence_renewal", "counter", D(2026, 7, 1))


@pytest.mark.parametrize(
    ("rows", "error"),
    [
        pytest.param(
            [CONFIG[0], {**CONFIG[1], "from": "2026-06-30"}],
            ValueError,
            id="overlapping-rows",
        ),
        pytest.param(
            [{**CONFIG[0], "channel": "fax"}], ValueError, id="unknown-channel"
        ),
        pytest.param([{**CONFIG[0], "amount": -1}], ValueError, id="negative-amount"),
        pytest.param(
            [{**CONFIG[0], "amount": "100000"}], ValueError, id="amount-not-int"
        ),
        pytest.param(
            [{**CONFIG[0], "to": "2025-01-01"}], ValueError, id="ends-before-start"
        ),
        pytest.param(
            [{k: v for k, v in CONFIG[0].items() if k != "from"}],
            ValueError,
            id="missing-from",
        ),
        pytest.param({"rows": CONFIG}, TypeError, id="not-a-list"),
    ],
)
def test_bad_configuration_is_rejected(rows, error):
    with pytest.raises(error):
        FeeSchedule.from_json(json.dumps(rows))
