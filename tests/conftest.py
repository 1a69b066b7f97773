"""Shared fixtures: a real app on real SQLite and PostgreSQL databases, fresh owners per test."""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from api.main import create_app
from core.config import Settings
from db.session import session_scope
from services.owners.service import create_owner, issue_key
from tests.paths import MODEL_DIR

# Both databases by default; CI and `make test` run both. Narrow with SHOEBOX_TEST_BACKENDS=sqlite.
BACKENDS = [b.strip() for b in os.environ.get("SHOEBOX_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]
POSTGRES_ADMIN_URL = os.environ.get(
    "SHOEBOX_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL database for this test session. Absent server = failure, never a skip."""
    with throwaway_postgres() as url:
        yield url


@pytest.fixture
def own_postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL database for one test that counts every row of its tables."""
    with throwaway_postgres() as url:
        yield url


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"shoebox_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        pytest.fail(
            f"PostgreSQL was asked for (SHOEBOX_TEST_BACKENDS) but {POSTGRES_ADMIN_URL} is unusable: {exc}"
        )
    yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def make_settings(
    backend: str, data_dir: Path, request: pytest.FixtureRequest, **overrides: object
) -> Settings:
    database_url = (
        request.getfixturevalue("postgres_url")
        if backend == "postgresql"
        else f"sqlite:///{data_dir / 'test.db'}"
    )
    values: dict[str, object] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "model_dir": MODEL_DIR,
        "job_poll_seconds": 0.05,
        "max_upload_bytes": 5 * 1024 * 1024,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def settings(
    backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Settings:
    return make_settings(backend, tmp_path_factory.mktemp(f"data-{backend}"), request)


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@dataclass
class OwnerAuth:
    id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def new_owner(client: TestClient) -> OwnerAuth:
    with session_scope(client.app.state.sessions) as db:  # type: ignore[attr-defined]
        owner = create_owner(db, name=f"owner-{uuid.uuid4().hex[:8]}")
        issued = issue_key(db, owner_id=owner.id)
    return OwnerAuth(id=owner.id, key=issued.key)


@pytest.fixture
def owner(client: TestClient) -> OwnerAuth:
    return new_owner(client)


@pytest.fixture
def other_owner(client: TestClient) -> OwnerAuth:
    return new_owner(client)
