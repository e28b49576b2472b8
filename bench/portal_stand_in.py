"""A local stand-in for the portal's DongBoHoSoMC endpoint for bench/bench_pipeline.py: answers every
call with success, as fast as it can, in a process of its own. `python bench/portal_stand_in.py PORT`

A call may carry several dossiers (its `data` is a list, PORTAL.md §2); the portal answers for the
call as a whole, so one success acknowledges every entry of it. `GET /counts` answers how many calls
and entries it has had, for the benchmark's figures."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OK = b'{"error_code": "00"}'
counts = {"calls": 0, "entries": 0}
counting = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The answer goes out as two writes (headers, then body) on a kept-alive connection: with Nagle's
    # algorithm on, the body waits for the caller's delayed ACK of the headers, ~40 ms a call, which
    # is the stand-in's delay, not the portal's or the caller's (py-spy: most of a sync task's time).
    disable_nagle_algorithm = True

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with counting:
            counts["calls"] += 1
            # Each entry names its dossier once; cheaper than parsing the JSON.
            counts["entries"] += body.count(b'"MaHoSo"')
        self._answer(OK)

    def do_GET(self) -> None:  # noqa: N802
        with counting:
            self._answer(json.dumps(counts).encode())

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
