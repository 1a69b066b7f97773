"""Every PostgreSQL connection carries a statement timeout, so no request can hold the database
for minutes (issue 17, item 1)."""

import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from core.config import Settings
from db.session import is_statement_timeout, make_engine
from tests.conftest import BACKENDS

pytestmark = pytest.mark.skipif("postgresql" not in BACKENDS, reason="a PostgreSQL setting")


def test_a_runaway_statement_is_cancelled(postgres_url: str) -> None:
    engine = make_engine(postgres_url, statement_timeout_ms=300)
    started = time.monotonic()
    with pytest.raises(OperationalError) as raised, engine.connect() as connection:
        connection.execute(text("SELECT pg_sleep(5)"))
    assert is_statement_timeout(raised.value) and time.monotonic() - started < 3
    engine.dispose()


def test_the_service_default_bounds_statements() -> None:
    assert 0 < Settings().db_statement_timeout_ms <= 60_000
