"""A real PostgreSQL server for tests: started by ``scripts/postgres``, managed with psycopg.

Usage::

    server = start_postgres(tmp_path)         # a fresh cluster on 127.0.0.1, a free port
    url = server.create_database("t_1a2b")    # postgresql+psycopg://driftline@127.0.0.1:<port>/t_1a2b
    server.drop_database("t_1a2b")
    server.stop()
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

__all__ = ["POSTGRES_SCRIPT", "Postgres", "PostgresStartError", "start_postgres"]

POSTGRES_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "postgres"
START_TIMEOUT_S = 60.0
INSTALL_TIMEOUT_S = 900.0  # a first `apt-get install postgresql` on a fresh machine


class PostgresStartError(RuntimeError):
    """``scripts/postgres start`` failed; the message carries its output and log tail."""


class Postgres:
    """A running server: the URL of its `driftline` database, and how to stop it.

    ``checks_passwords`` says whether roles other than the URL's must give their password
    (true for the clusters ``scripts/postgres`` starts).
    """

    def __init__(self, url: str, workdir: Path | None, checks_passwords: bool = True) -> None:
        self.url = url
        self.workdir = workdir
        self.checks_passwords = checks_passwords
        self._stopped = False

    def __repr__(self) -> str:
        return f"Postgres(url={self.url!r}, workdir={str(self.workdir)!r})"

    @property
    def port(self) -> int:
        return make_url(self.url).port or 5432

    def url_of(self, database: str, **parts: str) -> str:
        """This server's URL for another database (and user, password ...), as a string."""
        url: URL = make_url(self.url).set(database=database, **parts)
        return url.render_as_string(hide_password=False)

    def execute(self, statement: sql.Composable | str, database: str | None = None) -> None:
        """Run one statement in autocommit mode (CREATE DATABASE cannot run in a transaction)."""
        url = make_url(self.url_of(database) if database else self.url)
        with psycopg.connect(
            host=url.host,
            port=url.port,
            user=url.username,
            password=url.password,
            dbname=url.database,
            autocommit=True,
            connect_timeout=10,
        ) as conn:
            conn.execute(statement if isinstance(statement, sql.Composable) else sql.SQL(statement))

    def create_database(self, name: str) -> str:
        """Create an empty database; return its URL."""
        self.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_of(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, closing whatever connections a test left open to it."""
        self.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )

    def stop(self) -> None:
        """Stop the server (fast shutdown); safe to call more than once."""
        if self._stopped or self.workdir is None:
            return
        self._stopped = True
        subprocess.run(
            [str(POSTGRES_SCRIPT), "stop", "--dir", str(self.workdir)],
            check=True,
            capture_output=True,
            timeout=90,
        )


def start_postgres(workdir: Path, timeout_s: float = START_TIMEOUT_S) -> Postgres:
    """Run ``scripts/postgres start --dir workdir`` and return the ready server.

    Installs the Debian package first when PostgreSQL is missing (needs root or sudo).
    """
    command = [str(POSTGRES_SCRIPT), "start", "--dir", str(workdir)]
    started = time.monotonic()
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout_s + INSTALL_TIMEOUT_S,
            check=False,
            env={**os.environ, "DRIFTLINE_PG_START_TIMEOUT_S": str(int(timeout_s))},
        )
    except subprocess.TimeoutExpired as err:
        Postgres("", workdir).stop()  # a server may be up without having been reported
        raise PostgresStartError(f"scripts/postgres start --dir {workdir} hung") from err
    prefix = "POSTGRES_URL="
    lines = [line for line in done.stdout.splitlines() if line.startswith(prefix)]
    if done.returncode != 0 or not lines:
        raise PostgresStartError(
            f"scripts/postgres start --dir {workdir} failed (exit {done.returncode}) "
            f"after {time.monotonic() - started:.1f} s:\n{done.stderr}{done.stdout}"
        )
    return Postgres(lines[-1].removeprefix(prefix), workdir)
