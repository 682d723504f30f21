"""Pytest fixtures for the store's two backends: an SQLite file and a real PostgreSQL.

Load them with ``pytest_plugins = ["tests.services.pg_fixtures"]``:

    def test_offsets_round_trip(store_url):   # runs twice: [sqlite] and [postgresql]
        store = open_store(StoreSettings(url=store_url))
        ...

``store_url`` is a fresh, empty database per test: a file in ``tmp_path`` for SQLite, a
database with a unique name (dropped after the test) for PostgreSQL. The PostgreSQL server
(``postgres_server``) starts once per session, only when a test first needs it, and is
always stopped at the end. Select one backend with ``-k sqlite`` or ``-k postgresql``.

Set ``DRIFTLINE_POSTGRES_URL=postgresql+psycopg://user[:password]@host:port/db`` to use a
server you started yourself (its user must be allowed to create databases).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services.postgres import Postgres, start_postgres

__all__ = ["BACKENDS", "postgres_server", "store_url"]

BACKENDS = ("sqlite", "postgresql")
EXTERNAL_URL_ENV = "DRIFTLINE_POSTGRES_URL"


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    """One real PostgreSQL server for the whole test session, stopped at its end."""
    external = os.environ.get(EXTERNAL_URL_ENV)
    if external:
        server = Postgres(external, workdir=None, checks_passwords=False)
    else:
        server = start_postgres(tmp_path_factory.mktemp("postgres"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, empty database of each backend, removed after the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/driftline.db"
        return
    server: Postgres = request.getfixturevalue("postgres_server")
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = server.create_database(name)
    try:
        yield url
    finally:
        server.drop_database(name)
