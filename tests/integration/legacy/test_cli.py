"""`flask registry import-legacy`: the command prints the summary, refuses malformed files non-zero."""

from __future__ import annotations

import pytest

from licence_service.app import create_app
from licence_service.bootstrap import Services
from licence_service.config import load_settings
from licence_service.store.database import make_session_factory
from tests.integration.legacy.support import TABLES, changed_copy, history, report, snapshot


@pytest.fixture
def cli(sqlite_register, tmp_path):
    settings = load_settings({
        "VAR_DIR": str(tmp_path / "var"), "DATABASE_URL": sqlite_register.url, "TOKEN_SECRET": "s" * 48,
    })
    # The service's own app: the command must be wired into `flask --app licence_service`.
    app = create_app(services=Services(
        settings=settings, engine=sqlite_register.engine, session_factory=make_session_factory(sqlite_register.engine)
    ))
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=["registry", "import-legacy", *map(str, args)])


def test_import_prints_the_summary_and_writes_the_report_next_to_the_file(cli, sample, sqlite_register, tmp_path):
    result = cli(sample)
    assert result.exit_code == 0, result.output
    assert "rows read                 57" in result.output
    assert "created 40, updated 0, unchanged 0" in result.output
    assert "issued_before_passed" in result.output
    assert f"reject report: {tmp_path / 'hanoi-legacy-sample.rejects.csv'}" in result.output
    assert len(report(tmp_path / "hanoi-legacy-sample.rejects.csv")) == 1
    # Not a terminal: no progress bar, only the summary.
    assert "\r" not in result.output and "ETA" not in result.output
    assert len(snapshot(sqlite_register.engine)["licences"]) == 40


def test_options_dry_run_report_path_and_source(cli, sample, sqlite_register, tmp_path):
    dry = cli(sample, "--dry-run", "--reject-report", tmp_path / "out" / "r.csv")
    assert dry.exit_code == 1 and "folder" in dry.output and "does not exist" in dry.output
    (tmp_path / "out").mkdir()
    dry = cli(sample, "--dry-run", "--reject-report", tmp_path / "out" / "r.csv")
    assert dry.exit_code == 0 and "DRY RUN: nothing was written" in dry.output
    assert snapshot(sqlite_register.engine) == {t: [] for t in TABLES}
    assert (tmp_path / "out" / "r.csv").exists()

    assert cli(sample, "--source", "hanoi-2026-11").exit_code == 0
    newer = changed_copy(sample, tmp_path / "newer.csv", "013954604468", TRANG_THAI="Tạm giữ")
    assert cli(newer, "--source", "hanoi-2026-12").exit_code == 0
    assert [h["source"] for h in history(sqlite_register.engine, "013954604468")] == ["hanoi-2026-12"]


def test_a_malformed_file_exits_non_zero_with_a_clear_message(cli, sqlite_register, tmp_path):
    path = tmp_path / "wrong.csv"
    path.write_text("SO_GPLX,HO_TEN\r\n010123456789,X\r\n", encoding="utf-8")
    result = cli(path)
    assert result.exit_code == 1
    assert "missing column(s) SO_PHOI" in result.output and "Nothing was imported." in result.output
    assert snapshot(sqlite_register.engine) == {t: [] for t in TABLES}
    assert not (tmp_path / "wrong.rejects.csv").exists()


def test_a_missing_file_is_a_usage_error(cli, tmp_path):
    result = cli(tmp_path / "nope.csv")
    assert result.exit_code == 2 and "does not exist" in result.output
