"""Progress of an import: the `Progress` protocol and a one-line bar for a terminal."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Protocol, TextIO

__all__ = ["Progress", "TerminalProgress"]


class Progress(Protocol):
    """What the import reports while it runs: bytes while checking the file, then rows."""

    def scanning(self, done: int, total: int) -> None: ...

    def importing(self, done: int, total: int) -> None: ...

    def finish(self) -> None: ...


def _clock_text(seconds: float) -> str:
    seconds = max(0, int(seconds + 0.5))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class TerminalProgress:
    """A bar redrawn in place (carriage return) on ``stream``, at most ``per_second`` times a
    second so drawing never costs the import anything noticeable. For terminals only: the CLI
    passes it only when stderr is a TTY, so logs and pipes stay clean."""

    WIDTH = 30

    def __init__(
        self, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic, per_second: float = 10.0
    ) -> None:
        self.stream = stream or sys.stderr
        self.clock = clock
        self.interval = 1.0 / per_second
        self._phase = ""
        self._started = 0.0
        self._drawn_at = float("-inf")
        self._drawn = False

    def scanning(self, done: int, total: int) -> None:
        self._update("checking", done, total, lambda rate: f"{rate / 1e6:6.1f} MB/s")

    def importing(self, done: int, total: int) -> None:
        self._update("importing", done, total, lambda rate: f"{done:,}/{total:,} rows  {rate:,.0f} rows/s")

    def _update(self, phase: str, done: int, total: int, speed: Callable[[float], str]) -> None:
        now = self.clock()
        if phase != self._phase:
            self._phase, self._started = phase, now
        if now - self._drawn_at < self.interval and done < total:
            return
        self._drawn_at = now
        elapsed = max(now - self._started, 1e-9)
        rate = done / elapsed
        fraction = min(done / total, 1.0) if total else 1.0
        filled = int(self.WIDTH * fraction)
        eta = _clock_text((total - done) / rate) if rate > 0 and done < total else "-:--:--"
        bar = "#" * filled + "." * (self.WIDTH - filled)
        self.stream.write(f"\r{phase:<9} [{bar}] {fraction:4.0%}  {speed(rate)}  ETA {eta}\x1b[K")
        self.stream.flush()
        self._drawn = True

    def finish(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
