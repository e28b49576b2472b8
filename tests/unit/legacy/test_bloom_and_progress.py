"""The fixed-memory Bloom filter and the terminal progress bar."""

from __future__ import annotations

import io

import pytest

from licence_service.legacy.bloom import BloomFilter
from licence_service.legacy.progress import TerminalProgress


def test_bloom_never_forgets_and_says_certainly_not_for_new_keys():
    bloom = BloomFilter(20)
    keys = [f"0100{i:08d}" for i in range(5000)]
    assert [bloom.add(k) for k in keys].count(True) <= 5  # first additions: "not before" (bar rare false hits)
    assert all(k in bloom for k in keys)
    assert all(bloom.add(k) for k in keys)  # second additions: "maybe before", always


def test_bloom_false_positive_rate_is_small_at_its_design_load():
    bloom = BloomFilter(20)  # 1 Mi bits
    for i in range(20_000):
        bloom.add(f"0{i:011d}")  # keys like the import's: citizen IDs, licence numbers, serials
    # Two probes at 2 % load: about 0.14 %, some 30 of each 20,000 absent keys, str or bytes (hashes
    # are salted per process, so the count varies from run to run; the bound is five times the
    # expectation).
    absent_str = sum(f"AB{i:06d}" in bloom for i in range(20_000))
    absent_bytes = sum(b"9%011d" % i in bloom for i in range(20_000))
    assert absent_str + absent_bytes < 300


def test_numbers_are_never_forgotten_and_rarely_mistaken_the_same_in_any_process():
    bloom = BloomFilter(20)
    numbers = [10_000_000_000 + i for i in range(20_000)]  # consecutive, as licence numbers can be
    assert [bloom.add_number(n) for n in numbers].count(True) <= 30
    again = BloomFilter.from_bytes(bloom.to_bytes())
    assert all(again.has_number(n) for n in numbers)
    assert all(bloom.add_number(n) for n in numbers)
    # Absent numbers, far and near: two probes at 2 % load give about 0.14 % false hits.
    absent = [90_000_000_000 + 7 * i for i in range(20_000)] + [10_000_020_000 + i for i in range(20_000)]
    assert sum(bloom.has_number(n) for n in absent) < 300
    # The probes are the number's own, not the process's salted hash: fixed bits for a fixed key
    # (the scan's set-aside licences must not depend on the run, see scan._runs).
    one = BloomFilter(10)
    one.add_number(10_000_000_000)
    bits = one.to_bytes()
    assert [i for i in range(1024) if bits[i >> 3] >> (i & 7) & 1] == [626, 872]


def test_bloom_refuses_silly_sizes():
    with pytest.raises(ValueError):
        BloomFilter(3)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_shows_rows_per_second_and_eta():
    out, clock = io.StringIO(), FakeClock()
    bar = TerminalProgress(out, clock=clock)
    bar.importing(0, 1000)
    clock.now += 2.0
    bar.importing(400, 1000)
    last = out.getvalue().split("\r")[-1]
    assert "400/1,000 rows" in last and "200 rows/s" in last and "ETA 0:00:03" in last and "40%" in last


def test_progress_is_drawn_at_most_ten_times_a_second_but_always_at_the_end():
    out, clock = io.StringIO(), FakeClock()
    bar = TerminalProgress(out, clock=clock)
    for done in range(1, 100):
        bar.importing(done, 100)  # the clock does not move: only the first draw passes the limit
    bar.importing(100, 100)
    assert out.getvalue().count("\r") == 2
    bar.finish()
    assert out.getvalue().endswith("\n")


def test_scanning_shows_bytes_per_second():
    out, clock = io.StringIO(), FakeClock()
    bar = TerminalProgress(out, clock=clock)
    bar.scanning(0, 10_000_000)
    clock.now += 1.0
    bar.scanning(5_000_000, 10_000_000)
    assert "checking" in out.getvalue() and "5.0 MB/s" in out.getvalue()


def test_finish_without_drawing_writes_nothing():
    out = io.StringIO()
    TerminalProgress(out).finish()
    assert out.getvalue() == ""
