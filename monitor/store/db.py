"""Opening the store: the engine of ``store.url``, its password, and the schema at head.

Two backends: an SQLite file (the default; WAL journal, ``synchronous=NORMAL``, a busy
timeout, foreign keys on) and PostgreSQL through psycopg 3. The password never comes from
the URL: :class:`~monitor.config.StoreSettings` carries it, resolved from the environment
variable the config names, and it is set into the URL here. A relative SQLite path stays
relative to the working directory (the config loader has already made it relative to the
config file's folder).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from monitor.config import StoreSettings
from monitor.errors import StoreError
from monitor.store.failures import masked, store_errors
from monitor.store.migrate import upgrade
from monitor.store.repository import Store
from monitor.store.sqlite import configure_sqlite
from monitor.store.utc import utc_now

__all__ = ["create_store_engine", "engine_url", "open_store"]

CONNECT_TIMEOUT_S = 10


def open_store(
    settings: StoreSettings, *, clock: Callable[[], datetime] = utc_now, migrate: bool = True
) -> Store:
    """Connect to the store and bring its schema to the newest migration.

    ``migrate=False`` leaves the schema as it is (for tools that only read).
    Raises :class:`~monitor.errors.StoreError` when the database cannot be reached or
    migrated; the message masks the password.
    """
    engine = create_store_engine(settings)
    try:
        if migrate:
            with store_errors(engine.url, "migrating the schema to the newest version"):
                upgrade(engine)
        else:
            with store_errors(engine.url, "connecting"), engine.connect():
                pass
    except BaseException:
        engine.dispose()
        raise
    return Store(engine, clock=clock)


def engine_url(settings: StoreSettings) -> URL:
    """``settings.url`` parsed, with ``settings.password`` set into it when given."""
    try:
        url = make_url(settings.url)
    except ArgumentError as err:
        raise StoreError(
            f"store.url {settings.url!r} is not a database URL; "
            "give sqlite:///path.db or postgresql+psycopg://user@host:5432/db"
        ) from err
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(
            f"store.url {masked(url)}: unsupported database {url.get_backend_name()!r}; "
            "use sqlite or postgresql"
        )
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")  # psycopg 3 is the driver installed
    if settings.password is not None and url.get_backend_name() == "postgresql":
        url = url.set(password=settings.password)
    return url


def create_store_engine(settings: StoreSettings) -> Engine:
    """An engine for the store; connects lazily."""
    url = engine_url(settings)
    options: dict[str, Any] = {
        "json_serializer": _json_dumps,
        "json_deserializer": orjson.loads,
    }
    if url.get_backend_name() == "sqlite":
        _make_parent_folder(url)
        engine = create_engine(url, **options)
        configure_sqlite(engine)
        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
        **options,
    )


def _json_dumps(value: object) -> str:
    # orjson writes NaN and infinities as null, which PostgreSQL's json type requires
    option = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    return orjson.dumps(value, option=option).decode()


def _make_parent_folder(url: URL) -> None:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
