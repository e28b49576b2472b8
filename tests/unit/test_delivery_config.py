"""The delivery settings (broker, retries, sweeper) come from the environment, and every bad value is
named at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from licence_service.config import ConfigError, load_settings
from licence_service.messaging.broker import transport_options
from licence_service.messaging.failures import RetryPolicy


def test_defaults_recover_a_lost_message_within_minutes(tmp_path: Path):
    settings = load_settings({"VAR_DIR": str(tmp_path)})
    assert settings.broker_url is None  # the Redis in use is the broker
    assert settings.broker_visibility_timeout_seconds == 120
    assert settings.broker_visibility_timeout_seconds > settings.portal_sync_timeout_seconds
    assert (settings.retry_max_attempts, settings.retry_base_seconds, settings.retry_cap_seconds) == (5, 2.0, 300.0)
    assert settings.stuck_grace_seconds == 300 and settings.sweep_interval_seconds == 30


def test_delivery_settings_are_read_from_the_environment(tmp_path: Path):
    settings = load_settings({
        "VAR_DIR": str(tmp_path), "BROKER_URL": "amqp://guest:guest@rabbit:5672//",
        "BROKER_VISIBILITY_TIMEOUT_SECONDS": "600", "RETRY_MAX_ATTEMPTS": "8", "RETRY_BASE_SECONDS": "0.5",
        "RETRY_CAP_SECONDS": "60", "STUCK_GRACE_SECONDS": "900", "SWEEP_INTERVAL_SECONDS": "10",
        "REDIS_URL": "redis://cache:6379/0"})
    assert settings.effective_broker_url == "amqp://guest:guest@rabbit:5672//"  # BROKER_URL wins
    assert settings.broker_visibility_timeout_seconds == 600
    assert RetryPolicy.from_settings(settings) == RetryPolicy(max_attempts=8, base_seconds=0.5, cap_seconds=60)
    assert (settings.stuck_grace_seconds, settings.sweep_interval_seconds) == (900, 10)


def test_every_bad_delivery_value_is_reported_at_once(tmp_path: Path):
    with pytest.raises(ConfigError) as caught:
        load_settings({"VAR_DIR": str(tmp_path), "BROKER_URL": "kafka://k:9092", "QUEUE_PREFIX": "has space",
                       "BROKER_VISIBILITY_TIMEOUT_SECONDS": "5", "RETRY_MAX_ATTEMPTS": "0",
                       "RETRY_BASE_SECONDS": "30", "RETRY_CAP_SECONDS": "10", "STUCK_GRACE_SECONDS": "soon",
                       "SWEEP_INTERVAL_SECONDS": "-1"})
    message = str(caught.value)
    for expected in ("BROKER_URL must be a kombu URL", "QUEUE_PREFIX may hold", "RETRY_MAX_ATTEMPTS='0'",
                     "RETRY_CAP_SECONDS must be at least RETRY_BASE_SECONDS", "STUCK_GRACE_SECONDS='soon'",
                     "SWEEP_INTERVAL_SECONDS='-1'",
                     "BROKER_VISIBILITY_TIMEOUT_SECONDS must be longer than PORTAL_SYNC_TIMEOUT_SECONDS"):
        assert expected in message, (expected, message)


def test_redis_transport_restores_overdue_messages_promptly_and_amqp_confirms_publishes():
    redis = transport_options("redis://127.0.0.1:6379/0", visibility_timeout=90)
    assert redis["visibility_timeout"] == 90
    # Promptness comes from StageWorker's timer (restore_overdue every visibility timeout / 4 at
    # most); kombu's own scans on empty polls are only a backstop.
    assert redis["unacked_restore_throttle"] <= 10 and redis["unacked_restore_limit"] is None
    assert redis["unacked_mutex_expire"] <= 60
    assert transport_options("amqp://guest:guest@localhost//") == {"confirm_publish": True}


def test_a_unix_socket_url_is_refused_at_start_up_not_at_the_first_message(tmp_path: Path):
    # Neither kombu nor the rate limiter's storage has a unix:// transport: such a URL would pass
    # start-up and fail on the first connection. Both variables name the problem at once.
    with pytest.raises(ConfigError) as caught:
        load_settings({"VAR_DIR": str(tmp_path), "REDIS_URL": "unix:///run/redis.sock",
                       "BROKER_URL": "unix:///run/redis.sock"})
    message = str(caught.value)
    assert "REDIS_URL must start with redis:// or rediss:// (a Unix socket is not supported)" in message
    assert "BROKER_URL must be a kombu URL" in message and "unix://" not in message.split("BROKER_URL")[1]
