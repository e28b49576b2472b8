"""gunicorn's settings for the web process (Procfile: `gunicorn --config python:licence_service.gunicorn_conf`).

Every log line of the web process — gunicorn's own and the app's, its access line per request
included — is a JSON object like the workers' (licence_service.logs), with personal data masked
(decree 13/2023/NĐ-CP). gunicorn's access log is off: the app writes one line per /api/ request
itself, masked, with the client id and correlation id gunicorn cannot know.
"""

from __future__ import annotations

logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "licence_service.logs.JsonFormatter", "process": "web"}},
    "filters": {"personal_data": {"()": "licence_service.logs.PersonalDataFilter"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "json",
                            "filters": ["personal_data"]}},
    "root": {"level": "INFO", "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
        "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
        "alembic": {"level": "WARNING"},  # imported with the CLI commands; its set-up lines are noise here
    },
}

import logging  # noqa: E402 - with what it is for

from gunicorn.glogging import Logger  # noqa: E402


class _Logger(Logger):
    """gunicorn's logger, without building each request's access-log fields only to drop them:
    any logconfig_dict makes gunicorn build them, and the gunicorn.access logger above then
    discards the line (a fortieth of a web worker's CPU, issue 8)."""

    def setup(self, cfg: object) -> None:
        super().setup(cfg)
        self._access_log_enabled = self._access_log_enabled and self.access_log.isEnabledFor(logging.INFO)


logger_class = _Logger

# -- metrics (licence_service.metrics) ----------------------------------------------------------
# Each gunicorn worker is its own process: their counters meet in a multiprocess directory under
# VAR_DIR (or PROMETHEUS_MULTIPROC_DIR when the operator sets it), emptied when gunicorn starts.

import os  # noqa: E402 - this section is about the environment the workers inherit
from pathlib import Path  # noqa: E402

from licence_service.metrics import MULTIPROC_ENV, prepare_multiproc_dir, retire_process, use_multiprocess_dir  # noqa: E402

_var_dir = Path(os.environ.get("VAR_DIR") or Path(__file__).resolve().parent.parent / "var").resolve()
use_multiprocess_dir(Path(os.environ.get(MULTIPROC_ENV) or _var_dir / "prometheus-web"))


def on_starting(server: object) -> None:
    prepare_multiproc_dir(Path(os.environ[MULTIPROC_ENV]))


def child_exit(server: object, worker: object) -> None:
    retire_process(worker.pid)  # type: ignore[attr-defined]
