"""The web process's gunicorn logger (licence_service.gunicorn_conf) builds no access-log fields for
a line its configuration drops: the app writes each request's access line itself (issue 8).

Each check runs in a process of its own: setting the logger up configures logging process-wide."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import copy, sys
from gunicorn.config import Config
from licence_service import gunicorn_conf as conf
config = copy.deepcopy(conf.logconfig_dict)
if sys.argv[1] == "on":
    config["loggers"]["gunicorn.access"] = {"level": "INFO", "handlers": ["stderr"], "propagate": False}
cfg = Config()
cfg.set("logconfig_dict", config)
cfg.set("logger_class", conf.logger_class)
print(cfg.logger_class(cfg).access_log_enabled)
"""


def access_log_enabled(setting: str) -> str:
    done = subprocess.run([sys.executable, "-c", CHECK, setting], capture_output=True, text=True, timeout=60,
                          check=True)
    return done.stdout.strip()


def test_the_web_processs_gunicorn_logger_skips_the_access_line_its_configuration_drops():
    assert access_log_enabled("as-configured") == "False"


def test_an_operator_who_turns_gunicorns_access_log_on_gets_it():
    assert access_log_enabled("on") == "True"
