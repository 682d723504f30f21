"""Scale-out: each partition's watermark per model, and the references to a window partial.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "partition_watermarks",
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("topic", sa.String(249), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("watermark_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["model"], ["models.name"],
                                name="fk_partition_watermarks_model_models"),
        sa.PrimaryKeyConstraint("model", "topic", "partition", name="pk_partition_watermarks"),
    )
    with op.batch_alter_table("window_partials") as batch:
        batch.add_column(sa.Column("refs", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("window_partials") as batch:
        batch.drop_column("refs")
    op.drop_table("partition_watermarks")
