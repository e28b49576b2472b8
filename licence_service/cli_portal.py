"""`flask portal-sync failing`: the operator's list of applications whose DongBoHoSoMC sync is failing
(calls given up, or being retried after a failed attempt)."""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import AppGroup

from licence_service.bootstrap import services_for
from licence_service.services.portal_sync import FailingSync, failing

portal_sync = AppGroup("portal-sync", help="DongBoHoSoMC status sync to the National Public Service Portal.")


def _row(f: FailingSync) -> dict[str, object]:
    return {
        "application_id": f.application_id,
        "portal_dossier_id": f.portal_dossier_id,
        "seq": f.seq,
        "portal_status": f.portal_status,
        "state": "retrying" if f.state == "pending" else f.state,
        "attempts": f.attempts,
        "first_attempt_at": f.first_attempt_at.isoformat() if f.first_attempt_at else None,
        "next_attempt_at": f.next_attempt_at.isoformat() if f.next_attempt_at else None,
        "last_error": f.last_error,
    }


@portal_sync.command("failing")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line instead of a table.")
def portal_sync_failing(as_json: bool) -> None:
    """List the applications whose sync to the portal is failing, oldest first."""
    rows = [_row(f) for f in failing(services_for(current_app).uow)]
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))
        return
    if not rows:
        click.echo("no failing portal sync")
        return
    click.echo(f"{'application':36}  {'dossier':24}  {'status':>6}  {'state':8}  {'tries':>5}  "
               f"{'next attempt':25}  last error")
    for r in rows:
        click.echo(f"{r['application_id']:36}  {r['portal_dossier_id']:24}  {r['portal_status']:>6}  "
                   f"{r['state']:8}  {r['attempts']:>5}  {r['next_attempt_at'] or '-':25}  {r['last_error'] or ''}")
