"""`make run`'s launcher as a newcomer meets it: no configuration at all, sample data loaded on first
start, the README's curl steps take the sample application to `issued`, and Ctrl-C (SIGINT) stops it all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

from licence_service.config import PROJECT_ROOT
from licence_service.embedded_redis import answers_ping
from tests.conftest import token_for
from tests.support.servers import free_port, wait_for

CONFIG_VARS = ("DATABASE_URL", "REDIS_URL", "BROKER_URL", "TOKEN_SECRET", "PORTAL_SYNC_URL")


def test_launcher_runs_the_whole_service_on_the_embedded_default_and_ctrl_c_stops_it_all(tmp_path: Path):
    port, redis_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in CONFIG_VARS}
    env.update(VAR_DIR=str(tmp_path / "var"), PORT=str(port), EMBEDDED_REDIS_PORT=str(redis_port),
               WEB_CONCURRENCY="1")
    log = open(tmp_path / "launcher.log", "wb")
    launcher = subprocess.Popen([sys.executable, "-m", "licence_service.launcher"], cwd=PROJECT_ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def get(url: str, **kw: Any) -> requests.Response | None:
        try:
            return requests.get(url, timeout=5, **kw)
        except requests.RequestException:
            return None

    try:
        wait_for(lambda: (r := get(f"{base}/readyz")) is not None and r.status_code == 200, timeout=120,
                 interval=0.5, message="the API's /readyz")
        secret = (tmp_path / "var" / "token-secret").read_text().strip()
        headers = {"Authorization": f"Bearer {token_for('applications:submit', 'applications:read', secret=secret)}"}
        body = json.loads((PROJECT_ROOT / "data" / "sample-application.json").read_text(encoding="utf-8"))
        created = requests.post(f"{base}/api/v1/applications", json=body, headers=headers, timeout=10)
        assert created.status_code == 202, created.text
        url = base + created.json()["links"]["self"]

        def status() -> str:
            return requests.get(url, headers=headers, timeout=10).json()["status"]

        wait_for(lambda: status() == "awaiting_payment", timeout=60, interval=0.2, message="awaiting_payment")
        paid = requests.post(f"{url}/payments", headers=headers, timeout=10, json={
            "transaction_id": "PAYGOV-DEMO-1", "amount": 135000, "currency": "VND",
            "paid_at": "2026-11-27T10:30:00+07:00"})
        assert paid.status_code == 202, paid.text
        wait_for(lambda: status() == "issued", timeout=60, interval=0.2, message="issued")
        doc = requests.get(url, headers=headers, timeout=10).json()
        assert [h["status"] for h in doc["history"]] == [
            "received", "accepted", "awaiting_payment", "processing", "processing", "issued"]
        assert {c["code"] for c in doc["licence"]["classes"]} == {"A", "B"}
    except AssertionError:
        print((tmp_path / "launcher.log").read_text(errors="replace")[-6000:])
        raise
    finally:
        launcher.send_signal(signal.SIGINT)  # what Ctrl-C sends; SIGTERM takes the same path
        try:
            launcher.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(launcher.pid, signal.SIGKILL)
            raise
    wait_for(lambda: not answers_ping(redis_port), timeout=20, message="the embedded Redis to stop")
    wait_for(lambda: get(f"{base}/healthz") is None, timeout=20, message="the API to stop")


def test_launcher_that_fails_to_start_leaves_no_embedded_redis_behind(tmp_path: Path):
    redis_port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in CONFIG_VARS}
    # Nothing listens on port 1: the migration fails after the embedded Redis has started.
    env.update(VAR_DIR=str(tmp_path / "var"), EMBEDDED_REDIS_PORT=str(redis_port),
               DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/none")
    result = subprocess.run([sys.executable, "-m", "licence_service.launcher"], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, timeout=120)
    assert result.returncode != 0
    assert b"embedded Redis on" in result.stdout  # it did start, so stopping it is what is tested
    wait_for(lambda: not answers_ping(redis_port), timeout=20, message="the embedded Redis to stop")
