"""Alerts, their webhook deliveries (outbox) and retrain runs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Timestamps are sa.DateTime(timezone=True) and JSON is sa.JSON() here: a migration never
# imports driftline's own column types, so it keeps working when they change.


def _at(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.String(128), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(100), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _at("window_start", nullable=True),
        _at("window_end", nullable=True),
        sa.Column("health_score", sa.Float(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        _at("created_at"),
        _at("resolved_at", nullable=True),
        sa.ForeignKeyConstraint(["model"], ["models.name"], name="fk_alerts_model_models"),
        sa.PrimaryKeyConstraint("alert_id", name="pk_alerts"),
    )
    op.create_index("ix_alerts_model_created_at", "alerts", ["model", "created_at"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.String(128), nullable=False),
        sa.Column("route", sa.String(200), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _at("next_attempt_at"),
        _at("delivered_at", nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _at("gave_up_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.alert_id"], name="fk_outbox_alert_id_alerts", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
    )
    op.create_index(
        "ix_outbox_delivered_at_next_attempt_at", "outbox", ["delivered_at", "next_attempt_at"]
    )
    op.create_table(
        "retrain_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("trigger_alert_id", sa.String(128), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("mlflow_run_id", sa.String(64), nullable=True),
        sa.Column("registered_version", sa.String(100), nullable=True),
        sa.Column("promoted", sa.Boolean(), nullable=False),
        _at("started_at"),
        _at("finished_at", nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["model"], ["models.name"], name="fk_retrain_runs_model_models"),
        sa.ForeignKeyConstraint(
            ["trigger_alert_id"],
            ["alerts.alert_id"],
            name="fk_retrain_runs_trigger_alert_id_alerts",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_retrain_runs"),
    )
    op.create_index("ix_retrain_runs_model_started_at", "retrain_runs", ["model", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_retrain_runs_model_started_at", table_name="retrain_runs")
    op.drop_table("retrain_runs")
    op.drop_index("ix_outbox_delivered_at_next_attempt_at", table_name="outbox")
    op.drop_table("outbox")
    op.drop_index("ix_alerts_model_created_at", table_name="alerts")
    op.drop_table("alerts")
