"""What bench_submit.py and bench_pipeline.py share: a throwaway Redis, a migrated database, gunicorn
started the way the Procfile starts it, tokens, and the varied application bodies."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_local = threading.local()


def thread_sqlite(path: str | Path) -> sqlite3.Connection:
    """This thread's connection to the SQLite file ``path`` (the baselines' stores), with the service's
    settings (WAL, synchronous=NORMAL) and no implicit transactions."""
    connections = _local.__dict__.setdefault("connections", {})
    conn = connections.get(path)
    if conn is None:
        conn = sqlite3.connect(path, timeout=60, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        connections[path] = conn
    return conn


def create_sqlite_schema(path: str | Path, ddl: str) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(ddl)


TOKEN_SECRET = "bench-secret-" + "x" * 32
# Limits stay on (a Redis round trip per request, as deployed), with a budget no benchmark reaches.
RATE_LIMIT = "100000000/minute"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Any, timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(interval)
    raise SystemExit(f"timed out waiting for {what}")


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    from licence_service.embedded_redis import start_redis_server

    port = free_port()
    proc = start_redis_server(port, workdir / "redis", daemonize=False, appendonly=False)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    """A scratch directory, removed afterwards unless BENCH_KEEP is set (to read the processes' logs)."""
    if os.environ.get("BENCH_KEEP"):
        name = tempfile.mkdtemp(prefix=prefix)
        print(f"bench: keeping {name}", flush=True)
        yield Path(name)
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as name:
        yield Path(name)


def service_env(var_dir: Path, database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PROMETHEUS_MULTIPROC_DIR", "BROKER_URL")}
    env.update(VAR_DIR=str(var_dir), DATABASE_URL=database_url, REDIS_URL=redis_url, TOKEN_SECRET=TOKEN_SECRET,
               RATE_LIMIT=RATE_LIMIT, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    env.update(extra)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def token(*scopes: str) -> str:
    from licence_service.tokens import issue_token

    return issue_token(TOKEN_SECRET, "portal", list(scopes), issuer="licence-service", audience="licence-service",
                       ttl_seconds=24 * 3600)


@contextlib.contextmanager
def gunicorn(app: str, env: dict[str, str], log: Path, workers: int | None = None
             ) -> Iterator[tuple[str, subprocess.Popen]]:
    """`app` served as the Procfile's web process serves the service (same config, and its
    `${WEB_CONCURRENCY:-2}` workers unless `workers` is given)."""
    import urllib.request

    workers = workers or int(env.get("WEB_CONCURRENCY") or 2)

    port = free_port()
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", "python:licence_service.gunicorn_conf",
                                 "--bind", f"127.0.0.1:{port}", "--workers", str(workers), app],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: urllib.request.urlopen(f"{base}/healthz", timeout=2).status == 200, 90, f"{app} on {base}")
        yield base, proc
    finally:
        proc.terminate()
        proc.wait(30)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc), 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def citizen_id(n: int) -> str:
    """A citizen ID agreeing with a male born in 1989 (R-ID: province, century-and-sex, year, serial)."""
    return f"001089{n % 1_000_000:06d}"


def licence_number(n: int) -> str:
    return f"02{n:010d}"


def dossier_id(n: int) -> str:
    return f"G01.99-20261127-{n:07d}"


FAMILY = ("NGUYỄN", "TRẦN", "LÊ", "PHẠM", "HOÀNG", "VŨ", "ĐẶNG", "BÙI")
GIVEN = ("VĂN AN", "THỊ BÌNH", "MINH CHÂU", "QUỐC DŨNG", "HỒNG ĐÀO", "THANH HẢI", "ĐỨC HUY", "NGỌC LAN")


def full_name(n: int) -> str:
    return f"{FAMILY[n % len(FAMILY)]} {GIVEN[(n // len(FAMILY)) % len(GIVEN)]}"
