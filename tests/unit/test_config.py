"""Configuration comes from the environment and every bad value is named at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from licence_service.config import ConfigError, load_settings


def test_no_configuration_gives_the_embedded_default(tmp_path: Path):
    settings = load_settings({"VAR_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'licence.db'}"
    assert settings.redis_url is None  # the embedded Redis is started on first need
    assert settings.portal_sync_url is None
    assert settings.contract_token is None


def test_token_secret_is_generated_once_and_kept_under_var(tmp_path: Path):
    first = load_settings({"VAR_DIR": str(tmp_path)}).token_secret
    again = load_settings({"VAR_DIR": str(tmp_path)}).token_secret
    assert first == again and len(first) >= 32
    assert (tmp_path / "token-secret").stat().st_mode & 0o077 == 0


def test_every_bad_value_is_reported_at_once(tmp_path: Path):
    env = {"VAR_DIR": str(tmp_path), "TOKEN_SECRET": "s", "DATABASE_URL": "mysql://db/x",
           "REDIS_URL": "http://redis", "PROCESSING_WORKING_DAYS": "five", "RELAY_POLL_SECONDS": "-1",
           "PORTAL_SYNC_URL": "http://portal/sync", "FEE_TABLE_JSON": "{nope",
           "PORTAL_PROCEDURE_CODES": '{"licence_renewal": "1"}'}
    with pytest.raises(ConfigError) as err:
        load_settings(env)
    message = str(err.value)
    for name in ("DATABASE_URL", "REDIS_URL", "PROCESSING_WORKING_DAYS", "RELAY_POLL_SECONDS",
                 "PORTAL_SYNC_TOKEN", "FEE_TABLE_JSON", "PORTAL_PROCEDURE_CODES"):
        assert name in message


def test_contract_token_cannot_be_set_from_the_environment(tmp_path: Path):
    settings = load_settings({"VAR_DIR": str(tmp_path), "CONTRACT_TOKEN": "portal-contract-token"})
    assert settings.contract_token is None
