"""Configuration from environment variables only (twelve-factor), validated at start-up.

Every value has a default that makes the embedded mode work with no configuration at all; a bad value
stops the process with one message naming every problem, rather than failing later at first use.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from licence_service.messaging.names import prefix_problem

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# kombu transports the service is tested on (licence_service.messaging.broker). Not unix://: kombu
# has no transport of that name, and the rate limiter's storage none either.
BROKER_SCHEMES = ("redis://", "rediss://", "amqp://", "amqps://", "pyamqp://")


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
    # Bearer-token keys by key id (the JWT `kid`): every key verifies, the signing key signs new tokens,
    # so a new key can be rolled in while tokens signed with the old one still verify. Empty means
    # {token_signing_key_id: token_secret} (TOKEN_SECRET or the embedded default's var/token-secret).
    token_keys: Mapping[str, str] = field(default_factory=dict)
    token_signing_key_id: str = "k1"
    # Per-client limit on /api/ requests, in flask-limiter's notation ("600/minute"); None is off.
    rate_limit: str | None = "600/minute"
    # How far ahead of this server's clock a client's timestamp (received_at, paid_at) may be.
    clock_skew_seconds: int = 300
    # Decree 13/2023/NĐ-CP: a photo is deleted this many days after the last application carrying it
    # is settled (issued, delivered, refused, withdrawn or stopped).
    photo_retention_days: int = 30
    max_body_bytes: int = 2 * 1024 * 1024
    max_photo_bytes: int = 1024 * 1024
    portal_sync_url: str | None = None
    portal_sync_token: str | None = None
    portal_sync_secret: str | None = None
    portal_sync_timeout_seconds: float = 10.0
    # PORTAL.md §2: a 5xx, 429 or network error is retried with capped exponential backoff for at
    # least 24 hours (counted from the first attempt of that call), then left failed for an operator.
    portal_sync_retry_hours: float = 24.0
    portal_sync_backoff_base_seconds: float = 5.0
    portal_sync_backoff_cap_seconds: float = 15 * 60.0
    # How long a worker holds an application's next call while sending it; another worker (or this
    # one restarted after a crash) takes it over only after that. Longer than any HTTP call can last,
    # so an in-flight call is never overtaken by a second sender.
    portal_sync_lease_seconds: float = 60.0
    # Calls one portal_sync worker makes at once (each for different applications), and how often it
    # looks for retries that have come due.
    portal_sync_concurrency: int = 4
    portal_sync_poll_seconds: float = 1.0
    # How many dossiers one DongBoHoSoMC call may carry (its `data` is a list, PORTAL.md §2), each of
    # a different application; 1 sends one dossier per call.
    portal_sync_batch: int = 20
    # How long a sender thread, started for a batch that is not full, lets more status changes gather
    # before it calls: a burst then fills its calls instead of sending one or two dossiers each.
    # 0 calls at once. Bounded, so a slow or hung call elsewhere never holds a batch up longer.
    portal_sync_gather_seconds: float = 0.05
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
    # A stage worker that has taken fewer events than a batch waits this long for more before it
    # handles them (0: at once): under load, fewer and fuller transactions, each queueing for the
    # database's write lock; at most this much later per stage.
    stage_gather_seconds: float = 0.2
    # Delivery guarantees (licence_service.messaging). A message taken but not acknowledged within
    # the visibility timeout is handed out again (the Redis transport): longer than any handler's
    # longest outside call, short enough that a killed worker's message is back within minutes.
    broker_visibility_timeout_seconds: int = 120
    # Retryable failures (a register's 5xx or timeout, a database error): capped exponential backoff,
    # then the dead-letter queue.
    retry_max_attempts: int = 5
    retry_base_seconds: float = 2.0
    retry_cap_seconds: float = 300.0
    # The sweeper: an application in a working state untouched this long has lost its message.
    stuck_grace_seconds: float = 300.0
    sweep_interval_seconds: float = 30.0
    embedded_redis_port: int = 6390
    sample_data_dir: Path = PROJECT_ROOT / "data"

    @property
    def effective_broker_url(self) -> str:
        url = self.broker_url or self.redis_url
        if not url:
            raise ConfigError("no broker: REDIS_URL or BROKER_URL must be set (or the embedded Redis started)")
        return url

    @property
    def verification_keys(self) -> Mapping[str, str]:
        """Every key a bearer token may be signed with, by key id."""
        return self.token_keys or {self.token_signing_key_id: self.token_secret}

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


MIN_TOKEN_KEY_LENGTH = 32  # characters of an HMAC key: shorter ones can be brute-forced offline


def _token_keys(env: Mapping[str, str], var_dir: Path, problems: list[str]) -> dict[str, Any]:
    """TOKEN_KEYS (JSON, key id -> secret) with TOKEN_SIGNING_KEY_ID, or TOKEN_SECRET (key id k1), or
    the embedded default's var/token-secret (key id k1)."""
    from licence_service.tokens import KEY_ID

    signing = env.get("TOKEN_SIGNING_KEY_ID") or None
    raw = env.get("TOKEN_KEYS")
    if not raw:
        secret = _token_secret(env, var_dir)
        if env.get("TOKEN_SECRET") and len(secret) < MIN_TOKEN_KEY_LENGTH:
            problems.append(f"TOKEN_SECRET must be at least {MIN_TOKEN_KEY_LENGTH} characters")
        if signing not in (None, KEY_ID):
            problems.append(f"TOKEN_SIGNING_KEY_ID must be {KEY_ID} (the key id of TOKEN_SECRET) or TOKEN_KEYS set")
        return {"token_secret": secret, "token_keys": {}, "token_signing_key_id": KEY_ID}
    if env.get("TOKEN_SECRET"):
        problems.append("set TOKEN_KEYS or TOKEN_SECRET, not both (TOKEN_SECRET is TOKEN_KEYS with one key, k1)")
    try:
        keys = json.loads(raw)
        if not (isinstance(keys, dict) and keys and all(
                isinstance(k, str) and re.fullmatch(r"[A-Za-z0-9._-]{1,32}", k) and isinstance(v, str)
                for k, v in keys.items())):
            raise ValueError
    except ValueError:
        problems.append('TOKEN_KEYS must be a JSON object of key id -> secret, like {"k1": "...", "k2": "..."}')
        return {"token_secret": "", "token_keys": {}, "token_signing_key_id": KEY_ID}
    short = sorted(k for k, v in keys.items() if len(v) < MIN_TOKEN_KEY_LENGTH)
    if short:
        problems.append(f"TOKEN_KEYS: the key(s) {', '.join(short)} must be at least {MIN_TOKEN_KEY_LENGTH} characters")
    if signing is None and len(keys) == 1:
        signing = next(iter(keys))
    if signing not in keys:
        problems.append(f"TOKEN_SIGNING_KEY_ID must name one of the TOKEN_KEYS ({', '.join(sorted(keys))})")
        signing = next(iter(keys))
    return {"token_secret": keys[signing], "token_keys": keys, "token_signing_key_id": signing}


def _rate_limit(env: Mapping[str, str], problems: list[str]) -> str | None:
    raw = (env.get("RATE_LIMIT") or Settings.rate_limit or "").strip()
    if raw.lower() == "off":
        return None
    from limits import parse_many

    try:
        parse_many(raw)
    except ValueError:
        problems.append(f'RATE_LIMIT={raw!r} must be like "600/minute" (or "10/second;600/minute"), or "off"')
        return Settings.rate_limit
    return raw


def _security_settings(env: Mapping[str, str], var_dir: Path, problems: list[str]) -> dict[str, Any]:
    """Tokens, rate limit, clock skew and photo retention (SECURITY.md)."""
    return {
        **_token_keys(env, var_dir, problems),
        "rate_limit": _rate_limit(env, problems),
        "clock_skew_seconds": _number(env, "CLOCK_SKEW_SECONDS", 300, problems, minimum=0),
        "photo_retention_days": _number(env, "PHOTO_RETENTION_DAYS", 30, problems, minimum=0),
    }


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the environment; raise ConfigError naming every bad value."""
    env = os.environ if env is None else env
    problems: list[str] = []
    var_dir = Path(env.get("VAR_DIR") or PROJECT_ROOT / "var").resolve()
    database_url = env.get("DATABASE_URL") or f"sqlite:///{var_dir / 'licence.db'}"
    if not database_url.startswith(("sqlite", "postgresql")):
        problems.append(f"DATABASE_URL must be a sqlite:// or postgresql+psycopg:// URL, got {database_url.split(':')[0]}://...")
    redis_url = env.get("REDIS_URL") or None
    if redis_url and not redis_url.startswith(("redis://", "rediss://")):
        problems.append("REDIS_URL must start with redis:// or rediss:// (a Unix socket is not supported)")
    broker_url = env.get("BROKER_URL") or None
    if broker_url and not broker_url.startswith(BROKER_SCHEMES):
        problems.append("BROKER_URL must be a kombu URL starting with " + ", ".join(BROKER_SCHEMES))
    queue_prefix_problem = prefix_problem(env.get("QUEUE_PREFIX", ""))
    if queue_prefix_problem:
        problems.append(queue_prefix_problem)
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
        broker_url=broker_url,
        **_security_settings(env, var_dir, problems),
        token_ttl_seconds=_number(env, "TOKEN_TTL_SECONDS", 3600, problems, minimum=60),
        max_body_bytes=_number(env, "MAX_BODY_BYTES", 2 * 1024 * 1024, problems, minimum=1024),
        portal_sync_url=portal_sync_url,
        portal_sync_token=env.get("PORTAL_SYNC_TOKEN") or None,
        portal_sync_secret=env.get("PORTAL_SYNC_SECRET") or None,
        portal_sync_timeout_seconds=_number(env, "PORTAL_SYNC_TIMEOUT_SECONDS", 10.0, problems, parse=float,
                                            minimum=0.001),
        portal_sync_retry_hours=_number(env, "PORTAL_SYNC_RETRY_HOURS", 24.0, problems, parse=float,
                                        minimum=0.0001),
        portal_sync_backoff_base_seconds=_number(env, "PORTAL_SYNC_BACKOFF_BASE_SECONDS", 5.0, problems,
                                                 parse=float, minimum=0.001),
        portal_sync_backoff_cap_seconds=_number(env, "PORTAL_SYNC_BACKOFF_CAP_SECONDS", 15 * 60.0, problems,
                                                parse=float, minimum=0.001),
        portal_sync_lease_seconds=_number(env, "PORTAL_SYNC_LEASE_SECONDS", 60.0, problems, parse=float,
                                          minimum=0.001),
        portal_sync_concurrency=_number(env, "PORTAL_SYNC_CONCURRENCY", 4, problems, minimum=1),
        portal_sync_poll_seconds=_number(env, "PORTAL_SYNC_POLL_SECONDS", 1.0, problems, parse=float,
                                         minimum=0.01),
        portal_sync_batch=_number(env, "PORTAL_SYNC_BATCH", 20, problems, minimum=1),
        portal_sync_gather_seconds=_number(env, "PORTAL_SYNC_GATHER_SECONDS", 0.05, problems, parse=float,
                                           minimum=0.0),
        portal_agency_name=env.get("PORTAL_AGENCY_NAME") or Settings.portal_agency_name,
        issuing_authority=env.get("ISSUING_AUTHORITY") or Settings.issuing_authority,
        fee_table_json=fee_table_json,
        health_certificate_validity_months=_number(env, "HEALTH_CERTIFICATE_VALIDITY_MONTHS", 12, problems, minimum=1),
        processing_working_days=_number(env, "PROCESSING_WORKING_DAYS", 5, problems, minimum=1),
        unpaid_stop_days=_number(env, "UNPAID_STOP_DAYS", 30, problems, minimum=1),
        relay_poll_seconds=_number(env, "RELAY_POLL_SECONDS", 0.2, problems, parse=float, minimum=0.001),
        stage_gather_seconds=_number(env, "STAGE_GATHER_SECONDS", 0.2, problems, parse=float, minimum=0.0),
        broker_visibility_timeout_seconds=_number(env, "BROKER_VISIBILITY_TIMEOUT_SECONDS", 120, problems,
                                                  minimum=1),
        retry_max_attempts=_number(env, "RETRY_MAX_ATTEMPTS", 5, problems, minimum=1),
        retry_base_seconds=_number(env, "RETRY_BASE_SECONDS", 2.0, problems, parse=float, minimum=0.001),
        retry_cap_seconds=_number(env, "RETRY_CAP_SECONDS", 300.0, problems, parse=float, minimum=0.001),
        stuck_grace_seconds=_number(env, "STUCK_GRACE_SECONDS", 300.0, problems, parse=float, minimum=0.001),
        sweep_interval_seconds=_number(env, "SWEEP_INTERVAL_SECONDS", 30.0, problems, parse=float,
                                       minimum=0.001),
        embedded_redis_port=_number(env, "EMBEDDED_REDIS_PORT", 6390, problems, minimum=1),
    )
    if codes is not None:
        settings = replace(settings, portal_procedure_codes=codes)
    if settings.portal_sync_url and not (settings.portal_sync_token and settings.portal_sync_secret):
        problems.append("PORTAL_SYNC_URL is set, so PORTAL_SYNC_TOKEN and PORTAL_SYNC_SECRET must be set too")
    if settings.portal_sync_backoff_cap_seconds < settings.portal_sync_backoff_base_seconds:
        problems.append("PORTAL_SYNC_BACKOFF_CAP_SECONDS must be at least PORTAL_SYNC_BACKOFF_BASE_SECONDS")
    # The HTTP timeout bounds connecting and reading separately, so a call may last twice as long.
    if settings.portal_sync_lease_seconds <= 2 * settings.portal_sync_timeout_seconds:
        problems.append("PORTAL_SYNC_LEASE_SECONDS must be more than twice PORTAL_SYNC_TIMEOUT_SECONDS")
    if settings.retry_cap_seconds < settings.retry_base_seconds:
        problems.append("RETRY_CAP_SECONDS must be at least RETRY_BASE_SECONDS")
    if settings.broker_visibility_timeout_seconds <= settings.portal_sync_timeout_seconds:
        # A message must not be handed out again while its handler still waits on an outside call.
        problems.append("BROKER_VISIBILITY_TIMEOUT_SECONDS must be longer than PORTAL_SYNC_TIMEOUT_SECONDS")
    if problems:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(problems))
    return settings
