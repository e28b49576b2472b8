"""The outbox relay process (see licence_service.messaging.relay)."""

from __future__ import annotations

import signal
import threading

from licence_service.bootstrap import Services
from licence_service.messaging.relay import run_relay


def run(services: Services, stop: threading.Event | None = None) -> None:
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
    run_relay(services.uow, services.broker_url, poll_seconds=services.settings.relay_poll_seconds, stop=stop,
              read_uow_factory=services.read_uow)
