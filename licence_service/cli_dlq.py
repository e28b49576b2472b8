"""`flask dlq list` and `flask dlq replay [ID ...|--all]`: the operator's view of the messages the
workers gave up on (licence_service.messaging.failures), and their re-drive once the cause is fixed.

Dead letters are rows in the database, so they can be listed and replayed even after the broker lost
its data. A replay hands each message to the relay, which publishes it to its stage's queue with a
fresh attempt count; the row stays, marked replayed (`list --all` shows those too).
"""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import AppGroup

from licence_service.bootstrap import services_for
from licence_service.messaging.failures import NoSuchDeadLetter, replay
from licence_service.store import models

dlq = AppGroup("dlq", help="Dead letters: messages the workers gave up on.")


def _row(letter: models.DeadLetter) -> dict[str, object]:
    return {
        "id": letter.id,
        "created_at": letter.created_at.isoformat(),
        "stage": letter.stage,
        "application_id": letter.application_id,
        "event_id": letter.event_id,
        "attempts": letter.attempts,
        "error": letter.error,
        "replayed_at": letter.replayed_at.isoformat() if letter.replayed_at else None,
    }


@dlq.command("list")
@click.option("--all", "include_replayed", is_flag=True, help="Include dead letters already replayed.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line instead of a table.")
def dlq_list(include_replayed: bool, as_json: bool) -> None:
    """List dead letters, oldest first, with the error that stopped each."""
    with services_for(current_app).uow() as uow:
        rows = [_row(d) for d in uow.deliveries.dead_letters(include_replayed=include_replayed)]
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))
        return
    if not rows:
        click.echo("no dead letters" + ("" if include_replayed else " waiting for a replay"))
        return
    for row in rows:
        error = str(row["error"]).splitlines()
        state = f"replayed {row['replayed_at']}" if row["replayed_at"] else "waiting"
        click.echo(f"{row['id']:>6}  {row['created_at']}  {row['stage']:<11}  application {row['application_id']}  "
                   f"{row['attempts']} attempt(s)  {state}\n        {error[-1] if error else ''}")


@dlq.command("replay")
@click.argument("ids", nargs=-1, type=click.IntRange(min=1))
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter waiting for a replay.")
def dlq_replay(ids: tuple[int, ...], replay_all: bool) -> None:
    """Send dead letters ID... (or --all) back to their stage's queue, with a fresh attempt count."""
    if bool(ids) == replay_all:
        raise click.UsageError("give the dead letters' ids, or --all (not both)")
    try:
        replayed = replay(services_for(current_app).uow, None if replay_all else ids)
    except NoSuchDeadLetter as exc:
        missing = ", ".join(str(i) for i in exc.args[0])
        raise click.ClickException(f"no dead letter waiting for a replay with id {missing}; nothing replayed") \
            from None
    if not replayed:
        click.echo("no dead letters waiting for a replay")
        return
    click.echo(f"replayed {len(replayed)} dead letter(s): {', '.join(str(i) for i in replayed)}")
