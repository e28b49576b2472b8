"""The reading side: rows grouped into licences however they are spread over the file."""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest

from licence_service.legacy import pipeline, scan
from licence_service.legacy.grouping import build_licence, single_licence, view
from licence_service.legacy.pipeline import ReaderFailedError, RunClaims, reader_events, run_reader, single_row
from licence_service.legacy.rows import ExportReader, MalformedFileError, RowParser
from tests.unit.legacy.exports import row, write_export


def licences(path, **kwargs):
    records, rejects, done = [], [], None
    for event in run_reader(path, **{"parallel": False, **kwargs}):
        if event[0] == "batch":
            records.extend(view(r) for r in event[1].records)
            rejects.extend(event[1].rejects)
        elif event[0] == "done":
            done = event
    return records, rejects, done


def scattered_rows():
    # Licence ...001 has rows at the start, the middle and the end; ...003 has one bad row.
    return [
        row(SO_GPLX="010000000001", HANG="A1", SO_CCCD="001060000001"),
        row(SO_GPLX="010000000002", HANG="A1", SO_CCCD="001060000002"),
        row(SO_GPLX="01 0000 000001", HANG="B2", SO_CCCD="001060000001", NGAY_HET_HAN="20/04/1995"),
        row(SO_GPLX="010000000003", HANG="Z9", SO_CCCD="001060000003"),
        row(SO_GPLX="bad", HANG="A1"),
        row(SO_GPLX="010000000002", HANG="A2", SO_CCCD="001060000002"),
        row(SO_GPLX="01.0000.000001", HANG="C", SO_CCCD="001060000001", NGAY_HET_HAN="20/04/1990"),
    ]


def check_scattered(records, rejects, done):
    by_number = {r.number: r for r in records}
    assert sorted(by_number) == ["010000000001", "010000000002"]
    assert [c.code for c in by_number["010000000001"].classes] == ["A1", "B2", "C"]
    assert by_number["010000000001"].lines == (2, 4, 8)
    assert [c.code for c in by_number["010000000002"].classes] == ["A1", "A2"]
    assert sorted((r.line, r.licence_number, r.reasons[0][0]) for r in rejects) == [
        (5, "010000000003", "unknown_class"), (6, "bad", "bad_licence_number"),
    ]
    assert done[1] == 7  # rows read


def test_rows_of_a_licence_spread_over_the_file_become_one_licence(tmp_path):
    records, rejects, done = licences(write_export(tmp_path / "e.csv", scattered_rows()))
    check_scattered(records, rejects, done)
    assert done[2] == 5  # only the two scattered licences' rows went through staging


def test_with_too_many_stragglers_every_row_is_staged_and_the_result_is_the_same(tmp_path, monkeypatch):
    monkeypatch.setattr(scan, "STRAGGLER_LIMIT", 0)
    records, rejects, done = licences(write_export(tmp_path / "e.csv", scattered_rows()))
    check_scattered(records, rejects, done)
    assert done[2] == 6  # every row with a readable number was staged


def test_the_child_process_reader_gives_the_same_licences(tmp_path):
    check_scattered(*licences(write_export(tmp_path / "e.csv", scattered_rows()), parallel=True))


def test_batches_from_the_child_process_equal_the_reader_s_own_field_for_field(tmp_path):
    # They cross the process boundary as marshal bytes (pipeline._packed): same tuples, same Rejects.
    path = write_export(tmp_path / "e.csv", scattered_rows())
    own = [e[1] for e in run_reader(path, parallel=False, batch_size=1) if e[0] == "batch"]
    crossed = [e[1] for e in run_reader(path, parallel=True, batch_size=1) if e[0] == "batch"]
    assert crossed == own and len(own) > 1
    assert all(type(r).__name__ == "Reject" for b in crossed for r in b.rejects)


def test_batches_are_cut_at_the_batch_size_and_ordered_by_licence_number(tmp_path):
    rows = [row(SO_GPLX=f"0100000000{i:02d}", SO_CCCD=f"0010600000{i:02d}") for i in (5, 3, 9, 1, 7)]
    batches = [e[1] for e in reader_events(write_export(tmp_path / "e.csv", rows), batch_size=2) if e[0] == "batch"]
    assert [len(b.records) for b in batches] == [2, 2, 1]
    assert [[r[0][-1] for r in b.records] for b in batches] == [["3", "5"], ["1", "9"], ["7"]]


@pytest.mark.parametrize("parallel", [False, True])
def test_a_malformed_file_raises_before_any_batch(tmp_path, parallel):
    path = tmp_path / "e.csv"
    path.write_bytes(b"SO_GPLX,HO_TEN\r\n010000000001,X\r\n")
    events = run_reader(path, parallel=parallel)
    with pytest.raises(MalformedFileError, match="missing column"):
        next(events)


def test_a_quoted_line_break_keeps_rows_together_and_lines_at_the_record_start(tmp_path):
    rows = [
        row(SO_GPLX="010000000001", HANG="A1", NOI_CU_TRU="Số 1\r\nHàng Bài"),
        row(SO_GPLX="010000000001", HANG="B2", NGAY_HET_HAN="20/04/1995"),
        row(SO_GPLX="010000000002", HANG="Z9"),
    ]
    records, rejects, done = licences(write_export(tmp_path / "e.csv", rows))
    assert [(r.number, r.lines, r.person.residence) for r in records] == [
        ("010000000001", (2, 4), "Số 1 Hàng Bài"),
    ]
    assert [(r.line, r.reasons[0][0]) for r in rejects] == [(5, "unknown_class")]
    assert done[1:] == (3, 0)  # three rows, none set aside


def test_a_file_with_only_a_header_has_nothing_to_import(tmp_path):
    records, rejects, done = licences(write_export(tmp_path / "e.csv", []))
    assert (records, rejects, done[1:]) == ([], [], (0, 0))


@pytest.mark.parametrize("stop_early", [False, True])
def test_the_reader_process_leaves_no_staging_files_behind(tmp_path, stop_early):
    export = write_export(tmp_path / "e.csv", scattered_rows())
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    events = run_reader(export, parallel=True, batch_size=1, workdir=scratch)
    if stop_early:
        next(events)  # scanned; then the caller gives up, with the reader still busy
        events.close()
    else:
        assert [e[0] for e in events][-1] == "done"
    assert list(scratch.iterdir()) == []


def _record(number, citizen_id=None, legacy_id=None, serial=None):
    person = (citizen_id, legacy_id, "TRẦN VĂN NĂM", "1960-03-12", None, "male", "VN", "01", None)
    return (number, (2,), person, "1985-04-20", "valid", 12, serial, ())


def test_run_claims_flag_the_later_claimants_of_each_identifier_across_batches():
    claims = RunClaims()
    first = [_record("010000000001", "001060000001", serial="S1"), _record("010000000002", legacy_id="100000001")]
    assert claims.suspects(first) == []
    second = [
        _record("010000000003", "001060000001"),  # the citizen ID of ...001
        _record("010000000004", "001060000004", "100000001"),  # the CMND of ...002
        _record("010000000005", "001060000005", serial="S1"),  # the card of ...001
        _record("010000000006", "001060000006", serial="S6"),
        # Already suspect by its citizen ID, its card serial is still remembered: ...008 is flagged.
        _record("010000000007", "001060000004", serial="S7"),
        _record("010000000008", "001060000008", serial="S7"),
    ]
    assert claims.suspects(second) == [0, 1, 2, 4, 5]


def test_split_flags_like_suspects_and_lays_the_others_out_as_the_register_s_rows():
    a = ("010000000001", (2, 3), ("001060000001", None, "A", "1960-03-12", None, "male", "VN", "01", "X"),
         "2020-01-02", "valid", 12, "S1",
         (("010000000001", "A1", "2019-01-01", "2019-02-01", None, "[]"),
          ("010000000001", "B2", "2019-03-01", "2020-01-02", "2030-01-02", "[]")))
    flagged = ("010000000002", (4,), ("001060000001", None, "B", None, 1970, "male", "VN", None, None),
               "2020-01-02", "valid", 12, None, (("010000000002", "A1", "2019-01-01", "2019-02-01", None, "[]"),))
    c = ("010000000003", (5,), (None, "100000001", "C", None, 1970, "female", "VN", None, None),
         "2021-05-06", "revoked", 0, None, (("010000000003", "C", "2021-01-01", "2021-05-06", "2026-05-06", "[]"),))
    suspects, (people, licences, classes, cards, counts) = RunClaims().split([a, flagged, c])
    assert suspects == [flagged]  # a's citizen ID
    assert people == [*a[2], *c[2]]
    assert licences == ["010000000001", 1, "2020-01-02", "valid", 12, "010000000003", 2, "2021-05-06", "revoked", 0]
    assert classes == [*a[7][0], *a[7][1], *c[7][0]]
    assert cards == ["S1", "010000000001", "2020-01-02"]  # each card valid: the statement says so
    assert counts == (2, 3, 3, 1, 1)  # licences, classes, rows, year-only holders, CMND-only holders


def test_a_one_row_licence_is_laid_out_from_its_row_as_from_its_record(tmp_path):
    # RunClaims.split takes a licence of one row as its (number, row) pair, without building its
    # record: the same rows, the same flags and the same counts as from the records.
    path = write_export(tmp_path / "e.csv", [
        row(SO_GPLX="010000000001", SO_CCCD="001060000001", SO_PHOI="S1"),
        row(SO_GPLX="010000000002", SO_CCCD="", SO_CMND="100000002", NGAY_SINH="1970", SO_PHOI=""),
        row(SO_GPLX="010000000003", SO_CCCD="001060000003", HANG="A1", SO_PHOI="S3"),
        row(SO_GPLX="010000000003", SO_CCCD="001060000003", HANG="B2", NGAY_HET_HAN="20/04/1995", SO_PHOI="S3"),
        row(SO_GPLX="010000000004", SO_CCCD="001060000001", SO_PHOI="S4"),  # the citizen ID of ...001
        row(SO_GPLX="010000000005", SO_CCCD="001060000005", SO_PHOI="S1"),  # the card of ...001
    ])
    with ExportReader(path) as reader:
        parse = RowParser(reader.header).parse
        parsed = [parse(fields, line) for line, fields in reader]
    assert not any(r.problems for r in parsed)
    alone = [r for r in parsed if r.number != "010000000003"]
    both = [r for r in parsed if r.number == "010000000003"]
    records = sorted([single_licence(r) for r in alone] + [build_licence(both)[0]])
    mixed = sorted([single_row(r) for r in alone] + [build_licence(both)[0]], key=lambda x: x[0])
    flagged, rows = RunClaims().split(mixed)
    assert (flagged, rows) == RunClaims().split(records)
    assert [f[0] for f in flagged] == ["010000000004", "010000000005"]
    assert rows[4] == (3, 4, 4, 1, 1)  # licences, classes, rows, year-only holders, CMND-only holders


def test_batches_in_the_rows_layout_carry_the_same_licences(tmp_path):
    path = write_export(tmp_path / "e.csv", scattered_rows())
    plain = [e[1] for e in run_reader(path, parallel=False, batch_size=1) if e[0] == "batch"]
    rows = [e[1] for e in run_reader(path, parallel=True, batch_size=1, rows_layout=lambda: True) if e[0] == "batch"]
    assert [b.rows for b in plain] == [None] * len(plain)
    claims = RunClaims()  # the same licences flagged and laid out in the same order, from the start
    assert [(b.records, b.rows) for b in rows] == [claims.split(b.records) for b in plain]
    assert [b.records for b in rows] == [[b.records[i] for i in b.suspects] for b in plain]


def test_with_the_scan_shared_by_two_processes_the_licences_are_the_same(tmp_path, monkeypatch):
    # The parent scans the first half while the child scans the second, then parses ahead: licence
    # ...001 has rows in both halves, ...002 twice in the first.
    monkeypatch.setattr(scan, "SPLIT_FROM_BYTES", 0)
    rows = scattered_rows()
    path = write_export(tmp_path / "e.csv", rows)
    assert scan.split_point(path) is not None
    check_scattered(*licences(path, parallel=True))
    records, _, done = licences(path, parallel=True)
    assert done[2] == 5  # the same rows set aside as by one scan


def test_a_spawned_reader_shares_the_scan_too(tmp_path, monkeypatch):
    # (Off Linux, or with other threads running, the child is spawned: it shares no str hash salt
    # with this process, and the scan's filter of its runs must still mean the same here.)
    monkeypatch.setattr(scan, "SPLIT_FROM_BYTES", 0)
    monkeypatch.setattr(pipeline, "_context", lambda: multiprocessing.get_context("spawn"))
    path = write_export(tmp_path / "e.csv", scattered_rows())
    assert scan.split_point(path) is not None
    records, rejects, done = licences(path, parallel=True)
    check_scattered(records, rejects, done)
    assert done[2] == 5  # the same rows set aside as by one scan


def test_a_second_half_that_is_not_utf8_is_refused_with_its_line_in_the_whole_file(tmp_path, monkeypatch):
    monkeypatch.setattr(scan, "SPLIT_FROM_BYTES", 0)
    path = write_export(tmp_path / "e.csv", [row(SO_GPLX=f"0100000000{i:02d}") for i in range(40)])
    path.write_bytes(path.read_bytes() + b"019000000099,1,TR\xc2N\r\n")
    assert scan.split_point(path) is not None
    with pytest.raises(MalformedFileError, match=r"not UTF-8 \(line 42: invalid continuation byte"):
        next(run_reader(path, parallel=True))


@pytest.mark.parametrize("split", [True, False])
def test_a_file_not_utf8_among_the_rows_parsed_ahead_is_refused_with_the_scan_s_message(
        tmp_path, monkeypatch, split):
    # The child parses the first rows before the scan's verdict (pipeline._parse_ahead), and its
    # csv reader meets the bad byte first; the import still stops with the scan's message, which
    # names the line: the importing process reads the child's events only once its scan is done.
    if split:
        monkeypatch.setattr(scan, "SPLIT_FROM_BYTES", 0)
    rows = [row(SO_GPLX=f"0100000000{i:02d}") for i in range(40)]
    path = write_export(tmp_path / "e.csv", rows)
    lines = path.read_bytes().split(b"\r\n")
    lines[3] = lines[3].replace(b",", b",\xc2", 1)
    path.write_bytes(b"\r\n".join(lines))
    assert (scan.split_point(path) is not None) == split
    with pytest.raises(MalformedFileError, match=r"not UTF-8 \(line 4: invalid continuation byte"):
        next(run_reader(path, parallel=True))


def _verdict_after(looks, verdict):
    # The verdict of pipeline._parse_ahead's other process: none for the first ``looks`` looks.
    asked = []

    def awaited(block):
        asked.append(block)
        return verdict if block or len(asked) > looks else None

    return awaited, asked


def test_rows_are_parsed_ahead_until_the_verdict_and_taken_in_file_order(monkeypatch):
    monkeypatch.setattr(pipeline, "_AHEAD_STEP", 10)
    verdict = pipeline.Verdict(True, 100, frozenset())
    parsed = iter(range(100))
    awaited, asked = _verdict_after(2, verdict)
    ahead = []
    assert pipeline._parse_ahead(parsed, ahead, awaited) is verdict
    assert ahead == list(range(30)) and asked == [False, False, False]  # a look every 10 rows
    assert next(parsed) == 30  # the rest, untouched


def test_parsing_ahead_stops_at_its_limit_and_at_the_file_s_end_then_waits(monkeypatch):
    monkeypatch.setattr(pipeline, "_AHEAD_STEP", 10)
    monkeypatch.setattr(pipeline, "_AHEAD_LIMIT", 25)
    verdict = pipeline.Verdict(False, 100, None)
    awaited, asked = _verdict_after(99, verdict)
    ahead = []
    assert pipeline._parse_ahead(iter(range(100)), ahead, awaited) is verdict
    assert ahead == list(range(30)) and asked == [False, False, False, True]  # limit reached: wait
    awaited, asked = _verdict_after(99, verdict)
    ahead = []
    assert pipeline._parse_ahead(iter(range(15)), ahead, awaited) is verdict
    assert ahead == list(range(15)) and asked == [False, True]  # the end: wait


def _dies(*args, **kwargs):
    os._exit(3)
    yield  # a generator, as _reader_events is


def test_a_reader_process_that_dies_is_reported_not_waited_for(tmp_path, monkeypatch):
    # The events come through a pipe and a receiving thread (pipeline._Receiver): the end of the
    # pipe, when the child is gone, must end the wait too.
    monkeypatch.setattr(pipeline, "_reader_events", _dies)
    path = write_export(tmp_path / "e.csv", scattered_rows())
    with pytest.raises(ReaderFailedError, match="exit code 3"):
        list(run_reader(path, parallel=True))


def test_batches_larger_than_the_pipe_arrive_whole_and_in_order_while_the_writer_lags(tmp_path):
    # Batches each bigger than the pipe (at most 1 MiB), two of them kept by the receiver: the
    # reader blocks on the full pipe, then goes on, and nothing is lost or reordered.
    rows = [row(SO_GPLX=f"01{i:010d}", SO_CCCD=f"001060{i:06d}", SO_PHOI=f"{i:012d}") for i in range(30_000)]
    path = write_export(tmp_path / "e.csv", rows)
    eager = list(run_reader(path, parallel=True, batch_size=10_000))
    # The batches that hold licences. (A licence the other half's Bloom filter falsely reports as
    # run there too is set aside and comes in a batch of its own after the rest, followed by the
    # closing batch, then empty: string hashes are salted per run, so now and then there is one.)
    full = [e[1] for e in eager if e[0] == "batch" and e[1].records]
    assert len(full) == 3 and sum(len(b.records) for b in full) == 30_000
    assert min(len(pipeline._packed(b)) for b in full) > 1 << 20
    crossed = []
    for event in run_reader(path, parallel=True, batch_size=10_000):
        crossed.append(event)
        time.sleep(0.2)  # a slow writer: the reader runs ahead until the pipe and the receiver are full
    assert crossed == eager
