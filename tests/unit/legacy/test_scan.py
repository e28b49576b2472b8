"""Pass 1: a malformed file is refused before anything happens; scattered licences are found."""

from __future__ import annotations

import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from licence_service.legacy import scan
from licence_service.legacy.bloom import BloomFilter
from licence_service.legacy.rows import COLUMNS, MalformedFileError
from licence_service.legacy.scan import scan_export
from tests.unit.legacy.exports import export_text, row, write_export


def test_adjacent_rows_of_a_licence_are_not_stragglers(tmp_path):
    path = write_export(tmp_path / "e.csv", [
        row(SO_GPLX="010000000001", HANG="A1"), row(SO_GPLX="01 0000 000001", HANG="B2"),
        row(SO_GPLX="010000000002"),
    ])
    result = scan_export(path)
    assert result.stragglers == frozenset()
    assert result.data_lines == 3
    assert result.header == list(COLUMNS)


def test_a_licence_whose_rows_are_apart_is_a_straggler_whatever_its_spelling(tmp_path):
    path = write_export(tmp_path / "e.csv", [
        row(SO_GPLX="010000000001", HANG="A1"), row(SO_GPLX="010000000002"),
        row(SO_GPLX="01.0000.000001", HANG="B2"),
    ])
    assert scan_export(path).stragglers == frozenset({"010000000001"})


def test_rows_without_a_readable_number_neither_start_nor_end_a_run(tmp_path):
    path = write_export(tmp_path / "e.csv", [
        row(SO_GPLX="010000000001", HANG="A1"), row(SO_GPLX="not a number"), row(SO_GPLX="010000000001", HANG="B2"),
    ])
    assert scan_export(path).stragglers == frozenset()


def test_a_quoted_first_field_is_read_as_the_csv_module_reads_it(tmp_path):
    text = export_text([row(SO_GPLX="010000000001"), row(SO_GPLX="010000000002")])
    text += '"01 0000 000001",' + ",".join("x" * 1 for _ in COLUMNS[1:]) + "\r\n"
    path = tmp_path / "e.csv"
    path.write_text(text, encoding="utf-8")
    assert scan_export(path).stragglers == frozenset({"010000000001"})


def test_licence_number_in_another_column_is_found_by_a_real_csv_parse(tmp_path):
    header = [*COLUMNS[1:], "SO_GPLX"]
    # A residence with a quoted line break comes before the licence number.
    rows = [row(SO_GPLX="010000000001", NOI_CU_TRU="Số 1\nHà Nội"), row(SO_GPLX="010000000002"),
            row(SO_GPLX="010000000001", HANG="B2")]
    path = write_export(tmp_path / "e.csv", rows, header)
    result = scan_export(path)
    assert result.stragglers == frozenset({"010000000001"})
    assert result.data_lines == 4  # physical lines: the quoted break adds one


def test_too_many_stragglers_means_stage_everything(tmp_path):
    rows = [row(SO_GPLX=f"0100000000{i:02d}") for i in range(5)] * 2
    path = write_export(tmp_path / "e.csv", rows)
    assert scan_export(path, straggler_limit=3).stragglers is None
    assert scan_export(path, straggler_limit=10).stragglers == frozenset(r["SO_GPLX"] for r in rows)


def test_not_utf8_late_in_the_file_is_refused_with_its_line(tmp_path):
    good = export_text([row(SO_GPLX=f"0100000000{i:02d}") for i in range(20)]).encode("utf-8")
    # Windows-1258, the legacy Vietnamese code page (letters decomposed, as it spells them).
    line = export_text([row(HO_TEN="TRẦN VĂN NĂM")]).split("\r\n", 1)[1]
    bad = unicodedata.normalize("NFD", line).encode("cp1258", errors="replace")
    path = tmp_path / "e.csv"
    path.write_bytes(good + bad)
    with pytest.raises(MalformedFileError, match=r"not UTF-8 \(line 22"):
        scan_export(path)


def test_a_latin1_header_is_refused(tmp_path):
    path = tmp_path / "e.csv"
    path.write_bytes("SỐ_GPLX".encode("utf-16"))
    with pytest.raises(MalformedFileError, match="not UTF-8"):
        scan_export(path)


def test_a_missing_column_is_refused(tmp_path):
    path = write_export(tmp_path / "e.csv", [row()], [c for c in COLUMNS if c != "DIEM"])
    with pytest.raises(MalformedFileError, match="DIEM"):
        scan_export(path)


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", b"\r\n"])
def test_an_empty_file_is_refused(tmp_path, content):
    path = tmp_path / "e.csv"
    path.write_bytes(content)
    with pytest.raises(MalformedFileError, match="empty"):
        scan_export(path)


def test_progress_is_reported_up_to_the_whole_size(tmp_path):
    path = write_export(tmp_path / "e.csv", [row()])
    seen = []
    scan_export(path, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (path.stat().st_size, path.stat().st_size)


def test_a_file_scanned_in_two_parts_finds_every_straggler(tmp_path, monkeypatch):
    # The importing process scans the first half (scan_export with end), the reader's the second
    # (scan_part), and runs_in finds the licences with a run in each.
    monkeypatch.setattr(scan, "SPLIT_FROM_BYTES", 0)
    rows = [row(SO_GPLX=f"0100000000{i:02d}", HANG="A1") for i in range(30)]
    rows.insert(5, row(SO_GPLX="010000000003", HANG="B2"))  # apart within the first part
    rows.append(row(SO_GPLX="01.0000.000029", HANG="B2"))  # next to its other row: not a straggler
    rows.append(row(SO_GPLX="010000000025", HANG="C"))  # apart within the second part
    rows.append(row(SO_GPLX="010000000001", HANG="C"))  # a run in each part
    path = write_export(tmp_path / "e.csv", rows)
    end = scan.split_point(path)
    assert end is not None and 0 < end < path.stat().st_size
    first, second = scan_export(path, end=end), scan.scan_part(path, end)
    across = scan.runs_in(path, end, BloomFilter.from_bytes(second.runs))
    whole = scan_export(path)
    assert whole.stragglers == frozenset({"010000000003", "010000000025", "010000000001"})
    assert first.stragglers | second.stragglers | across == whole.stragglers
    assert first.stragglers == frozenset({"010000000003"}) and second.stragglers == frozenset({"010000000025"})
    assert across == frozenset({"010000000001"})
    assert first.data_lines + second.lines == whole.data_lines == len(rows)


def test_runs_in_gives_up_above_its_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(scan, "SPLIT_FROM_BYTES", 0)
    # Sorted by class: every licence has a run in each half.
    rows = [row(SO_GPLX=f"0100000000{i:02d}", HANG=code) for code in ("A1", "B2") for i in range(20)]
    path = write_export(tmp_path / "e.csv", rows)
    end = scan.split_point(path)
    runs = BloomFilter.from_bytes(scan.scan_part(path, end).runs)
    assert len(scan.runs_in(path, end, runs)) == 20
    assert scan.runs_in(path, end, runs, limit=19) is None


def test_the_parts_of_a_split_scan_leave_utf8_to_check_utf8(tmp_path):
    # Scanned in parts, the licence numbers are read without decoding each line: check_utf8 refuses
    # the file, with the line counted in the whole file.
    good = export_text([row(SO_GPLX=f"0100000000{i:02d}") for i in range(20)]).encode("utf-8")
    path = tmp_path / "e.csv"
    path.write_bytes(good + b"019000000099,1,TR\xc2N\r\n" + b"\xff19000000100,1,X\r\n")  # not UTF-8
    header_and_ten = len(b"\r\n".join(good.split(b"\r\n")[:11])) + 2
    part = scan.scan_part(path, header_and_ten)
    # Read, not refused: the line whose number is not UTF-8 has no licence number, and no run.
    assert part.lines == 12 and part.stragglers == frozenset()
    assert scan_export(path, end=header_and_ten).data_lines == 10
    with pytest.raises(MalformedFileError, match=r"not UTF-8 \(line 22: invalid continuation byte"):
        scan.check_utf8(path)
    path.write_bytes(good)
    scan.check_utf8(path)


_PART_RUNS = (
    "import sys; from pathlib import Path; from licence_service.legacy import scan; "
    "sys.stdout.buffer.write(scan.scan_part(Path(sys.argv[1]), int(sys.argv[2])).runs)"
)


def test_the_scan_s_runs_are_the_same_whatever_the_process_s_hash_seed(tmp_path):
    # A licence the scan takes for a straggler, rightly or by a false "seen", is applied last: that
    # must depend on the file alone, not on the salt of the process's str hash.
    path = write_export(tmp_path / "e.csv", [row(SO_GPLX=f"0100000{i:05d}") for i in range(300)])
    start = path.read_bytes().index(b"\n") + 1
    project = Path(__file__).resolve().parents[3]
    runs = {
        subprocess.run(
            [sys.executable, "-c", _PART_RUNS, str(path), str(start)], capture_output=True, check=True,
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(project)},
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(runs) == 1 and any(runs.pop())


def test_only_a_large_file_with_the_licence_number_first_is_split(tmp_path, monkeypatch):
    path = write_export(tmp_path / "e.csv", [row(SO_GPLX=f"0100000000{i:02d}") for i in range(50)])
    assert scan.split_point(path) is None  # small
    monkeypatch.setattr(scan, "SPLIT_FROM_BYTES", 0)
    at = scan.split_point(path)
    assert at is not None and path.read_bytes()[at - 1:at] == b"\n"
    other = write_export(tmp_path / "o.csv", [row()], [*COLUMNS[1:], "SO_GPLX"])
    assert scan.split_point(other) is None
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"SO_GPLX,HO_TEN\r\n" * 1000)
    assert scan.split_point(bad) is None  # the whole scan refuses it


def test_bloom_filter_bits_make_the_same_filter(tmp_path):
    bloom = BloomFilter(10)
    for key in ("a", "b", "c"):
        bloom.add(key)
    again = BloomFilter.from_bytes(bloom.to_bytes())
    assert all(k in again for k in ("a", "b", "c")) and again.to_bytes() == bloom.to_bytes()
    with pytest.raises(ValueError):
        BloomFilter.from_bytes(b"\x00" * 3)
