"""The migrations upgrade and downgrade cleanly on SQLite and PostgreSQL."""

from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from db.models import Base
from db.session import downgrade_schema, upgrade_schema
from tests.conftest import BACKENDS


@pytest.fixture(params=BACKENDS)
def empty_database(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrate.db'}"
        return
    base_url = request.getfixturevalue("postgres_url")
    engine = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS migrate_test CASCADE"))
        conn.execute(text("CREATE SCHEMA migrate_test"))
    yield base_url + ("&" if "?" in base_url else "?") + "options=-csearch_path%3Dmigrate_test"
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS migrate_test CASCADE"))
    engine.dispose()


def test_upgrade_downgrade_upgrade(empty_database: str) -> None:
    upgrade_schema(empty_database)
    engine = create_engine(empty_database)
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    downgrade_schema(empty_database, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade_schema(empty_database)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()
