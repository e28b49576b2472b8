"""`flask --app licence_service photos purge`: the retention job an operator schedules (daily)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from licence_service.bootstrap import services_for
from licence_service.services.photos import purge_photos

photos = AppGroup("photos", help="Applicants' photos (kept once; purged after their applications settle).")


@photos.command("purge")
@click.option("--retention-days", type=click.IntRange(min=0), default=None,
              help="Days to keep a photo after its last application is settled (default PHOTO_RETENTION_DAYS).")
def photos_purge(retention_days: int | None) -> None:
    """Delete the photos whose applications were all settled more than the retention period ago."""
    services = services_for(current_app)
    days = services.settings.photo_retention_days if retention_days is None else retention_days
    summary = purge_photos(services.uow, retention_days=days)
    click.echo(f"{summary.scheduled} photo(s) given a purge date ({days} days after settling); "
               f"{summary.purged} photo(s) deleted")
