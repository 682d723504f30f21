"""Alembic environment of the driftline store.

At runtime ``monitor.store.migrate`` passes an open connection (inside a transaction) in
``config.attributes["connection"]``. From the command line (``alembic`` with the
repository's alembic.ini) the URL is ``-x url=...`` or ``sqlalchemy.url`` of the ini file.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from monitor.config import StoreSettings
from monitor.store.db import create_store_engine
from monitor.store.migrate import migration_connection
from monitor.store.tables import Base

config = context.config
target_metadata = Base.metadata
if config.config_file_name is not None:  # the alembic command line, not driftline itself
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copying
        compare_type=True,
    )


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    return url or config.get_main_option("sqlalchemy.url") or "sqlite:///driftline.db"


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
    elif context.is_offline_mode():
        context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
    else:
        engine = create_store_engine(StoreSettings(url=_url()))
        try:
            with migration_connection(engine) as conn:
                _configure(conn)
                context.run_migrations()
        finally:
            engine.dispose()


run()
