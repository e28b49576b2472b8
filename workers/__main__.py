"""`python -m workers <process>`: run one worker process — the relay, the sweeper, or a stage (checks,
fee, conversion, issuance, portal_sync)."""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Any

from licence_service.config import ConfigError
from licence_service.logs import configure_logging
from licence_service.messaging.names import STAGE_BINDINGS

PROCESSES = ("relay", "sweeper", *STAGE_BINDINGS)


def configure_stage_worker(worker: Any, services: Any) -> None:
    """Give the stage's consumer its failure store and delivery settings; a stage module returns
    either a StageWorker or an object running one as its `stage`."""
    from licence_service.messaging.consumer import StageWorker

    consumer = worker if isinstance(worker, StageWorker) else getattr(worker, "stage", None)
    if not isinstance(consumer, StageWorker):
        raise TypeError(f"{type(worker).__name__} runs no StageWorker to configure")
    consumer.configure(services)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in PROCESSES:
        print(f"usage: python -m workers {{{'|'.join(PROCESSES)}}}", file=sys.stderr)
        return 2
    name = argv[0]
    # Workers serve their own metrics (licence_service.metrics), never into the web process's
    # multiprocess directory; prometheus-client reads this variable when first imported.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    configure_logging(process=name)
    from workers.context import default_services

    try:
        services = default_services()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    from licence_service.metrics import serve_worker_metrics

    try:
        serve_worker_metrics(name, PROCESSES.index(name), services.settings.var_dir)
    except (ValueError, OSError) as exc:
        print(f"METRICS_PORT: cannot serve metrics: {exc}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"workers.{name}")
    if name in ("relay", "sweeper"):
        module.run(services)
    else:
        worker = module.worker(services)
        configure_stage_worker(worker, services)
        worker.run(services.broker_url)
    logging.getLogger(__name__).info("%s: stopped", name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
