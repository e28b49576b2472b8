"""The sweeper process: every SWEEP_INTERVAL_SECONDS, re-drives applications stuck in a working state
for longer than STUCK_GRACE_SECONDS (see licence_service.services.sweeper)."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading

from licence_service.bootstrap import Services
from licence_service.services.sweeper import sweep

log = logging.getLogger(__name__)


def run(services: Services, stop: threading.Event | None = None) -> None:
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
    settings = services.settings
    grace = dt.timedelta(seconds=settings.stuck_grace_seconds)
    log.info("sweeper: re-driving applications stuck for more than %s s, every %s s",
             settings.stuck_grace_seconds, settings.sweep_interval_seconds)
    while not stop.is_set():
        try:
            sweep(services.uow, grace=grace)
        except Exception:
            # The database is down, most likely: the next round tries again.
            log.exception("sweeper: sweep failed")
        stop.wait(settings.sweep_interval_seconds)
