"""Flask commands: db upgrade, tokens issue, sandbox load, registry import-legacy (each group of
another area lives in its own cli_*.py module: portal-sync, dlq)."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from licence_service.bootstrap import services_for
from licence_service.cli_dlq import dlq
from licence_service.cli_photos import photos
from licence_service.cli_portal import portal_sync
from licence_service.legacy.cli import registry
from licence_service.registers.sandbox_loader import SandboxFileError, load_sandbox
from licence_service.store.migrate import upgrade
from licence_service.tokens import SCOPES, issue_token

db = AppGroup("db", help="Database schema.")
tokens = AppGroup("tokens", help="Bearer tokens for API clients.")
sandbox = AppGroup("sandbox", help="Sandbox registers for development, tests and demos.")


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every Alembic migration (safe to run again)."""
    url = services_for(current_app).settings.database_url
    upgrade(url)
    click.echo("database is at the latest schema")


@tokens.command("issue")
@click.option("--client", required=True, help="The client's name, recorded in application history.")
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(SCOPES),
              help="A scope to grant; repeat for several.")
@click.option("--ttl", type=int, default=None, help="Lifetime in seconds (default TOKEN_TTL_SECONDS).")
def tokens_issue(client: str, scopes: tuple[str, ...], ttl: int | None) -> None:
    """Print a signed bearer token."""
    settings = services_for(current_app).settings
    click.echo(issue_token(settings.token_secret, client, scopes, issuer=settings.token_issuer,
                           audience=settings.token_audience, ttl_seconds=ttl or settings.token_ttl_seconds,
                           key_id=settings.token_signing_key_id))


@sandbox.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def sandbox_load(file: Path) -> None:
    """Load population and health-certificate records from FILE.json."""
    try:
        summary = load_sandbox(services_for(current_app).uow(), file)
    except SandboxFileError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"loaded {summary.population} population records and "
               f"{summary.health_certificates} health certificates")


def register_cli(app: Flask) -> None:
    for group in (db, tokens, sandbox, registry, portal_sync, dlq, photos):
        app.cli.add_command(group)
