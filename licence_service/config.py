"""Configuration from environment variables only (twelve-factor), validated at start-up.

Every value has a default that makes the embedded mode work with no configuration at all; a bad value
stops the process with one message naming every problem, rather than failing later at first use.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """One or more configuration values are unusable; the message lists them all."""


@dataclass(frozen=True)
class Settings:
    var_dir: Path
    database_url: str
    redis_url: str | None  # None: the embedded redis-server will be started and this filled in
    broker_url: str | None
    token_secret: str
    token_issuer: str = "licence-service"
    token_audience: str = "licence-service"
    token_ttl_seconds: int = 3600
    # Only a test configuration may set this: the portal's pact uses a fixed token (PORTAL.md §1).
    contract_token: str | None = None
    max_body_bytes: int = 2 * 1024 * 1024
    max_photo_bytes: int = 1024 * 1024
    portal_sync_url: str | None = None
    portal_sync_token: str | None = None
    portal_sync_secret: str | None = None
    portal_sync_timeout_seconds: float = 10.0
    # MaTTHC codes and the agency name are configuration (PORTAL.md §2).
    portal_procedure_codes: Mapping[str, str] = field(
        default_factory=lambda: {
            "licence_renewal": "1.002809",
            "international_permit": "1.002806",
        }
    )
    portal_agency_name: str = "Sở Giao thông vận tải Hà Nội"
    issuing_authority: str = "SGTVT-01"
    # R-FEE: a JSON fee table replaces the default one (see licence_service.domain.fees).
    fee_table_json: str | None = None
    # R-HEALTH: the 12-month validity is recalled, not confirmed, hence configuration.
    health_certificate_validity_months: int = 12
    # R-TIME: working days to the appointment date, days before an unpaid application is stopped.
    processing_working_days: int = 5
    unpaid_stop_days: int = 30
    relay_poll_seconds: float = 0.2
    embedded_redis_port: int = 6390
    sample_data_dir: Path = PROJECT_ROOT / "data"

    @property
    def effective_broker_url(self) -> str:
        url = self.broker_url or self.redis_url
        if not url:
            raise ConfigError("no broker: REDIS_URL or BROKER_URL must be set (or the embedded Redis started)")
        return url

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def _number(env: Mapping[str, str], name: str, default: Any, problems: list[str], *,
            parse: Callable[[str], Any] = int, minimum: float = 0) -> Any:
    """Read a numeric variable; a bad value is recorded in `problems` and the default kept."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = parse(raw)
    except ValueError:
        problems.append(f"{name}={raw!r} is not a {'whole number' if parse is int else 'number'}")
        return default
    if value < minimum:
        problems.append(f"{name}={raw!r} must be at least {minimum:g}")
    return value


def _token_secret(env: Mapping[str, str], var_dir: Path) -> str:
    """TOKEN_SECRET, or (embedded mode) a random secret kept under var/ so tokens survive restarts."""
    if env.get("TOKEN_SECRET"):
        return env["TOKEN_SECRET"]
    path = var_dir / "token-secret"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    # O_EXCL: when several processes start at once only one secret is ever written.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(secret)
    return secret


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the environment; raise ConfigError naming every bad value."""
    env = os.environ if env is None else env
    problems: list[str] = []
    var_dir = Path(env.get("VAR_DIR") or PROJECT_ROOT / "var").resolve()
    database_url = env.get("DATABASE_URL") or f"sqlite:///{var_dir / 'licence.db'}"
    if not database_url.startswith(("sqlite", "postgresql")):
        problems.append(f"DATABASE_URL must be a sqlite:// or postgresql+psycopg:// URL, got {database_url.split(':')[0]}://...")
    redis_url = env.get("REDIS_URL") or None
    if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        problems.append("REDIS_URL must start with redis://, rediss:// or unix://")
    portal_sync_url = env.get("PORTAL_SYNC_URL") or None
    if portal_sync_url and not portal_sync_url.startswith(("http://", "https://")):
        problems.append("PORTAL_SYNC_URL must be an http:// or https:// URL")
    codes_raw = env.get("PORTAL_PROCEDURE_CODES")
    codes: Mapping[str, str] | None = None
    if codes_raw:
        try:
            codes = json.loads(codes_raw)
            if not isinstance(codes, dict) or set(codes) != {"licence_renewal", "international_permit"}:
                raise ValueError
        except ValueError:
            problems.append(
                'PORTAL_PROCEDURE_CODES must be JSON like {"licence_renewal": "...", "international_permit": "..."}'
            )
            codes = None
    fee_table_json = env.get("FEE_TABLE_JSON") or None
    if fee_table_json:
        try:
            json.loads(fee_table_json)
        except ValueError:
            problems.append("FEE_TABLE_JSON is not valid JSON")
    settings = Settings(
        var_dir=var_dir,
        database_url=database_url,
        redis_url=redis_url,
        broker_url=env.get("BROKER_URL") or None,
        token_secret=_token_secret(env, var_dir),
        token_ttl_seconds=_number(env, "TOKEN_TTL_SECONDS", 3600, problems, minimum=60),
        max_body_bytes=_number(env, "MAX_BODY_BYTES", 2 * 1024 * 1024, problems, minimum=1024),
        portal_sync_url=portal_sync_url,
        portal_sync_token=env.get("PORTAL_SYNC_TOKEN") or None,
        portal_sync_secret=env.get("PORTAL_SYNC_SECRET") or None,
        portal_sync_timeout_seconds=_number(env, "PORTAL_SYNC_TIMEOUT_SECONDS", 10.0, problems, parse=float,
                                            minimum=0.001),
        portal_agency_name=env.get("PORTAL_AGENCY_NAME") or Settings.portal_agency_name,
        issuing_authority=env.get("ISSUING_AUTHORITY") or Settings.issuing_authority,
        fee_table_json=fee_table_json,
        health_certificate_validity_months=_number(env, "HEALTH_CERTIFICATE_VALIDITY_MONTHS", 12, problems, minimum=1),
        processing_working_days=_number(env, "PROCESSING_WORKING_DAYS", 5, problems, minimum=1),
        unpaid_stop_days=_number(env, "UNPAID_STOP_DAYS", 30, problems, minimum=1),
        relay_poll_seconds=_number(env, "RELAY_POLL_SECONDS", 0.2, problems, parse=float, minimum=0.001),
        embedded_redis_port=_number(env, "EMBEDDED_REDIS_PORT", 6390, problems, minimum=1),
    )
    if codes is not None:
        settings = replace(settings, portal_procedure_codes=codes)
    if settings.portal_sync_url and not (settings.portal_sync_token and settings.portal_sync_secret):
        problems.append("PORTAL_SYNC_URL is set, so PORTAL_SYNC_TOKEN and PORTAL_SYNC_SECRET must be set too")
    if problems:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(problems))
    return settings
