"""Generate a synthetic Hà Nội legacy export (NATIONAL-MODEL.md) for the import benchmark.

    .venv/bin/python bench/gen_legacy_export.py --rows 1000000 --out var/bench/legacy-1m.csv

Deterministic: the same --rows and --seed always give the same bytes. The file carries the sample's
mix of quirks (BOM, CRLF, quoted residence, d/m/yyyy and year-only dates, NFD / lower-case /
doubled-space names, dotted or spaced licence numbers, `Không thời hạn`, the three `B1 số tự động`
spellings, NAM/NU/nu, CMND-only people, empty nationality / status / points), some licences whose
rows are far apart in the file, and about 0.6 % bad rows of the kinds the importer must reject.

Memory stays small: licences are generated one at a time; only the rows held back to be written
further down the file (a bounded queue) are kept.
"""

from __future__ import annotations

import argparse
import collections
import csv
import random
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

HEADER = [
    "SO_GPLX", "SO_PHOI", "HO_TEN", "NGAY_SINH", "GIOI_TINH", "SO_CCCD", "SO_CMND", "QUOC_TICH",
    "NOI_CU_TRU", "MA_TINH", "HANG", "NGAY_TRUNG_TUYEN", "NGAY_CAP", "NGAY_HET_HAN", "TRANG_THAI",
    "DIEM",
]

SURNAMES = ["NGUYỄN", "TRẦN", "LÊ", "PHẠM", "HOÀNG", "HUỲNH", "PHAN", "VŨ", "VÕ", "ĐẶNG", "BÙI",
            "ĐỖ", "HỒ", "NGÔ", "DƯƠNG", "LÝ"]
MIDDLE = ["VĂN", "THỊ", "HỮU", "ĐỨC", "MINH", "THANH", "QUANG", "CÔNG", "NGỌC", "THU", "BẢO", "KIM"]
GIVEN = ["AN", "BÌNH", "CHI", "CƯỜNG", "DŨNG", "DUNG", "HÀ", "HẢI", "HẰNG", "HƯƠNG", "HÙNG", "LAN",
         "LINH", "MAI", "NAM", "NGA", "PHONG", "PHƯƠNG", "QUÂN", "SƠN", "THẢO", "VIỆT", "YẾN"]
STREETS = ["Láng Hạ", "Cầu Giấy", "Kim Mã", "Nguyễn Trãi", "Giải Phóng", "Tràng Tiền", "Thái Hà",
           "Hàng Bài"]
# Birth-registration province codes (R-ID), weighted towards Hà Nội as in the sample.
BIRTH_PROVINCES = ["001"] * 6 + ["026", "031", "034", "036", "038", "040", "079"]
MOTORCYCLE = ["A1", "A1", "A1", "A2", "A3"]
CAR = ["B2", "B2", "B2", "B1", "B1TD", "C", "D", "E", "FC", "FB2", "A4"]
B1TD_SPELLINGS = ["B1 số tự động", "B1TD", "B1 TĐ"]
NO_EXPIRY = {"A1", "A2", "A3"}
FIVE_YEARS = {"C", "D", "E", "FB2", "FC", "FD", "FE"}
# Held-back rows are written this many licences later, so grouping cannot rely on adjacency.
DISPLACE_DISTANCE = 5000


def _date(day: int, month: int, year: int, loose: bool) -> str:
    return f"{day}/{month}/{year}" if loose else f"{day:02d}/{month:02d}/{year}"


class Generator:
    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.index = 0
        # A citizen ID already written, reused on purpose by a later licence (a bad row).
        self.recent_citizen_id = "001089012345"

    def licence_number(self) -> str:
        # Multiplying by a number coprime with 10**10 permutes 0..10**10-1: unique, scattered.
        return "01" + f"{(self.index * 7_919_113 + 1_234_567) % 10**10:010d}"

    def card_serial(self) -> str:
        return f"{(self.index * 3_571_429 + 98_765) % 10**12:012d}"

    def person(self) -> dict[str, str | int]:
        rnd = self.rnd
        year = rnd.randint(1950, 2006)
        month, day = rnd.randint(1, 12), rnd.randint(1, 28)
        female = rnd.random() < 0.45
        century_digit = (1 if female else 0) + (2 if year >= 2000 else 0)
        # Six digits from the running index keep citizen IDs unique below a million licences.
        citizen_id = f"{rnd.choice(BIRTH_PROVINCES)}{century_digit}{year % 100:02d}{self.index % 10**6:06d}"
        middle = "THỊ" if female and rnd.random() < 0.5 else rnd.choice(MIDDLE)
        return {
            "name": f"{rnd.choice(SURNAMES)} {middle} {rnd.choice(GIVEN)}",
            "year": year, "month": month, "day": day, "female": int(female),
            "citizen_id": citizen_id,
            "cmnd_only": int(rnd.random() < 0.02),
            "residence": f"Số {rnd.randint(1, 199)} {rnd.choice(STREETS)}, Hà Nội",
            "status": rnd.choices(["Hoạt động", "", "Tạm giữ", "Thu hồi"], [82, 15, 2, 1])[0],
            "points": rnd.choice(["", "", "12", "8", "0"]),
        }

    def name_spelling(self, name: str) -> str:
        r = self.rnd.random()
        if r < 0.05:
            return unicodedata.normalize("NFD", name)
        if r < 0.13:
            return "  ".join(name.lower().split())
        if r < 0.18:
            return name.title()
        return name

    def number_spelling(self, number: str) -> str:
        r = self.rnd.random()
        if r < 0.04:
            return f"{number[:2]} {number[2:6]} {number[6:]}"
        if r < 0.08:
            return f"{number[:2]}.{number[2:6]}.{number[6:]}"
        return number

    def licence_rows(self) -> list[list[str]]:
        rnd = self.rnd
        p = self.person()
        number, serial = self.licence_number(), self.card_serial()
        n_classes = rnd.choices([1, 2, 3], [55, 38, 7])[0]
        codes = [rnd.choice(MOTORCYCLE)] if n_classes == 1 and rnd.random() < 0.6 else []
        while len(codes) < n_classes:
            code = rnd.choice(CAR if codes else MOTORCYCLE + CAR)
            if code not in codes:
                codes.append(code)
        rows = []
        for code in codes:
            passed_year = rnd.randint(min(p["year"] + 18, 2024), 2024)  # type: ignore[operator]
            pm, pd = rnd.randint(1, 12), rnd.randint(1, 28)
            issue_year = rnd.randint(passed_year, 2024) if code not in NO_EXPIRY else passed_year
            im, idd = (pm, pd) if issue_year > passed_year else (max(pm, min(pm + 1, 12)), 28)
            if code in NO_EXPIRY:
                expiry = "Không thời hạn" if rnd.random() < 0.9 else ""
            else:
                years = 5 if code in FIVE_YEARS else 10
                expiry = _date(idd, im, issue_year + years, False)
            dob = (
                str(p["year"]) if rnd.random() < 0.01
                else _date(p["day"], p["month"], p["year"], rnd.random() < 0.08)  # type: ignore[arg-type]
            )
            sex = ("Nữ" if p["female"] else "Nam") if rnd.random() < 0.9 else rnd.choice(
                ["NU", "nu"] if p["female"] else ["NAM"]
            )
            cmnd_only = bool(p["cmnd_only"])
            rows.append([
                self.number_spelling(number),
                serial,
                self.name_spelling(str(p["name"])),
                dob,
                sex,
                "" if cmnd_only else str(p["citizen_id"]),
                f"{100_000_000 + self.index % 900_000_000:09d}" if cmnd_only else "",
                "" if rnd.random() < 0.05 else "Việt Nam",
                str(p["residence"]),
                "01",
                rnd.choice(B1TD_SPELLINGS) if code == "B1TD" else code,
                _date(pd, pm, passed_year, False),
                _date(idd, im, issue_year, rnd.random() < 0.05),
                expiry,
                str(p["status"]),
                str(p["points"]),
            ])
        self.spoil(rows)
        if rows[0][5]:
            self.recent_citizen_id = rows[0][5]
        self.index += 1
        return rows

    def spoil(self, rows: list[list[str]]) -> None:
        """Make about 0.6 % of rows bad, in the ways a real export goes wrong."""
        rnd = self.rnd
        for row in rows:
            if rnd.random() >= 0.005:
                continue
            kind = rnd.randrange(7)
            if kind == 0:
                row[12] = "31/02/2019"  # impossible date
            elif kind == 1:
                row[10] = "Z9"  # unknown class
            elif kind == 2:
                row[5] = row[5][:11] if row[5] else "12345"  # citizen ID not 12 digits
            elif kind == 3:
                row[4] = "X"  # unknown sex
            elif kind == 4:
                row[15] = "15"  # points out of range
            elif kind == 5:
                row[12] = "05/03/2025"  # issued after the Department's last card (2024-12-31)
            else:
                row[11] = "not a date"
        if len(rows) > 1 and rnd.random() < 0.004:
            rows[-1][2] = rows[-1][2] + " KHÁC"  # a later row naming another person
        if rows[0][5] and rnd.random() < 0.0005:
            for row in rows:
                row[5] = self.recent_citizen_id  # a citizen ID that already holds another licence


def generate(rows: int, seed: int, out: TextIO) -> int:
    """Write at least ``rows`` data rows (whole licences) to ``out``; return the number written."""
    gen = Generator(seed)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    held: collections.deque[tuple[int, list[str]]] = collections.deque()
    written = 0

    def licences() -> Iterator[list[list[str]]]:
        while True:
            yield gen.licence_rows()

    for group in licences():
        if written >= rows:
            break
        # A few multi-class licences have their last row written far further down the file.
        if len(group) > 1 and gen.rnd.random() < 0.05:
            held.append((gen.index + DISPLACE_DISTANCE, group.pop()))
        for row in group:
            writer.writerow(row)
            written += 1
        while held and held[0][0] <= gen.index:
            writer.writerow(held.popleft()[1])
            written += 1
    while held:
        writer.writerow(held.popleft()[1])
        written += 1
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # utf-8-sig writes the byte-order mark the Department's exports carry.
    with args.out.open("w", encoding="utf-8-sig", newline="") as out:
        written = generate(args.rows, args.seed, out)
    print(f"wrote {written} rows to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
