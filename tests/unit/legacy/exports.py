"""Building legacy export files for tests: rows as dicts, written the way the Department writes them."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from licence_service.legacy.rows import COLUMNS

BASE_ROW = {
    "SO_GPLX": "019000000011", "SO_PHOI": "900000000011", "HO_TEN": "TRẦN VĂN NĂM", "NGAY_SINH": "12/03/1960",
    "GIOI_TINH": "Nam", "SO_CCCD": "001060123456", "SO_CMND": "", "QUOC_TICH": "Việt Nam",
    "NOI_CU_TRU": "Số 1 Hàng Bài, Hà Nội", "MA_TINH": "01", "HANG": "A1", "NGAY_TRUNG_TUYEN": "12/03/1985",
    "NGAY_CAP": "20/04/1985", "NGAY_HET_HAN": "Không thời hạn", "TRANG_THAI": "Hoạt động", "DIEM": "",
}


def row(**changes: str) -> dict[str, str]:
    return {**BASE_ROW, **changes}


def export_text(rows: list[dict[str, str]], header: tuple[str, ...] | list[str] = COLUMNS) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for r in rows:
        writer.writerow([r.get(c, "") for c in header])
    return out.getvalue()


def write_export(path: Path, rows: list[dict[str, str]], header: tuple[str, ...] | list[str] = COLUMNS) -> Path:
    # utf-8-sig: with the byte-order mark, as the Department's exports come.
    path.write_text(export_text(rows, header), encoding="utf-8-sig", newline="")
    return path
