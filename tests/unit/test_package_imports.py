"""The worker processes and the legacy importer do not load the web stack (licence_service/__init__.py).

Each worker process imported Flask, flask-smorest and the API's schemas through the package's
`create_app` and paid ~40 MB of memory for it (issue 8: peak RSS per process type).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

WEB_MODULES = ("flask", "flask_smorest", "marshmallow", "licence_service.app")


@pytest.mark.parametrize("module", [
    "workers.__main__",
    "licence_service.messaging.relay",
    "licence_service.messaging.consumer",
    "licence_service.services.stages",
    "licence_service.services.portal_sync",
    "licence_service.legacy",
])
def test_a_worker_module_imports_without_the_web_stack(module: str) -> None:
    code = (
        f"import importlib, sys; importlib.import_module({module!r}); "
        f"print(','.join(m for m in {WEB_MODULES!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_package_still_offers_create_app_to_flask_and_gunicorn() -> None:
    import licence_service
    from licence_service.app import create_app

    assert licence_service.create_app is create_app
    with pytest.raises(AttributeError):
        licence_service.no_such_thing  # noqa: B018
