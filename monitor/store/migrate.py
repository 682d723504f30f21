"""Alembic, driven from Python: the migrations ship inside the package, no alembic.ini needed.

``upgrade(engine)`` brings a database (empty or older) to the newest revision in one
transaction; on PostgreSQL an advisory lock makes concurrent upgrades wait for each other,
on SQLite foreign keys are off while it runs (SQLite rebuilds a table to alter it, and
dropping the old copy must not cascade) and checked before it commits.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from monitor.errors import StoreError
from monitor.store.sqlite import WRITE

__all__ = [
    "MIGRATIONS",
    "alembic_config",
    "current_revision",
    "downgrade",
    "head_revision",
    "migration_connection",
    "upgrade",
]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_PG_LOCK_KEY = 0x64726966746C696E  # "driftlin": one lock id for driftline's migrations


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for the packaged migrations, bound to ``connection`` if given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """The newest revision the packaged migrations define."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None for an empty database)."""
    with engine.connect() as conn:
        return _revision(conn)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database up to ``revision`` (default: the newest)."""
    with migration_connection(engine) as conn:
        command.upgrade(alembic_config(conn), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate the database down to ``revision`` (``"-1"`` for one step, ``"base"`` for empty)."""
    with migration_connection(engine) as conn:
        command.downgrade(alembic_config(conn), revision)


@contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection in the one transaction a migration runs in (see the module docstring)."""
    with engine.connect() as conn:
        conn.execution_options(**{WRITE: True})  # SQLite: BEGIN IMMEDIATE, one at a time
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            _sqlite_foreign_keys(conn, on=False)  # only takes effect outside a transaction
        try:
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
                before = _revision(conn)
                yield conn
                if sqlite and _revision(conn) != before:  # the check reads every row
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise StoreError(
                            f"the migration left rows without their parent: {broken[:5]}; "
                            "nothing was changed, please report this"
                        )
        finally:
            if sqlite:
                _sqlite_foreign_keys(conn, on=True)


def _revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _sqlite_foreign_keys(conn: Connection, *, on: bool) -> None:
    dbapi = conn.connection.dbapi_connection
    if dbapi is not None:
        dbapi.execute(f"PRAGMA foreign_keys = {'ON' if on else 'OFF'}")
