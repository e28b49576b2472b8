"""`python -m tests.integration.messaging.faulty_worker <process>`: the service's own worker process
(workers.__main__) with one fault injected, for faults a test cannot cause from outside:

- FAULT_SLOW_STAGE=<stage>, FAULT_SLOW_SECONDS=<s>, FAULT_MARKER=<path>: that stage's handler writes
  the application id to the marker file, sleeps, then does its work (a handler caught mid-step).
- FAULT_PUBLISH_TWICE=1 (relay): every outbox row is published twice (a broker duplicate).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any


def _slow_stage(stage: str, seconds: float, marker: Path) -> None:
    from licence_service.services import stages

    original = getattr(stages, stage)

    def slow(ctx: Any, event: Any) -> Any:
        with open(marker, "a") as fh:
            fh.write(event.application_id + "\n")
        time.sleep(seconds)
        return original(ctx, event)

    setattr(stages, stage, slow)


def _publish_twice() -> None:
    from licence_service.messaging import relay

    original = relay.Publisher.event

    def twice(self: Any, payload: Any, routing_key: str, event_id: str) -> None:
        original(self, payload, routing_key, event_id)
        original(self, payload, routing_key, event_id)

    relay.Publisher.event = twice  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    if os.environ.get("FAULT_SLOW_STAGE"):
        _slow_stage(os.environ["FAULT_SLOW_STAGE"], float(os.environ.get("FAULT_SLOW_SECONDS", "5")),
                    Path(os.environ["FAULT_MARKER"]))
    if os.environ.get("FAULT_PUBLISH_TWICE"):
        _publish_twice()
    from workers.__main__ import main as workers_main

    return workers_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
