"""Error bodies and error logs never carry the applicant's personal data (decree 13/2023/NĐ-CP;
SECURITY.md: log leakage): a database fault in the middle of a submission — its SQL error naming the
statement that failed — is a 500 problem saying nothing of the internals, and its traceback in the
log is masked. The fault is real: a trigger on the applications table writes to a table that has been
dropped, so the insert of the application itself fails."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import sqlalchemy as sa

from licence_service.app import create_app
from licence_service.bootstrap import Services
from licence_service.store.database import make_engine, make_session_factory
from tests.conftest import make_settings
from tests.support.data import PHOTO, application_body

BODY = application_body()
APPLICANT = BODY["applicant"]
SECRETS = [APPLICANT["citizen_id"], APPLICANT["full_name"], APPLICANT["phone"], APPLICANT["email"],
           APPLICANT["residence"]["detail"], PHOTO[:60], "\\u1ec4"]


@pytest.mark.parametrize("hide_parameters", [True, False], ids=["as-configured", "parameters-shown"])
def test_a_database_fault_during_submit_leaks_nothing_personal(tmp_path: Path, database_url: str, redis_url: str,
                                                              portal_headers, caplog, hide_parameters):
    # "parameters-shown": even an engine that puts statement parameters into its errors (the
    # service's does not) leaks nothing, because the log masks what the request brought.
    settings = make_settings(tmp_path, database_url, redis_url)
    engine = make_engine(database_url, hide_parameters=hide_parameters)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE audit_copy (application_id TEXT)"))
        conn.execute(sa.text("CREATE TRIGGER audit_applications AFTER INSERT ON applications "
                             "BEGIN INSERT INTO audit_copy VALUES (NEW.id); END"))
        conn.execute(sa.text("DROP TABLE audit_copy"))
    app = create_app(services=Services(settings=settings, engine=engine, session_factory=make_session_factory(engine)))
    try:
        with caplog.at_level(logging.INFO):
            response = app.test_client().post("/api/v1/applications", json=BODY, headers=portal_headers)
    finally:
        engine.dispose()
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert response.get_json() == {"type": "about:blank", "title": "Internal Server Error", "status": 500,
                                   "detail": "The service could not complete the request."}
    assert "no such table: main.audit_copy" in caplog.text  # the traceback is logged, for the operator
    for secret in SECRETS:
        assert secret not in caplog.text, secret
        assert secret not in response.get_data(as_text=True)
