"""`python -m workers <stage>`: run one worker process (relay, checks, fee, conversion, issuance,
portal_sync)."""

from __future__ import annotations

import importlib
import logging
import sys

from licence_service.config import ConfigError
from licence_service.logs import configure_logging
from licence_service.messaging.names import STAGE_BINDINGS

PROCESSES = ("relay", *STAGE_BINDINGS)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in PROCESSES:
        print(f"usage: python -m workers {{{'|'.join(PROCESSES)}}}", file=sys.stderr)
        return 2
    stage = argv[0]
    configure_logging(process=stage)
    from workers.context import default_services

    try:
        services = default_services()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    module = importlib.import_module(f"workers.{stage}")
    if stage == "relay":
        module.run(services)
    else:
        module.worker(services).run(services.broker_url)
    logging.getLogger(__name__).info("%s: stopped", stage)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
