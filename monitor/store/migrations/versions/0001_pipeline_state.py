"""Models, reference profiles, window partials, closed windows, feature scores, offsets.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Timestamps are sa.DateTime(timezone=True) and JSON is sa.JSON() here: a migration never
# imports driftline's own column types, so it keeps working when they change.


def _at(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _json(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.JSON(), nullable=nullable)


def _model_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["model"], ["models.name"], name=f"fk_{table}_model_models")


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("task", sa.String(20), nullable=False),
        _at("created_at"),
        sa.PrimaryKeyConstraint("name", name="pk_models"),
    )
    op.create_table(
        "reference_profiles",
        sa.Column("hash", sa.String(128), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("format_version", sa.Integer(), nullable=False),
        _json("profile"),
        _at("created_at"),
        _model_fk("reference_profiles"),
        sa.PrimaryKeyConstraint("hash", name="pk_reference_profiles"),
    )
    op.create_table(
        "model_versions",
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("reference_hash", sa.String(128), nullable=True),
        _at("created_at"),
        _model_fk("model_versions"),
        sa.ForeignKeyConstraint(
            ["reference_hash"],
            ["reference_profiles.hash"],
            name="fk_model_versions_reference_hash_reference_profiles",
        ),
        sa.PrimaryKeyConstraint("model", "version", name="pk_model_versions"),
    )
    op.create_table(
        "window_partials",
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("window_key", sa.BigInteger(), nullable=False),
        sa.Column("topic", sa.String(249), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        _json("state"),
        sa.Column("n_predictions", sa.Integer(), nullable=False),
        _at("updated_at"),
        _model_fk("window_partials"),
        sa.PrimaryKeyConstraint(
            "model", "window_key", "topic", "partition", name="pk_window_partials"
        ),
    )
    op.create_table(
        "windows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(100), nullable=True),
        sa.Column("window_key", sa.BigInteger(), nullable=False),
        _at("window_start"),
        _at("window_end"),
        sa.Column("n_predictions", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        _at("as_of"),
        sa.Column("drift_share", sa.Float(), nullable=True),
        sa.Column("drift_detected", sa.Boolean(), nullable=True),
        sa.Column("health_score", sa.Float(), nullable=True),
        _json("performance", nullable=True),
        _json("estimated_performance", nullable=True),
        _json("data_quality", nullable=True),
        _json("health", nullable=True),
        _json("alerts", nullable=True),
        _json("line"),
        _at("finalised_at"),
        _model_fk("windows"),
        sa.PrimaryKeyConstraint("id", name="pk_windows"),
        sa.UniqueConstraint(
            "model", "window_key", "revision", name="uq_windows_model_window_key_revision"
        ),
    )
    op.create_index("ix_windows_model_window_start", "windows", ["model", "window_start"])
    op.create_table(
        "feature_scores",
        sa.Column("window_id", sa.Integer(), nullable=False),
        sa.Column("feature", sa.String(200), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("p_value", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("drift", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(
            ["window_id"],
            ["windows.id"],
            name="fk_feature_scores_window_id_windows",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("window_id", "feature", name="pk_feature_scores"),
    )
    op.create_table(
        "consumer_offsets",
        sa.Column("group_id", sa.String(255), nullable=False),
        sa.Column("topic", sa.String(249), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("group_id", "topic", "partition", name="pk_consumer_offsets"),
    )
    op.create_table(
        "pipeline_checkpoints",
        sa.Column("group_id", sa.String(255), nullable=False),
        sa.Column("topic", sa.String(249), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        _json("state"),
        _at("updated_at"),
        _model_fk("pipeline_checkpoints"),
        sa.PrimaryKeyConstraint(
            "group_id", "topic", "partition", "model", name="pk_pipeline_checkpoints"
        ),
    )


def downgrade() -> None:
    op.drop_table("pipeline_checkpoints")
    op.drop_table("consumer_offsets")
    op.drop_table("feature_scores")
    op.drop_index("ix_windows_model_window_start", table_name="windows")
    op.drop_table("windows")
    op.drop_table("window_partials")
    op.drop_table("model_versions")
    op.drop_table("reference_profiles")
    op.drop_table("models")
