"""Photos kept once, content-addressed, and purged PHOTO_RETENTION_DAYS after their applications
settle (decree 13/2023/NĐ-CP), by `flask photos purge`, which an operator schedules."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from typing import Any

from sqlalchemy import select, update

from licence_service.services.photos import purge_photos
from licence_service.store import models
from tests.support.data import PHOTO, application_body, png_bytes

URL = "/api/v1/applications"
JPEG = base64.b64decode(PHOTO)
JPEG_SHA = hashlib.sha256(JPEG).hexdigest()


def submit(client: Any, headers: dict[str, str], dossier: str, photo: bytes = JPEG,
           kind: str = "image/jpeg") -> str:
    body = application_body(portal_dossier_id=dossier,
                            photo={"content_type": kind, "data": base64.b64encode(photo).decode()})
    response = client.post(URL, json=body, headers=headers)
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()["id"]


def photos(services: Any) -> dict[str, models.Photo]:
    with services.session_factory() as s:
        return {p.sha256: p for p in s.scalars(select(models.Photo))}


def settle(services: Any, application_id: str, status: str, at: dt.datetime) -> None:
    """Move an application to a settled status at `at`, as its stage or the API would have."""
    with services.session_factory() as s:
        s.execute(update(models.Application).where(models.Application.id == application_id).values(status=status))
        s.add(models.ApplicationHistory(application_id=application_id, status=status, portal_status=9, at=at,
                                        actor="test"))
        s.commit()


def test_a_photo_is_stored_once_by_its_hash_however_many_applications_carry_it(client, services, portal_headers):
    first = submit(client, portal_headers, "G01.99-PHOTO-1")
    submit(client, portal_headers, "G01.99-PHOTO-2")
    submit(client, portal_headers, "G01.99-PHOTO-3", png_bytes(), "image/png")
    stored = photos(services)
    assert set(stored) == {JPEG_SHA, hashlib.sha256(png_bytes()).hexdigest()}
    assert stored[JPEG_SHA].content == JPEG and stored[JPEG_SHA].content_type == "image/jpeg"
    with services.session_factory() as s:
        assert s.get(models.Application, first).photo_sha256 == JPEG_SHA
    # The application's JSON keeps no copy of the photo.
    with services.session_factory() as s:
        assert "photo" not in (s.get(models.Application, first).details or {})


def test_purge_dates_a_photo_once_its_applications_settle_and_deletes_it_after_the_retention(
        client, services, portal_headers):
    application_id = submit(client, portal_headers, "G01.99-PHOTO-1")
    assert purge_photos(services.uow, retention_days=30).scheduled == 0  # still open
    issued_at = models.utcnow() + dt.timedelta(seconds=1)
    settle(services, application_id, "issued", issued_at)
    summary = purge_photos(services.uow, retention_days=30, now=issued_at)
    assert (summary.scheduled, summary.purged) == (1, 0)
    assert photos(services)[JPEG_SHA].purge_after == issued_at + dt.timedelta(days=30)
    assert purge_photos(services.uow, retention_days=30, now=issued_at + dt.timedelta(days=29)).purged == 0
    assert purge_photos(services.uow, retention_days=30, now=issued_at + dt.timedelta(days=31)).purged == 1
    assert photos(services) == {}
    with services.session_factory() as s:  # the application keeps the hash as a record of what was sent
        assert s.get(models.Application, application_id).photo_sha256 == JPEG_SHA


def test_a_photo_shared_with_an_open_application_is_kept(client, services, portal_headers):
    done = submit(client, portal_headers, "G01.99-PHOTO-1")
    submit(client, portal_headers, "G01.99-PHOTO-2")  # same photo, still open
    settle(services, done, "withdrawn", models.utcnow() + dt.timedelta(seconds=1))
    summary = purge_photos(services.uow, retention_days=30, now=models.utcnow() + dt.timedelta(days=100))
    assert (summary.scheduled, summary.purged) == (0, 0)
    assert JPEG_SHA in photos(services)


def test_submitting_a_dated_photo_again_cancels_its_purge(client, services, portal_headers):
    done = submit(client, portal_headers, "G01.99-PHOTO-1")
    settle(services, done, "refused", models.utcnow() + dt.timedelta(seconds=1))
    purge_photos(services.uow, retention_days=30)
    assert photos(services)[JPEG_SHA].purge_after is not None
    submit(client, portal_headers, "G01.99-PHOTO-2")
    assert photos(services)[JPEG_SHA].purge_after is None
    assert purge_photos(services.uow, retention_days=30, now=models.utcnow() + dt.timedelta(days=100)).purged == 0
    assert JPEG_SHA in photos(services)


def test_the_purge_command_uses_photo_retention_days(app_with, portal_headers):
    from licence_service.bootstrap import services_for

    app = app_with(PHOTO_RETENTION_DAYS="0")
    services = services_for(app)
    application_id = submit(app.test_client(), portal_headers, "G01.99-PHOTO-CLI")
    settle(services, application_id, "delivered", models.utcnow())
    result = app.test_cli_runner().invoke(args=["photos", "purge"])
    assert result.exit_code == 0, result.output
    assert "1 photo(s) given a purge date (0 days after settling); 1 photo(s) deleted" in result.output
    assert photos(services) == {}


def test_keeping_and_purging_work_alike_on_sqlite_and_postgresql(tmp_path, any_database_url, redis_url,
                                                                  portal_headers):
    from licence_service.app import create_app
    from licence_service.bootstrap import build_services
    from tests.conftest import make_settings

    services = build_services(make_settings(tmp_path, any_database_url, redis_url))
    try:
        client = create_app(services=services).test_client()
        first = submit(client, portal_headers, "G01.99-PHOTO-DB-1")
        second = submit(client, portal_headers, "G01.99-PHOTO-DB-2")
        assert list(photos(services)) == [JPEG_SHA]
        settled_at = models.utcnow() + dt.timedelta(seconds=1)
        settle(services, first, "issued", settled_at)
        assert purge_photos(services.uow, retention_days=30).scheduled == 0  # the second is open
        settle(services, second, "stopped", settled_at + dt.timedelta(hours=1))
        summary = purge_photos(services.uow, retention_days=30, now=settled_at + dt.timedelta(days=31))
        assert (summary.scheduled, summary.purged) == (1, 1)
        assert photos(services) == {}
    finally:
        services.engine.dispose()
