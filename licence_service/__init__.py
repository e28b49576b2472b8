"""The driving-licence renewal service. `flask --app licence_service ...` and gunicorn's
`licence_service:create_app()` find the app factory here.

`create_app` is imported on first use, not with the package: the worker processes, the relay and
the legacy importer import `licence_service.*` modules and have no use for Flask, flask-smorest and
the API's schemas, which would cost each of them tens of megabytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from licence_service.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from licence_service.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
