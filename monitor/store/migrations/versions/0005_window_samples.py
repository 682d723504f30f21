"""Window samples: each closed window's retained rows, for drill-down reports.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Timestamps are sa.DateTime(timezone=True) and JSON is sa.JSON() here: a migration never
# imports driftline's own column types, so it keeps working when they change.


def upgrade() -> None:
    op.create_table(
        "window_samples",
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("window_key", sa.BigInteger(), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("rows", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["model"], ["models.name"], name="fk_window_samples_model_models"),
        sa.PrimaryKeyConstraint("model", "window_key", name="pk_window_samples"),
    )


def downgrade() -> None:
    op.drop_table("window_samples")
