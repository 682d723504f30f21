"""Training rows (features, prediction and label per event) and retrain runs' request ids.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Timestamps are sa.DateTime(timezone=True) and JSON is sa.JSON() here: a migration never
# imports driftline's own column types, so it keeps working when they change.


def _at(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "training_rows",
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=True),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("prediction", sa.JSON(), nullable=True),
        sa.Column("label", sa.JSON(), nullable=True),
        _at("labelled_at", nullable=True),
        _at("updated_at"),
        sa.ForeignKeyConstraint(["model"], ["models.name"], name="fk_training_rows_model_models"),
        sa.PrimaryKeyConstraint("model", "event_id", name="pk_training_rows"),
    )
    op.create_index("ix_training_rows_model_ts_ms", "training_rows", ["model", "ts_ms"])
    # Runs saved before this revision had no request id: each gets one of its own.
    with op.batch_alter_table("retrain_runs") as batch:
        batch.add_column(sa.Column("request_id", sa.String(64), nullable=True))
    op.execute(
        sa.text(
            "UPDATE retrain_runs SET request_id = 'run-' || CAST(id AS VARCHAR(20)) "
            "WHERE request_id IS NULL"
        )
    )
    with op.batch_alter_table("retrain_runs") as batch:
        batch.alter_column("request_id", existing_type=sa.String(64), nullable=False)
        batch.create_unique_constraint("uq_retrain_runs_request_id", ["request_id"])


def downgrade() -> None:
    with op.batch_alter_table("retrain_runs") as batch:
        batch.drop_constraint("uq_retrain_runs_request_id", type_="unique")
        batch.drop_column("request_id")
    op.drop_index("ix_training_rows_model_ts_ms", table_name="training_rows")
    op.drop_table("training_rows")
