"""Starting the service's own worker processes (`python -m workers <stage>`) for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from licence_service.config import PROJECT_ROOT

ALL_PROCESSES = ("relay", "checks", "fee", "conversion", "issuance", "portal_sync")


class WorkerProcesses:
    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = {**os.environ, **env, "PYTHONPATH": str(PROJECT_ROOT), "PYTHONUNBUFFERED": "1"}
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, names: Iterable[str] = ALL_PROCESSES) -> WorkerProcesses:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in names:
            log = open(self.log_dir / f"{name}.log", "ab")
            self.procs[name] = subprocess.Popen([sys.executable, "-m", "workers", name], env=self.env,
                                                cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)
        return self

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.procs.clear()

    def logs(self) -> str:
        files = sorted(self.log_dir.glob("*.log"))
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in files)
