"""Is a photo what it claims to be? A structural check of JPEG and PNG files, without an imaging
library: the file must start with the type's magic bytes, be well formed to its last byte, and carry
nothing after its end (a file glued to an image — the usual way to smuggle one past an upload check —
is refused).

PNG: every chunk's length and CRC, an IHDR first with sane dimensions and a valid bit depth / colour
type, IDAT chunks whose zlib stream inflates to exactly the size the header implies (streamed, never
more than that: no decompression bomb), IEND last. JPEG: SOI, marker segments with consistent
lengths up to a frame header (SOF) with sane dimensions, a scan (SOS) and its entropy-coded data, EOI
last. The JPEG's compressed data is not decoded; its metadata segments (EXIF, comments) are not
stripped.
"""

from __future__ import annotations

import struct
import zlib

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAGIC = {"image/jpeg": JPEG_MAGIC, "image/png": PNG_MAGIC}
MAX_DIMENSION = 8000  # pixels on either side; a portrait photo is a few hundred

# PNG colour type -> (allowed bit depths, samples per pixel)
_PNG_COLOUR = {0: ({1, 2, 4, 8, 16}, 1), 2: ({8, 16}, 3), 3: ({1, 2, 4, 8}, 1), 4: ({8, 16}, 2), 6: ({8, 16}, 4)}
# JPEG start-of-frame markers (C4 DHT, C8 JPG and CC DAC are not frames).
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and RST0-7 carry no length


class NotAnImage(ValueError):
    pass


def image_problem(content_type: str, data: bytes) -> str | None:
    """None when `data` is a well-formed image of `content_type`, else what is wrong with it."""
    magic = MAGIC.get(content_type)
    if magic is None:
        return f"{content_type} is not an accepted image type"
    if not data.startswith(magic):
        return f"is not a {content_type} image"
    try:
        if content_type == "image/png":
            _check_png(data)
        else:
            _check_jpeg(data)
    except NotAnImage as exc:
        return f"is not a decodable {content_type} image: {exc}"
    return None


def _dimensions_ok(width: int, height: int) -> None:
    if not (0 < width <= MAX_DIMENSION and 0 < height <= MAX_DIMENSION):
        raise NotAnImage(f"{width}x{height} pixels is outside 1..{MAX_DIMENSION}")


def _check_png(data: bytes) -> None:
    pos = len(PNG_MAGIC)
    header: tuple[int, int, int, int, int] | None = None
    inflater = zlib.decompressobj()
    expected = inflated = 0
    seen_idat = ended = False
    while pos < len(data):
        if pos + 12 > len(data):
            raise NotAnImage("truncated chunk")
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 12 + length
        if length > 0x7FFFFFFF or end > len(data):
            raise NotAnImage("chunk runs past the end of the file")
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[end - 4:end])
        if zlib.crc32(kind + body) != crc:
            raise NotAnImage("a chunk's CRC does not match")
        pos = end
        if header is None:
            if kind != b"IHDR" or length != 13:
                raise NotAnImage("the first chunk is not IHDR")
            width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", body)
            _dimensions_ok(width, height)
            depths, samples = _PNG_COLOUR.get(colour, (set(), 0))
            if depth not in depths or compression != 0 or filtering != 0 or interlace not in (0, 1):
                raise NotAnImage("invalid IHDR")
            header = (width, height, depth, samples, interlace)
            expected = _png_raw_size(*header)
        elif kind == b"IDAT":
            seen_idat = True
            # Inflate at most what the header allows, a piece at a time, counting and discarding it.
            chunk = body
            while chunk:
                out = inflater.decompress(chunk, 1 << 16)
                inflated += len(out)
                if inflated > expected:
                    raise NotAnImage("image data larger than its header says")
                chunk = inflater.unconsumed_tail
        elif kind == b"IEND":
            ended = True
            break
    if header is None or not seen_idat or not ended:
        raise NotAnImage("missing IHDR, IDAT or IEND")
    if pos != len(data):
        raise NotAnImage("data after IEND")
    if not inflater.eof or inflated != expected:
        raise NotAnImage("image data does not match its header")


def _png_raw_size(width: int, height: int, depth: int, samples: int, interlace: int) -> int:
    """Bytes of filtered scanlines (one filter byte per line) the IDAT stream must inflate to."""
    def lines(w: int, h: int) -> int:
        return 0 if w == 0 or h == 0 else h * (1 + (w * depth * samples + 7) // 8)

    if interlace == 0:
        return lines(width, height)
    # Adam7: seven passes, each a reduced image (start column/row, step).
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
    return sum(lines((width - x + dx - 1) // dx, (height - y + dy - 1) // dy) for x, y, dx, dy in passes)


def _check_jpeg(data: bytes) -> None:
    pos = 2  # after SOI
    frame = scan = False
    while True:
        # Markers may be preceded by any number of 0xFF fill bytes.
        if pos >= len(data) or data[pos] != 0xFF:
            raise NotAnImage("expected a marker")
        while pos < len(data) and data[pos] == 0xFF:
            pos += 1
        if pos >= len(data):
            raise NotAnImage("truncated marker")
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI
            break
        if marker in (0x00, 0xD8):
            raise NotAnImage(f"unexpected marker 0x{marker:02X}")
        if marker in _STANDALONE:
            continue
        if pos + 2 > len(data):
            raise NotAnImage("truncated segment")
        (length,) = struct.unpack(">H", data[pos:pos + 2])
        if length < 2 or pos + length > len(data):
            raise NotAnImage("segment length runs past the end of the file")
        segment = data[pos + 2:pos + length]
        pos += length
        if marker in _SOF:
            if len(segment) < 6:
                raise NotAnImage("short frame header")
            height, width = struct.unpack(">HH", segment[1:5])
            _dimensions_ok(width, height)
            frame = True
        elif marker == 0xDA:  # SOS: entropy-coded data follows, up to the next real marker
            if not frame:
                raise NotAnImage("scan before the frame header")
            scan = True
            pos = _skip_entropy_coded(data, pos)
    if not (frame and scan):
        raise NotAnImage("no frame or no scan")
    if pos != len(data):
        raise NotAnImage("data after the end-of-image marker")


def _skip_entropy_coded(data: bytes, pos: int) -> int:
    """The position of the first marker after a scan's data (FF00 is a stuffed FF, FFD0-D7 restarts)."""
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= len(data):
            raise NotAnImage("scan data runs to the end of the file without an end-of-image marker")
        following = data[pos + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
            pos += 1 if following == 0xFF else 2
            continue
        return pos
