"""Engine and session factory, plus schema upgrade on start."""

import math
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from alembic import command
from core.config import REPO_ROOT

ALEMBIC_DIR = REPO_ROOT / "alembic"


def _sqlite_on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    dbapi_connection.execute("PRAGMA foreign_keys=ON")
    dbapi_connection.execute("PRAGMA journal_mode=WAL")
    dbapi_connection.execute("PRAGMA busy_timeout=30000")
    # Some SQLite builds lack the math functions the GPS radius filter uses.
    for name, fn in (
        ("sin", math.sin),
        ("cos", math.cos),
        ("asin", math.asin),
        ("sqrt", math.sqrt),
        ("radians", math.radians),
        ("floor", math.floor),  # the map's grid cells
    ):
        dbapi_connection.create_function(name, 1, fn, deterministic=True)


def _postgres_statement_timeout(timeout_ms: int) -> Callable[[Any, object], None]:
    def on_connect(dbapi_connection: Any, _record: object) -> None:
        # Per connection, so it covers every query of every request and worker; a runaway query
        # is cancelled by the server instead of holding a connection and a CPU for minutes.
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET statement_timeout = {int(timeout_ms)}")
        dbapi_connection.commit()

    return on_connect


def is_statement_timeout(error: BaseException) -> bool:
    """True for PostgreSQL's "canceling statement due to statement timeout" (SQLSTATE 57014)."""
    return getattr(getattr(error, "orig", None), "sqlstate", None) == "57014"


def make_engine(database_url: str, statement_timeout_ms: int = 0) -> Engine:
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(database_url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_on_connect)
        return engine
    engine = create_engine(database_url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    if statement_timeout_ms > 0 and engine.dialect.name == "postgresql":
        event.listen(engine, "connect", _postgres_statement_timeout(statement_timeout_ms))
    return engine


@lru_cache(maxsize=8)
def get_engine(database_url: str, statement_timeout_ms: int = 0) -> Engine:
    return make_engine(database_url, statement_timeout_ms)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work: commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_schema(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade_schema(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)
