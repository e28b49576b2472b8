"""The photo check (schemas.images): well-formed JPEG and PNG files pass; anything else — truncated,
corrupted, padded with a second file, a decompression bomb — is named, and no input makes it crash."""

from __future__ import annotations

import base64
import struct
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.images import MAX_DIMENSION, image_problem
from tests.support.data import PHOTO, png_bytes

JPEG = base64.b64decode(PHOTO)


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(width: int, height: int, rows: bytes, *, interlace: int = 0) -> bytes:
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, interlace))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_the_portals_sample_jpeg_and_a_small_png_are_well_formed():
    assert image_problem("image/jpeg", JPEG) is None
    assert image_problem("image/png", png_bytes(3, 2)) is None


def test_an_interlaced_png_is_well_formed():
    # Adam7 of a 3x3 grey image: seven reduced images (passes 2 and 3 empty), each line a filter
    # byte and its pixels.
    widths_heights = [(1, 1), (0, 0), (0, 0), (1, 1), (2, 1), (1, 2), (3, 1)]
    rows = b"".join((b"\x00" + b"\x80" * w) * h for w, h in widths_heights if w and h)
    assert image_problem("image/png", png(3, 3, rows, interlace=1)) is None


def test_png_whose_data_inflates_beyond_its_header_is_refused_without_inflating_it_all():
    bomb = png(1, 1, b"\x00" * 50_000_000)  # 50 MB of zeros compress to about 50 kB
    assert "larger than its header" in image_problem("image/png", bomb)


def test_png_whose_data_is_short_of_its_header_is_refused():
    assert "does not match its header" in image_problem("image/png", png(4, 4, b"\x00\x80"))


def test_dimensions_out_of_range_are_refused():
    huge = png(MAX_DIMENSION + 1, 1, b"\x00" + b"\x80" * (MAX_DIMENSION + 1))
    assert "outside" in image_problem("image/png", huge)


def test_jpeg_without_a_scan_or_its_end_is_refused():
    soi_eoi = b"\xff\xd8\xff\xd9"
    assert "no frame or no scan" in image_problem("image/jpeg", soi_eoi)
    assert "decodable" in image_problem("image/jpeg", JPEG[:-2])


def test_a_file_glued_after_the_image_is_refused():
    assert "after the end-of-image" in image_problem("image/jpeg", JPEG + b"<?php system($_GET['c']); ?>")
    assert "after IEND" in image_problem("image/png", png_bytes() + JPEG)


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(["image/jpeg", "image/png"]), data=st.binary(max_size=2048),
       keep=st.integers(min_value=0, max_value=700), flip=st.integers(min_value=0, max_value=700))
def test_no_input_crashes_the_check(kind, data, keep, flip):
    # Random bytes, and real images cut, corrupted in one byte, or followed by random bytes.
    base = JPEG if kind == "image/jpeg" else png_bytes(2, 2)
    corrupted = bytearray(base)
    corrupted[flip % len(corrupted)] ^= 0xFF
    for candidate in (data, base[:keep], bytes(corrupted), base + data):
        result = image_problem(kind, candidate)
        assert result is None or isinstance(result, str)
