"""`make run`: the whole service in the foreground on the embedded default.

Starts the bundled Redis (unless REDIS_URL is set), migrates the database, loads the sample data on
first start, then runs every Procfile process under honcho. Ctrl-C stops them all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from licence_service.config import PROJECT_ROOT, ConfigError, Settings, load_settings
from licence_service.embedded_redis import ensure_redis, stop_embedded_redis
from licence_service.store.migrate import upgrade


def load_sample_data(settings: object) -> None:
    from licence_service.bootstrap import build_services
    from licence_service.legacy.importer import import_legacy
    from licence_service.registers.sandbox_loader import load_sandbox

    services = build_services(settings)  # type: ignore[arg-type]
    data = services.settings.sample_data_dir
    summary = load_sandbox(services.uow(), data / "sandbox-registers.json")
    print(f"sample data: {summary.population} people and {summary.health_certificates} health certificates "
          "in the sandbox registers")
    result = import_legacy(data / "hanoi-legacy-sample.csv", services.engine,
                           reject_report=services.settings.var_dir / "hanoi-legacy-sample.rejects.csv")
    print(f"sample data: legacy export imported ({result})")


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    env = dict(os.environ)
    started_redis = False
    if not (settings.redis_url or settings.broker_url):
        env["REDIS_URL"] = ensure_redis(settings.var_dir, settings.embedded_redis_port)
        started_redis = True
        settings = settings.with_overrides(redis_url=env["REDIS_URL"])
        print(f"embedded Redis on {env['REDIS_URL']} (data in {settings.var_dir / 'redis'})")
    try:
        return _serve(settings, env)
    finally:
        # Also when migrating or loading the sample data fails: never leave the embedded Redis behind.
        if started_redis:
            stop_embedded_redis(settings.var_dir)


def _serve(settings: Settings, env: dict[str, str]) -> int:
    upgrade(settings.database_url)
    marker = settings.var_dir / "sample-data-loaded"
    if not marker.exists():
        load_sample_data(settings)
        marker.write_text("sample data loaded; delete this file to load it again\n")
    port = env.get("PORT", "8000")
    # Child processes must import the project and its .venv's console scripts.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = f"{PROJECT_ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}".rstrip(os.pathsep)
    env["PYTHONUNBUFFERED"] = "1"
    print(f"API on http://127.0.0.1:{port} — Ctrl-C stops everything")
    # honcho runs in its own session so that every way of stopping the launcher (Ctrl-C in the
    # terminal, SIGINT or SIGTERM from a supervisor) reaches it exactly once, through us.
    honcho = subprocess.Popen([sys.executable, "-m", "honcho", "-f", str(PROJECT_ROOT / "Procfile"),
                               "-d", str(PROJECT_ROOT), "start", "-p", port], env=env, start_new_session=True)

    def stop(signum: int, _frame: object) -> None:
        honcho.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return honcho.wait()

if __name__ == "__main__":
    sys.exit(main())
