"""`flask registry import-legacy`: the command Hà Nội's Department runs to convert its register."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from licence_service.legacy.importer import import_legacy
from licence_service.legacy.progress import TerminalProgress
from licence_service.legacy.rows import MalformedFileError

__all__ = ["registry"]

registry = AppGroup("registry", help="The national licence register: imports from legacy systems.")


@registry.command("import-legacy")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check and report everything, write nothing to the register.")
@click.option(
    "--reject-report",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the rejected rows (CSV). Default: FILE's name with .rejects.csv, next to it.",
)
@click.option("--source", default=None, help="Name recorded in licence history. Default: legacy-import:<file name>.")
def import_legacy_command(file: Path, dry_run: bool, reject_report: Path | None, source: str | None) -> None:
    """Import FILE.csv, a Hà Nội legacy export, into the national register (idempotent)."""
    from licence_service.bootstrap import services_for

    svc = services_for(current_app)
    # The bar is for people watching a terminal; logs and pipes get only the summary.
    progress = TerminalProgress(sys.stderr) if sys.stderr.isatty() else None
    try:
        summary = import_legacy(
            file, svc.engine, dry_run=dry_run, reject_report=reject_report, source=source, progress=progress
        )
    except MalformedFileError as exc:
        raise click.ClickException(f"{file}: {exc}. Nothing was imported.") from None
    except FileNotFoundError as exc:
        raise click.ClickException(f"{exc}. Nothing was imported.") from None
    click.echo(summary.render())
