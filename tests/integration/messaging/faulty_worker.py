"""`python -m tests.integration.messaging.faulty_worker <process>`: the service's own worker process
(workers.__main__) with one fault injected, for faults a test cannot cause from outside:

- FAULT_SLOW_STAGE=<stage>, FAULT_SLOW_SECONDS=<s>, FAULT_MARKER=<path>: that stage's handler writes
  the application id to the marker file, sleeps, then does its work (a handler caught mid-step); its
  batch handler too, so a batch of events cannot go around the fault.
- FAULT_PUBLISH_TWICE=<path> (relay): every message the relay publishes goes onto its queue twice (a
  broker's redelivery after a lost acknowledgement), through the Publisher methods relay.py calls:
  `events` (outbox rows, several to a message) and `to_queue` (parked retries). Each duplicated
  message is recorded in <path>, one JSON line {"method", "queue", "event_ids", "copies"}, so a test
  can prove the duplicates went out and count their deliveries.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def _slow_stage(stage: str, seconds: float, marker: Path) -> None:
    from licence_service.services import stages

    original = getattr(stages, stage)
    original_batch = getattr(stages, f"{stage}_batch")

    def slow(ctx: Any, event: Any) -> Any:
        with open(marker, "a") as fh:
            fh.write(event.application_id + "\n")
        time.sleep(seconds)
        return original(ctx, event)

    def slow_batch(ctx: Any, events: Any) -> Any:
        with open(marker, "a") as fh:
            fh.writelines(event.application_id + "\n" for event in events)
        time.sleep(seconds)
        return original_batch(ctx, events)

    setattr(stages, stage, slow)
    setattr(stages, f"{stage}_batch", slow_batch)


def _same_parameters(original: Any, *names: str) -> None:
    """Refuse to patch a method whose signature has moved on: the fault would never happen."""
    found = tuple(inspect.signature(original).parameters)
    if found != names:
        raise SystemExit(f"faulty_worker: {original.__qualname__}{found} is not {names}; update the fault")


def _publish_twice(record: Path) -> None:
    from licence_service.messaging import relay

    events, to_queue = relay.Publisher.events, relay.Publisher.to_queue
    _same_parameters(events, "self", "payloads", "queue")
    _same_parameters(to_queue, "self", "body", "queue", "headers")

    def recorded(method: str, queue: str, event_ids: list[Any]) -> None:
        with open(record, "a") as fh:
            fh.write(json.dumps({"method": method, "queue": queue, "event_ids": event_ids, "copies": 2}) + "\n")

    def events_twice(self: Any, payloads: list[Any], queue: str) -> None:
        events(self, payloads, queue)
        events(self, payloads, queue)
        recorded("events", queue, [p["event_id"] for p in payloads])

    def to_queue_twice(self: Any, body: Any, queue: str, headers: dict[str, Any]) -> None:
        to_queue(self, body, queue, headers)
        to_queue(self, body, queue, headers)
        recorded("to_queue", queue, [body.get("event_id") if isinstance(body, dict) else None])

    relay.Publisher.events = events_twice  # type: ignore[method-assign]
    relay.Publisher.to_queue = to_queue_twice  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    if os.environ.get("FAULT_SLOW_STAGE"):
        _slow_stage(os.environ["FAULT_SLOW_STAGE"], float(os.environ.get("FAULT_SLOW_SECONDS", "5")),
                    Path(os.environ["FAULT_MARKER"]))
    if os.environ.get("FAULT_PUBLISH_TWICE"):
        _publish_twice(Path(os.environ["FAULT_PUBLISH_TWICE"]))
    from workers.__main__ import main as workers_main

    return workers_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
