"""Importing Hà Nội's legacy export into a migrated register (issue 5), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
import unicodedata
from pathlib import Path

import pytest
import sqlalchemy as sa

from licence_service.legacy import MalformedFileError, import_legacy, importer, scan
from licence_service.legacy import register as register_module
from licence_service.legacy.rows import COLUMNS
from licence_service.store import models
from licence_service.store.database import make_engine
from licence_service.store.migrate import upgrade
from tests.integration.legacy.support import (
    TABLES,
    add_application,
    changed_copy,
    foreign_key_violations,
    history,
    licence,
    report,
    sample_rows,
    set_application_status,
    snapshot,
    with_rows,
)
from tests.unit.legacy.exports import row, write_export

D = dt.date

# Rows added after the sample's 57 (so on lines 59-62): a holder known by year of birth only; a row
# contradicting licence 012601030205's holder (and wrong in two more ways); a new licence claiming the
# citizen ID of licence 013954604468; and a class of licence 018012378464 far from its other rows.
SUPPLEMENT = [
    row(SO_GPLX="019000000011", NGAY_SINH="1960"),
    row(SO_GPLX="012601030205", SO_PHOI="706704305732", HO_TEN="ĐỖ THANH TÂM", NGAY_SINH="05/09/1987",
        GIOI_TINH="Nữ", SO_CCCD="031087068711", HANG="B2", NGAY_TRUNG_TUYEN="01/02/2010", NGAY_CAP="31/02/2010",
        NGAY_HET_HAN=""),
    row(SO_GPLX="019000000022", SO_PHOI="900000000022", HO_TEN="PHẠM ĐỨC CƯỜNG", NGAY_SINH="07/04/1972",
        SO_CCCD="001072830128"),
    row(SO_GPLX="018012378464", SO_PHOI="892828412183", HO_TEN="LÊ THU YẾN", NGAY_SINH="22/01/1997", GIOI_TINH="Nữ",
        SO_CCCD="031197044867", HANG="C", NGAY_TRUNG_TUYEN="10/10/2020", NGAY_CAP="20/10/2020",
        NGAY_HET_HAN="20/10/2025", DIEM="8"),
]


@pytest.fixture
def export(sample: Path, tmp_path: Path) -> Path:
    return with_rows(sample, tmp_path / "export.csv", SUPPLEMENT)


def test_sample_is_imported_field_by_field(register, export, tmp_path):
    summary = import_legacy(export, register.engine)
    engine = register.engine

    # A multi-class licence: two rows, one licence; issue date = the latest NGAY_CAP; empty points = 12.
    assert licence(engine, "013954604468") == {
        "regime": "vn-2017", "issued_on": D(2024, 12, 24), "issuing_authority": "SGTVT-01", "status": "valid",
        "points": 12,
        "holder": {
            "citizen_id": "001072830128", "legacy_id_number": None, "full_name": "PHẠM ĐỨC CƯỜNG",
            "date_of_birth": D(1972, 4, 7), "birth_year": None, "sex": "male", "nationality": "VN",
            "province_code": "01", "commune_code": None, "residence_detail": "Số 103 Tràng Tiền, Hà Nội",
        },
        "classes": {
            "A1": (D(2002, 4, 24), D(2002, 6, 2), None, []),  # Không thời hạn: no expiry
            "D": (D(2011, 6, 23), D(2024, 12, 24), D(2029, 12, 24), []),
        },
        "cards": {"729765072627": ("valid", D(2024, 12, 24))},
    }
    # `B1 số tự động` is B1TD; a year-only row of the same holder agrees with the full date, which is kept.
    lan = licence(engine, "013989790985")
    assert lan["classes"]["B1TD"] == (D(2019, 3, 1), D(2019, 3, 14), D(2041, 6, 18), [])
    assert (lan["holder"]["date_of_birth"], lan["holder"]["birth_year"]) == (D(1986, 6, 18), None)
    # `B1 TĐ` too; points 0 kept; NU is female.
    hang = licence(engine, "019811830529")
    assert (sorted(hang["classes"]), hang["points"], hang["holder"]["sex"]) == (["A1", "B1TD"], 0, "female")
    # A holder known by year of birth only: kept as birth_year, date NULL.
    nam = licence(engine, "019000000011")
    assert (nam["holder"]["date_of_birth"], nam["holder"]["birth_year"]) == (None, 1960)
    assert summary.year_only_birth_dates == 1
    # CMND without CCCD: legacy_id_number, citizen_id NULL.
    thao = licence(engine, "019957409249")["holder"]
    assert (thao["citizen_id"], thao["legacy_id_number"], thao["full_name"]) == (None, "192364717", "PHẠM KIM THẢO")
    assert summary.cmnd_only_people == 1
    # Statuses; spaced and dotted numbers grouped; lower-case doubled-space and NFD names normalised.
    quan = licence(engine, "012601030205")
    assert (quan["status"], sorted(quan["classes"])) == ("revoked", ["A1", "D"])
    assert licence(engine, "011131179306")["status"] == "confiscated"
    assert sorted(licence(engine, "014581063717")["classes"]) == ["A1", "B2"]
    assert licence(engine, "015880518165")["holder"]["full_name"] == "LÝ THỊ PHƯƠNG"
    dung = licence(engine, "016076188172")["holder"]["full_name"]
    assert dung == "HỒ HỒNG DUNG" and unicodedata.is_normalized("NFC", dung)
    # A class row far from its licence's other rows joins them.
    assert sorted(licence(engine, "018012378464")["classes"]) == ["A1", "C", "D"]

    # Rejected rows, each with every reason, in the report next to the file.
    assert summary.reject_report == str(tmp_path / "export.rejects.csv")
    rejected = {int(r["line"]): r for r in report(tmp_path / "export.rejects.csv")}
    assert sorted(rejected) == [17, 60, 61]
    assert rejected[17]["reasons"] == "issued_before_passed"  # the sample's own dirty row
    assert sorted(rejected[60]["reasons"].split(";")) == ["bad_citizen_id", "bad_issue_date", "conflicting_person"]
    assert rejected[60]["licence_number"] == "012601030205"
    assert "ĐỖ THANH TÂM" in rejected[60]["details"] and "31/02/2010" in rejected[60]["details"]
    assert rejected[61]["reasons"] == "citizen_id_holds_other_licence"
    assert "001072830128 already holds licence 013954604468" in rejected[61]["details"]
    assert licence(engine, "019000000022") is None
    assert licence(engine, "010211986099")["classes"].keys() == {"A1"}

    assert (summary.rows_read, summary.rows_imported, summary.rows_rejected, summary.rows_held) == (61, 58, 3, 0)
    assert summary.rejected_by_reason == {
        "issued_before_passed": 1, "bad_citizen_id": 1, "bad_issue_date": 1, "conflicting_person": 1,
        "citizen_id_holds_other_licence": 1,
    }
    assert (summary.licences_created, summary.licences_updated, summary.licences_unchanged) == (41, 0, 0)
    assert (summary.classes_created, summary.classes_updated, summary.classes_unchanged) == (58, 0, 0)
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(models.Licence)) == 41
        assert conn.scalar(sa.select(sa.func.count()).select_from(models.Person)) == 41
        assert conn.scalar(sa.select(sa.func.count()).select_from(models.LicenceClass)) == 58
    assert history(engine, "013954604468") == []  # history records changes to what was on record
    assert foreign_key_violations(engine) == []


def test_importing_the_same_file_again_changes_nothing(register, export):
    import_legacy(export, register.engine)
    before = snapshot(register.engine)
    again = import_legacy(export, register.engine)
    assert snapshot(register.engine) == before
    assert (again.licences_created, again.licences_updated, again.licences_unchanged) == (0, 0, 41)
    assert (again.classes_created, again.classes_updated, again.classes_unchanged) == (0, 0, 58)
    # The same rows are rejected for the same reasons; the claimed citizen ID is now held in the register.
    assert again.rejected_by_reason["citizen_id_holds_other_licence"] == 1 and again.rows_rejected == 3


def test_a_newer_export_updates_the_changed_licence_and_records_the_change(register, sample, tmp_path):
    import_legacy(sample, register.engine)
    before = snapshot(register.engine)
    newer = changed_copy(sample, tmp_path / "newer.csv", "013954604468",
                         TRANG_THAI="Tạm giữ", DIEM="6", SO_PHOI="729765072699")
    rows = newer.read_text(encoding="utf-8-sig").replace("24/12/2024,24/12/2029", "24/12/2024,24/12/2030")
    newer.write_text(rows, encoding="utf-8-sig", newline="")

    summary = import_legacy(newer, register.engine, source="hanoi-2026-12")

    assert (summary.licences_created, summary.licences_updated, summary.licences_unchanged) == (0, 1, 39)
    assert (summary.classes_created, summary.classes_updated, summary.classes_unchanged) == (0, 1, 55)
    stored = licence(register.engine, "013954604468")
    assert (stored["status"], stored["points"]) == ("confiscated", 6)
    assert stored["classes"]["D"][2] == D(2030, 12, 24)
    # The old card is replaced, never deleted; the new one is valid.
    assert stored["cards"] == {
        "729765072627": ("replaced", D(2024, 12, 24)), "729765072699": ("valid", D(2024, 12, 24)),
    }
    assert history(register.engine, "013954604468") == [{
        "source": "hanoi-2026-12", "action": "updated", "lines": [18, 19],
        "licence": {"status": ["valid", "confiscated"], "points": [12, 6]},
        "classes_changed": {"D": {"valid_until": ["2029-12-24", "2030-12-24"]}},
        "card": {"replaced": ["729765072627"], "new": "729765072699"},
    }]
    # Nothing else moved.
    after = snapshot(register.engine)
    for table in ("people",):
        assert after[table] == before[table]
    assert len(after["licence_history"]) == len(before["licence_history"]) + 1


def test_an_open_application_keeps_its_licence_from_being_overwritten(register, sample, tmp_path):
    import_legacy(sample, register.engine)
    app_id = add_application(register.engine, "013954604468", "001072830128", "processing")
    newer = changed_copy(sample, tmp_path / "newer.csv", "013954604468", TRANG_THAI="Thu hồi")
    before = snapshot(register.engine)

    held = import_legacy(newer, register.engine)

    assert snapshot(register.engine) == before
    assert (held.licences_updated, held.licences_held, held.rows_held) == (0, 1, 2)
    assert held.held_licences == ["013954604468"]
    assert held.rows_rejected == 1  # the sample's own dirty row only
    held_lines = [r for r in report(tmp_path / "newer.rejects.csv") if r["reasons"] == "open_application"]
    assert [(r["line"], r["licence_number"]) for r in held_lines] == [("18", "013954604468"), ("19", "013954604468")]

    set_application_status(register.engine, app_id, "withdrawn")  # final (R-ELIG-5): no longer open
    released = import_legacy(newer, register.engine)
    assert (released.licences_updated, released.licences_held) == (1, 0)
    assert licence(register.engine, "013954604468")["status"] == "revoked"


def test_a_licence_renewed_by_the_service_since_the_export_is_kept(register, sample, tmp_path):
    import_legacy(sample, register.engine)
    with register.engine.begin() as conn:
        conn.execute(sa.update(models.Card).where(models.Card.licence_number == "013954604468")
                     .values(status="replaced"))
        conn.execute(sa.insert(models.Card).values(serial="SVC000000001", licence_number="013954604468",
                                                   issued_on=D(2026, 11, 20), status="valid", application_id="app-1"))
    before = snapshot(register.engine)
    summary = import_legacy(changed_copy(sample, tmp_path / "newer.csv", "013954604468", DIEM="3"), register.engine)
    assert (summary.licences_kept_renewed, summary.licences_updated) == (1, 0)
    assert snapshot(register.engine) == before


def test_dry_run_reports_everything_and_writes_nothing(register, export, tmp_path):
    summary = import_legacy(export, register.engine, dry_run=True)
    assert snapshot(register.engine) == {t: [] for t in TABLES}
    assert summary.dry_run
    assert (summary.licences_created, summary.classes_created, summary.rows_rejected) == (41, 58, 3)
    # A dry run claims citizen IDs like the real one does, so the conflict is found without writing.
    assert summary.rejected_by_reason["citizen_id_holds_other_licence"] == 1
    assert len(report(tmp_path / "export.rejects.csv")) == 3


def test_dry_run_of_a_newer_export_reports_the_update_without_making_it(register, sample, tmp_path):
    import_legacy(sample, register.engine)
    before = snapshot(register.engine)
    newer = changed_copy(sample, tmp_path / "newer.csv", "013954604468", DIEM="6")
    summary = import_legacy(newer, register.engine, dry_run=True)
    assert (summary.licences_updated, summary.licences_unchanged) == (1, 39)
    assert snapshot(register.engine) == before


def test_a_wrong_header_stops_the_import_and_writes_nothing(register, tmp_path):
    path = write_export(tmp_path / "no-class.csv", [row()], [c for c in COLUMNS if c != "HANG"])
    with pytest.raises(MalformedFileError, match="missing column.*HANG"):
        import_legacy(path, register.engine)
    assert snapshot(register.engine) == {t: [] for t in TABLES}
    assert not (tmp_path / "no-class.rejects.csv").exists()


def test_a_file_that_turns_out_not_to_be_utf8_stops_the_import_and_writes_nothing(register, sample, tmp_path):
    bad_tail = unicodedata.normalize("NFD", "019000000099,1,TRẦN VĂN NĂM\r\n").encode("cp1258", errors="replace")
    path = tmp_path / "cp1258.csv"
    path.write_bytes(sample.read_bytes() + bad_tail)
    with pytest.raises(MalformedFileError, match="not UTF-8 \\(line 59"):
        import_legacy(path, register.engine)
    assert snapshot(register.engine) == {t: [] for t in TABLES}
    assert not (tmp_path / "cp1258.rejects.csv").exists()


def test_reading_in_a_child_process_gives_the_same_register(sqlite_register, export, tmp_path):
    import_legacy(export, sqlite_register.engine, parallel=True, reject_report=tmp_path / "r.csv")
    parallel = snapshot(sqlite_register.engine)
    assert len(parallel["licences"]) == 41
    again = import_legacy(export, sqlite_register.engine, parallel=False, reject_report=tmp_path / "r2.csv")
    assert again.licences_unchanged == 41 and snapshot(sqlite_register.engine) == parallel
    assert report(tmp_path / "r.csv") == report(tmp_path / "r2.csv")


def test_small_batches_and_commits_give_the_same_register(sqlite_register, register, export, tmp_path):
    # Claims across batches and commits (a citizen ID taken in an earlier batch) work alike.
    import_legacy(export, sqlite_register.engine, reject_report=tmp_path / "a.csv")
    import_legacy(export, register.engine, batch_size=3, commit_seconds=0.0, reject_report=tmp_path / "b.csv")
    assert _without_ids(snapshot(register.engine)) == _without_ids(snapshot(sqlite_register.engine))
    assert sorted(report(tmp_path / "a.csv"), key=lambda r: r["line"]) == \
        sorted(report(tmp_path / "b.csv"), key=lambda r: r["line"])


def test_the_import_commits_once_every_row_is_read_before_the_last_licences_set_aside(
        sqlite_register, tmp_path, monkeypatch):
    # Commits an hour apart: the only one before the last is at the first batch that says every row
    # is read, so the background checkpoint copies the log while the rest is written.
    export = write_export(tmp_path / "e.csv", [
        row(SO_GPLX="010000000001", SO_CCCD="001060000001", HANG="A1", SO_PHOI="S1"),
        row(SO_GPLX="010000000002", SO_CCCD="001060000002", SO_PHOI="S2"),
        row(SO_GPLX="010000000003", SO_CCCD="001060000003", SO_PHOI="S3"),
        row(SO_GPLX="010000000004", SO_CCCD="001060000004", HANG="A1", SO_PHOI="S4"),
        row(SO_GPLX="010000000001", SO_CCCD="001060000001", HANG="B2", NGAY_HET_HAN="20/04/1995", SO_PHOI="S1"),
        row(SO_GPLX="010000000004", SO_CCCD="001060000004", HANG="B2", NGAY_HET_HAN="20/04/1995", SO_PHOI="S4"),
    ])
    seen, laid_out = [], []
    monkeypatch.setattr(importer._BackgroundCheckpoints, "request", lambda self: seen.append("committed"))
    insert_new_rows, apply = register_module.RegisterWriter.insert_new_rows, register_module.RegisterWriter.apply

    def inserting(self, rows):
        laid_out.extend(rows[1][::5])  # the licences' numbers (five values a licence)
        return insert_new_rows(self, rows)

    def applying(self, records, suspects):  # every batch: its laid-out licences, then its records
        seen.append(sorted(laid_out + [r[0] for r in records]))
        laid_out.clear()
        return apply(self, records, suspects)

    monkeypatch.setattr(register_module.RegisterWriter, "insert_new_rows", inserting)
    monkeypatch.setattr(register_module.RegisterWriter, "apply", applying)
    summary = import_legacy(export, sqlite_register.engine, parallel=False, batch_size=1, commit_seconds=3600,
                            reject_report=tmp_path / "r.csv")
    assert summary.licences_created == 4
    # ...002 as it is read; at the end of the file ...003 with the first licence set aside (every
    # row read: committed), then the second set aside, then the empty last batch.
    assert seen == [["010000000002"], ["010000000001", "010000000003"], "committed", ["010000000004"], []]


def _without_ids(snap):
    """Rows comparable across databases and runs: surrogate ids and timestamps left out, JSON
    parsed (PostgreSQL returns it parsed, SQLite as text)."""
    with_ids = {"people": [0], "licences": [1, 7], "licence_classes": [0], "cards": [], "licence_history": [0, 2]}

    def plain(v):
        return str(json.loads(v) if isinstance(v, str) and v[:1] in "{[" else v)

    return {
        t: sorted(tuple(plain(v) for i, v in enumerate(r) if i not in with_ids[t]) for r in rows)
        for t, rows in snap.items()
    }


def test_the_importing_connection_goes_back_to_the_pool_as_it_came_and_the_log_is_checkpointed(
        sqlite_register, export, tmp_path):
    # The import tunes its SQLite connection (page cache; write-ahead-log checkpoints deferred to the
    # end); that connection returns to the pool the application shares, so both must be restored.
    engine = sqlite_register.engine
    with engine.connect() as conn:
        before = (conn.exec_driver_sql("PRAGMA cache_size").scalar(),
                  conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar())
    import_legacy(export, engine, batch_size=3, commit_seconds=0.0, reject_report=tmp_path / "r.csv")
    assert engine.pool.checkedout() == 0 and engine.pool.checkedin() == 1  # the same connection, back
    with engine.connect() as conn:
        after = (conn.exec_driver_sql("PRAGMA cache_size").scalar(),
                 conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar())
        conn.rollback()
        # (busy, frames in the log, frames checkpointed): nothing left to copy into the database.
        _, logged, checkpointed = conn.connection.dbapi_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert after == before
    assert logged == checkpointed


@pytest.fixture(scope="module")
def generated_export(tmp_path_factory):
    """1,200 rows from the benchmark's generator (every quirk and bad-row kind, several hundred
    licences), then copies of its first two rows under new licence numbers: one claims the citizen
    ID of an earlier licence, one its card serial."""
    path = tmp_path_factory.mktemp("generated") / "generated.csv"
    subprocess.run([sys.executable, str(Path(__file__).resolve().parents[3] / "bench" / "gen_legacy_export.py"),
                    "--rows", "1200", "--seed", "7", "--out", str(path)], check=True, capture_output=True)
    first, second = sample_rows(path)[:2]
    with_rows(path, path, [
        {**first, "SO_GPLX": "019999999901", "SO_PHOI": "999999999901"},
        {**second, "SO_GPLX": "019999999902", "SO_CCCD": second["SO_CCCD"][:6] + "999902", "SO_CMND": ""},
    ])
    return path


def test_rows_inserted_a_hundred_to_a_statement_are_the_rows_inserted_one_by_one(
        register, generated_export, tmp_path, monkeypatch):
    grouped = import_legacy(generated_export, register.engine, reject_report=tmp_path / "a.csv")
    assert grouped.licences_created > 3 * register_module._ROWS_PER_STATEMENT  # whole statements and a rest
    monkeypatch.setattr(register_module, "_ROWS_PER_STATEMENT", 1)
    (tmp_path / "one").mkdir()
    url = f"sqlite:///{tmp_path / 'one' / 'register.db'}"
    upgrade(url)
    other = make_engine(url)
    one_by_one = import_legacy(generated_export, other, reject_report=tmp_path / "b.csv")
    assert one_by_one.licences_created == grouped.licences_created
    assert _without_ids(snapshot(register.engine)) == _without_ids(snapshot(other))
    other.dispose()
    assert (grouped.licences_created, grouped.classes_created, grouped.rows_rejected) == \
        (one_by_one.licences_created, one_by_one.classes_created, one_by_one.rows_rejected)
    assert report(tmp_path / "a.csv") == report(tmp_path / "b.csv")


def test_background_checkpoints_copy_what_was_committed_while_the_import_goes_on(sqlite_register):
    engine = sqlite_register.engine
    done = threading.Event()
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
        conn.commit()
        conn.exec_driver_sql("CREATE TABLE scratch (x)")
        conn.exec_driver_sql("INSERT INTO scratch VALUES (1)")
        conn.commit()
        checkpoints = importer._BackgroundCheckpoints(engine.url.database, on_done=done.set)
        try:
            checkpoints.request()
            assert done.wait(timeout=30)
        finally:
            checkpoints.close()
        # Its own connection did the copying: nothing is left in the log for this one to copy.
        _, logged, checkpointed = conn.connection.dbapi_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert logged > 0 and checkpointed == logged
        conn.exec_driver_sql("PRAGMA wal_autocheckpoint=1000")
        conn.commit()


def test_closing_the_background_checkpoints_ends_their_thread_and_connection(sqlite_register):
    checkpoints = importer._BackgroundCheckpoints(sqlite_register.engine.url.database)
    checkpoints.close()
    assert not checkpoints._thread.is_alive()


@pytest.mark.parametrize("parallel", [False, True])
def test_licences_handed_over_as_rows_give_the_register_the_records_give(
        sqlite_register, generated_export, tmp_path, monkeypatch, parallel):
    # Into an empty SQLite register the reader hands unflagged licences over as the rows they
    # become (pipeline.RunClaims.split); the same import with records only must write the same register.
    calls = []
    insert_new_rows = register_module.RegisterWriter.insert_new_rows
    monkeypatch.setattr(register_module.RegisterWriter, "insert_new_rows",
                        lambda self, rows: calls.append(rows[4][0]) or insert_new_rows(self, rows))
    as_rows = import_legacy(generated_export, sqlite_register.engine, parallel=parallel, batch_size=200,
                            reject_report=tmp_path / "a.csv")
    assert 0 < sum(calls) <= as_rows.licences_created
    # The flagged licences still went through the checks.
    assert as_rows.rejected_by_reason["citizen_id_holds_other_licence"] >= 1
    assert as_rows.rejected_by_reason["card_serial_of_other_licence"] >= 1
    init = register_module.RegisterWriter.__init__

    def records_only(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.takes_rows = False

    monkeypatch.setattr(register_module.RegisterWriter, "__init__", records_only)
    (tmp_path / "records").mkdir()
    url = f"sqlite:///{tmp_path / 'records' / 'register.db'}"
    upgrade(url)
    other = make_engine(url)
    calls.clear()
    as_records = import_legacy(generated_export, other, parallel=parallel, batch_size=200,
                               reject_report=tmp_path / "b.csv")
    assert calls == []
    assert _without_ids(snapshot(sqlite_register.engine)) == _without_ids(snapshot(other))
    assert {k: v for k, v in vars(as_rows).items() if k not in ("seconds", "reject_report")} == \
        {k: v for k, v in vars(as_records).items() if k not in ("seconds", "reject_report")}
    assert report(tmp_path / "a.csv") == report(tmp_path / "b.csv")
    assert foreign_key_violations(sqlite_register.engine) == []
    other.dispose()


def _orphan_class(rows):
    people, licences, classes, cards, counts = rows
    return people, licences, ["019999999999", *classes[1:]], cards, counts


def _shared_citizen_id(rows):
    # The batch's first two people (nine values each, the citizen ID first) given one citizen ID.
    people = list(rows[0])
    people[0] = people[9] = "001099999999"
    return (people, *rows[1:])


@pytest.mark.parametrize(("broken", "error"), [(_orphan_class, "FOREIGN KEY"), (_shared_citizen_id, "UNIQUE")])
def test_rows_handed_over_that_break_a_constraint_fail_the_import_and_write_nothing(
        sqlite_register, generated_export, tmp_path, monkeypatch, broken, error):
    # insert_new_rows runs its many-row statements as INSERT OR FAIL with foreign keys deferred to
    # the commit (no statement journal); a row breaking either kind of constraint must still stop
    # the import with nothing of its transaction kept.
    insert_new_rows = register_module.RegisterWriter.insert_new_rows
    calls = []

    def breaking_the_first_batch(self, rows):
        calls.append(rows)
        return insert_new_rows(self, broken(rows) if len(calls) == 1 else rows)

    monkeypatch.setattr(register_module.RegisterWriter, "insert_new_rows", breaking_the_first_batch)
    with pytest.raises(sa.exc.IntegrityError, match=error):
        import_legacy(generated_export, sqlite_register.engine, parallel=False, batch_size=200,
                      commit_seconds=3600, reject_report=tmp_path / "r.csv")
    assert calls
    assert snapshot(sqlite_register.engine) == {t: [] for t in TABLES}
    assert not (tmp_path / "r.csv").exists()


def test_with_the_scan_shared_by_two_processes_the_register_is_the_same(
        sqlite_register, generated_export, tmp_path, monkeypatch):
    monkeypatch.setattr(scan, "SPLIT_FROM_BYTES", 0)
    assert scan.split_point(generated_export) is not None
    shared = import_legacy(generated_export, sqlite_register.engine, parallel=True, reject_report=tmp_path / "a.csv")
    (tmp_path / "one").mkdir()
    url = f"sqlite:///{tmp_path / 'one' / 'register.db'}"
    upgrade(url)
    other = make_engine(url)
    alone = import_legacy(generated_export, other, parallel=False, reject_report=tmp_path / "b.csv")
    assert _without_ids(snapshot(sqlite_register.engine)) == _without_ids(snapshot(other))
    assert {k: v for k, v in vars(shared).items() if k not in ("seconds", "reject_report")} == \
        {k: v for k, v in vars(alone).items() if k not in ("seconds", "reject_report")}
    assert sorted(report(tmp_path / "a.csv"), key=lambda r: int(r["line"])) == \
        sorted(report(tmp_path / "b.csv"), key=lambda r: int(r["line"]))
    other.dispose()


def test_a_second_half_not_utf8_stops_the_import_and_writes_nothing(register, sample, tmp_path, monkeypatch):
    monkeypatch.setattr(scan, "SPLIT_FROM_BYTES", 0)
    path = tmp_path / "late.csv"
    path.write_bytes(sample.read_bytes() + b"019000000099,1,TR\xc2N\r\n")
    with pytest.raises(MalformedFileError, match="not UTF-8 \\(line 59"):
        import_legacy(path, register.engine, parallel=True)
    assert snapshot(register.engine) == {t: [] for t in TABLES}
    assert not (tmp_path / "late.rejects.csv").exists()
