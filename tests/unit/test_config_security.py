"""The security settings (SECURITY.md) come from the environment and every bad value is named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from licence_service.config import ConfigError, load_settings

K1, K2 = "a" * 32, "b" * 32


def test_embedded_default_signs_and_verifies_with_var_token_secret_as_key_k1(tmp_path: Path):
    settings = load_settings({"VAR_DIR": str(tmp_path)})
    secret = (tmp_path / "token-secret").read_text().strip()
    assert settings.token_signing_key_id == "k1"
    assert settings.verification_keys == {"k1": secret}


def test_token_keys_with_a_signing_key_id(tmp_path: Path):
    settings = load_settings({"VAR_DIR": str(tmp_path), "TOKEN_KEYS": json.dumps({"k1": K1, "k2": K2}),
                              "TOKEN_SIGNING_KEY_ID": "k2"})
    assert settings.verification_keys == {"k1": K1, "k2": K2}
    assert settings.token_signing_key_id == "k2" and settings.token_secret == K2
    assert not (tmp_path / "token-secret").exists()  # no embedded secret is made when keys are given


def test_one_token_key_signs_without_naming_it(tmp_path: Path):
    settings = load_settings({"VAR_DIR": str(tmp_path), "TOKEN_KEYS": json.dumps({"2026-11": K1})})
    assert settings.token_signing_key_id == "2026-11"


@pytest.mark.parametrize("env, names", [
    ({"TOKEN_KEYS": "{nope"}, ["TOKEN_KEYS"]),
    ({"TOKEN_KEYS": json.dumps({"k1": K1, "k2": K2})}, ["TOKEN_SIGNING_KEY_ID"]),
    ({"TOKEN_KEYS": json.dumps({"k1": K1}), "TOKEN_SIGNING_KEY_ID": "k3"}, ["TOKEN_SIGNING_KEY_ID"]),
    ({"TOKEN_KEYS": json.dumps({"k1": "short"})}, ["TOKEN_KEYS"]),
    ({"TOKEN_KEYS": json.dumps({"bad kid!": K1})}, ["TOKEN_KEYS"]),
    ({"TOKEN_KEYS": json.dumps({"k1": K1}), "TOKEN_SECRET": K2}, ["TOKEN_KEYS or TOKEN_SECRET"]),
    ({"TOKEN_SECRET": "short"}, ["TOKEN_SECRET"]),
    ({"TOKEN_SECRET": K1, "TOKEN_SIGNING_KEY_ID": "k2"}, ["TOKEN_SIGNING_KEY_ID"]),
    ({"RATE_LIMIT": "lots"}, ["RATE_LIMIT"]),
    ({"CLOCK_SKEW_SECONDS": "-5", "PHOTO_RETENTION_DAYS": "a month"}, ["CLOCK_SKEW_SECONDS", "PHOTO_RETENTION_DAYS"]),
])
def test_bad_security_settings_are_named(tmp_path: Path, env, names):
    with pytest.raises(ConfigError) as err:
        load_settings({"VAR_DIR": str(tmp_path), **env})
    for name in names:
        assert name in str(err.value)


def test_rate_limit_defaults_to_600_a_minute_and_off_turns_it_off(tmp_path: Path):
    assert load_settings({"VAR_DIR": str(tmp_path)}).rate_limit == "600/minute"
    assert load_settings({"VAR_DIR": str(tmp_path), "RATE_LIMIT": "off"}).rate_limit is None
    assert load_settings({"VAR_DIR": str(tmp_path), "RATE_LIMIT": "10/second;600/minute"}).rate_limit == \
        "10/second;600/minute"


def test_clock_skew_and_photo_retention_defaults(tmp_path: Path):
    settings = load_settings({"VAR_DIR": str(tmp_path)})
    assert settings.clock_skew_seconds == 300 and settings.photo_retention_days == 30
