"""The driving-licence renewal service. `flask --app licence_service ...` finds create_app here."""

from licence_service.app import create_app

__all__ = ["create_app"]
