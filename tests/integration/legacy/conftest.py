"""A freshly migrated register per test: SQLite, and PostgreSQL when LICENCE_TEST_POSTGRES_URL is set
(a schema of its own per test, dropped afterwards, so parallel runs never see each other's rows)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from licence_service.store.database import make_engine
from licence_service.store.migrate import upgrade

POSTGRES_URL = os.environ.get("LICENCE_TEST_POSTGRES_URL")
SAMPLE = Path(__file__).resolve().parents[3] / "data" / "hanoi-legacy-sample.csv"


@dataclass
class Register:
    url: str
    engine: sa.Engine


def _sqlite(tmp_path: Path, name: str = "register.db") -> Iterator[Register]:
    url = f"sqlite:///{tmp_path / name}"
    upgrade(url)
    engine = make_engine(url)
    yield Register(url, engine)
    engine.dispose()


def _postgres() -> Iterator[Register]:
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL variant: set LICENCE_TEST_POSTGRES_URL "
                    "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")
    schema = f"legacy_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}options=-csearch_path%3D{schema}"
    try:
        upgrade(url)
        engine = make_engine(url)
        yield Register(url, engine)
        engine.dispose()
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def register(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Register]:
    """The register the import writes into, on each supported database."""
    yield from (_sqlite(tmp_path) if request.param == "sqlite" else _postgres())


@pytest.fixture
def sqlite_register(tmp_path: Path) -> Iterator[Register]:
    """A SQLite register of its own: a file apart from `register`'s, for a test comparing the two."""
    yield from _sqlite(tmp_path, "sqlite-register.db")


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A copy of the sample export, so reports written next to it land in the test's directory."""
    path = tmp_path / "hanoi-legacy-sample.csv"
    path.write_bytes(SAMPLE.read_bytes())
    return path
