"""PostgreSQL: states uncompressed, window samples compressed with lz4 (when it has it).

PostgreSQL's default TOAST compression (pglz) of a large JSON document of numbers costs
several times the write itself: a 400 KB document took 18 ms compressed with pglz, 4 ms
with lz4 and 4 ms not compressed (``bench/pg_toast.py``, PostgreSQL 15, BENCHMARKS.md). Checkpoint
and partial states are rewritten at every commit, so they are stored out of line without
compression (``STORAGE EXTERNAL``); window samples are written once and kept for the
retention period, so they are compressed with lz4 where the server was built with it.
SQLite does not compress.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATE_COLUMNS = (("pipeline_checkpoints", "state"), ("window_partials", "state"))
SAMPLE_COLUMNS = (("window_samples", "rows"),)


def _change(storage: str, compression: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table, column in STATE_COLUMNS:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STORAGE {storage}")
    methods = bind.execute(sa.text(
        "SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")).scalar()
    if methods and "lz4" in methods:  # PostgreSQL 14+ built with lz4
        for table, column in SAMPLE_COLUMNS:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION {compression}")


def upgrade() -> None:
    _change("EXTERNAL", "lz4")


def downgrade() -> None:
    _change("EXTENDED", "DEFAULT")
