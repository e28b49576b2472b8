"""`flask dlq list` and `flask dlq replay [ID ...|--all]` as an operator uses them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from licence_service.store import models


@pytest.fixture
def cli(sqlite_service) -> Any:
    return sqlite_service.client.application.test_cli_runner()


def add_dead_letters(service, *stages: str) -> list[int]:
    ids = []
    with service.uow() as uow:
        for n, stage in enumerate(stages, start=1):
            letter = models.DeadLetter(stage=stage, application_id=f"app-{n}", event_id=f"event-{n}",
                                       body={"type": "application.received", "application_id": f"app-{n}",
                                             "event_id": f"event-{n}"},
                                       error=f"Traceback ...\nRegisterUnavailable: outage {n}", attempts=5)
            uow.deliveries.add_dead_letter(letter)
            uow.session.flush()
            ids.append(letter.id)
        uow.commit()
    return ids


def parked(service) -> list[tuple[str, str | None, int]]:
    with service.db() as s:
        return [(r.stage, r.event_id, r.attempts) for r in s.scalars(select(models.ScheduledRetry)
                                                                     .order_by(models.ScheduledRetry.id))]


def test_list_says_so_when_there_are_no_dead_letters(cli):
    result = cli.invoke(args=["dlq", "list"])
    assert result.exit_code == 0
    assert result.output.strip() == "no dead letters waiting for a replay"


def test_list_shows_each_dead_letter_with_its_stage_application_attempts_and_error(cli, sqlite_service):
    first, second = add_dead_letters(sqlite_service, "checks", "issuance")
    result = cli.invoke(args=["dlq", "list"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert len(lines) == 4
    assert lines[0].split()[0] == str(first) and "checks" in lines[0] and "application app-1" in lines[0]
    assert "5 attempt(s)" in lines[0] and "waiting" in lines[0]
    assert lines[1].strip() == "RegisterUnavailable: outage 1"
    assert lines[2].split()[0] == str(second) and "issuance" in lines[2]


def test_list_json_gives_one_object_per_line(cli, sqlite_service):
    [letter] = add_dead_letters(sqlite_service, "fee")
    result = cli.invoke(args=["dlq", "list", "--json"])
    [row] = [json.loads(line) for line in result.output.splitlines()]
    assert row["id"] == letter and row["stage"] == "fee" and row["application_id"] == "app-1"
    assert row["event_id"] == "event-1" and row["attempts"] == 5 and row["replayed_at"] is None
    assert row["error"].endswith("RegisterUnavailable: outage 1")


def test_replay_of_one_id_sends_it_back_to_its_stage_with_a_fresh_count_and_keeps_it_as_replayed(cli,
                                                                                                sqlite_service):
    first, second = add_dead_letters(sqlite_service, "checks", "conversion")
    result = cli.invoke(args=["dlq", "replay", str(second)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"replayed 1 dead letter(s): {second}"
    assert parked(sqlite_service) == [("conversion", "event-2", 0)]
    assert [json.loads(x)["id"] for x in cli.invoke(args=["dlq", "list", "--json"]).output.splitlines()] == [first]
    everything = [json.loads(x) for x in cli.invoke(args=["dlq", "list", "--all", "--json"]).output.splitlines()]
    assert [(r["id"], r["replayed_at"] is not None) for r in everything] == [(first, False), (second, True)]


def test_replay_all_sends_every_waiting_dead_letter_back(cli, sqlite_service):
    add_dead_letters(sqlite_service, "checks", "fee", "issuance")
    result = cli.invoke(args=["dlq", "replay", "--all"])
    assert result.exit_code == 0
    assert result.output.startswith("replayed 3 dead letter(s)")
    assert [p[0] for p in parked(sqlite_service)] == ["checks", "fee", "issuance"]
    assert cli.invoke(args=["dlq", "replay", "--all"]).output.strip() == "no dead letters waiting for a replay"


@pytest.mark.parametrize("which", ["unknown", "already replayed"])
def test_replay_of_an_id_not_waiting_changes_nothing_and_says_which(cli, sqlite_service, which):
    first, second = add_dead_letters(sqlite_service, "checks", "fee")
    if which == "already replayed":
        cli.invoke(args=["dlq", "replay", str(second)])
        missing = second
    else:
        missing = 999
    before = parked(sqlite_service)
    result = cli.invoke(args=["dlq", "replay", str(first), str(missing)])
    assert result.exit_code == 1
    assert f"no dead letter waiting for a replay with id {missing}; nothing replayed" in result.output
    assert parked(sqlite_service) == before
    still_waiting = [first] if which == "already replayed" else [first, second]
    assert [json.loads(x)["id"] for x in cli.invoke(args=["dlq", "list", "--json"]).output.splitlines()] == \
        still_waiting


@pytest.mark.parametrize("args", [[], ["1", "--all"]], ids=["neither", "both"])
def test_replay_needs_ids_or_all_but_not_both(cli, sqlite_service, args):
    add_dead_letters(sqlite_service, "checks")
    result = cli.invoke(args=["dlq", "replay", *args])
    assert result.exit_code == 2
    assert "give the dead letters' ids, or --all (not both)" in result.output
    assert parked(sqlite_service) == []


def test_replay_refuses_an_id_that_is_not_a_positive_number(cli, sqlite_service):
    result = cli.invoke(args=["dlq", "replay", "abc"])
    assert result.exit_code == 2 and "abc" in result.output
    assert parked(sqlite_service) == []
