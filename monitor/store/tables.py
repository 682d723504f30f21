"""The store's tables (SQLAlchemy 2 typed declarative models).

Conventions: every timestamp is a :class:`~monitor.store.utc.UtcDateTime` (aware UTC);
JSON columns use ``sqlalchemy.JSON`` (``json`` on PostgreSQL, text on SQLite) and hold plain
dicts, with SQL NULL for "none" (:class:`JsonValue` wraps any other JSON value in a dict);
constraint names follow ``NAMING`` so migrations can name them on both backends. A
``window_key`` is the pipeline's integer key of a window (a count for count windows,
``start // duration`` for duration windows). The migrations in ``migrations/versions/``
must create exactly these tables; ``tests/test_migrations.py`` checks that they agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from monitor.store.utc import UtcDateTime

__all__ = [
    "Alert",
    "Base",
    "ConsumerOffset",
    "FeatureScore",
    "JsonValue",
    "Model",
    "ModelVersion",
    "Outbox",
    "PartitionWatermark",
    "PipelineCheckpoint",
    "ReferenceProfile",
    "RetrainRun",
    "TrainingRow",
    "Window",
    "WindowPartial",
    "WindowSample",
]

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Json = JSON(none_as_null=True)
Name = String(200)  # a model or feature name
Version = String(100)
Topic = String(249)  # Kafka's limit
GroupId = String(255)
MODEL_FK = "models.name"


class JsonValue(TypeDecorator[Any]):
    """Any JSON value but null, stored as ``{"value": v}`` in a JSON column (None is NULL).

    SQLite gives a JSON column NUMERIC affinity: a bare ``1.0`` would be stored as the
    integer 1 and a bare number could not be read back as JSON. In an object it stays text.
    """

    impl = Json
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> dict[str, Any] | None:
        return None if value is None else {"value": value}

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else value["value"]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Model(Base):
    """A monitored model, as named in the config."""

    __tablename__ = "models"
    name: Mapped[str] = mapped_column(Name, primary_key=True)
    task: Mapped[str] = mapped_column(String(20))  # classification | regression
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ReferenceProfile(Base):
    """A reference profile (``ReferenceProfile.to_dict()``), keyed by its content hash."""

    __tablename__ = "reference_profiles"
    hash: Mapped[str] = mapped_column(String(128), primary_key=True)
    model: Mapped[str] = mapped_column(ForeignKey(MODEL_FK))
    format_version: Mapped[int] = mapped_column(Integer)
    profile: Mapped[dict[str, Any]] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ModelVersion(Base):
    """A version of a model seen in predictions, and the reference it is compared with."""

    __tablename__ = "model_versions"
    model: Mapped[str] = mapped_column(ForeignKey(MODEL_FK), primary_key=True)
    version: Mapped[str] = mapped_column(Version, primary_key=True)
    reference_hash: Mapped[str | None] = mapped_column(ForeignKey("reference_profiles.hash"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class WindowPartial(Base):
    """One window's state from the messages of one partition, once that partition's shard
    closed it; merged with the other partitions' when the window is finalised, and kept
    after that while predictions point at it (``refs``), for the revisions late labels make.
    ``topic`` is the predictions topic; a count window's one shard has partition -1."""

    __tablename__ = "window_partials"
    model: Mapped[str] = mapped_column(ForeignKey(MODEL_FK), primary_key=True)
    window_key: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    topic: Mapped[str] = mapped_column(Topic, primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(Json)
    n_predictions: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    refs: Mapped[int] = mapped_column(Integer, server_default="0")


class PartitionWatermark(Base):
    """The event time a partition has passed for a model: its windows that end (plus
    grace) before it are closed there. Finalisation waits for every partition's."""

    __tablename__ = "partition_watermarks"
    model: Mapped[str] = mapped_column(ForeignKey(MODEL_FK), primary_key=True)
    topic: Mapped[str] = mapped_column(Topic, primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    watermark_ms: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Window(Base):
    """One revision of a closed window: the contract line and its figures as columns."""

    __tablename__ = "windows"
    __table_args__ = (
        UniqueConstraint("model", "window_key", "revision"),
        Index(None, "model", "window_start"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(ForeignKey(MODEL_FK))
    model_version: Mapped[str | None] = mapped_column(Version)
    window_key: Mapped[int] = mapped_column(BigInteger)
    window_start: Mapped[datetime] = mapped_column(UtcDateTime)
    window_end: Mapped[datetime] = mapped_column(UtcDateTime)
    n_predictions: Mapped[int] = mapped_column(Integer)
    revision: Mapped[int] = mapped_column(Integer)
    as_of: Mapped[datetime] = mapped_column(UtcDateTime)
    drift_share: Mapped[float | None] = mapped_column(Float)
    drift_detected: Mapped[bool | None] = mapped_column(Boolean)
    health_score: Mapped[float | None] = mapped_column(Float)
    performance: Mapped[dict[str, Any] | None] = mapped_column(Json)  # with n_labels
    estimated_performance: Mapped[dict[str, Any] | None] = mapped_column(Json)
    data_quality: Mapped[dict[str, Any] | None] = mapped_column(Json)
    health: Mapped[dict[str, Any] | None] = mapped_column(Json)
    alerts: Mapped[list[str] | None] = mapped_column(Json)
    line: Mapped[dict[str, Any]] = mapped_column(Json)  # the full contract line
    finalised_at: Mapped[datetime] = mapped_column(UtcDateTime)


class WindowSample(Base):
    """The retained row sample of a window, saved when it first closed (for reports).

    ``columns`` lists ``{"name", "kind"}`` per feature; ``rows`` the sampled rows, each a
    list of values in that order (categories decoded, None for missing).
    """

    __tablename__ = "window_samples"
    model: Mapped[str] = mapped_column(ForeignKey(MODEL_FK), primary_key=True)
    window_key: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    columns: Mapped[list[dict[str, str]]] = mapped_column(Json)
    rows: Mapped[list[list[Any]]] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class FeatureScore(Base):
    """The drift score of one feature in one window revision."""

    __tablename__ = "feature_scores"
    window_id: Mapped[int] = mapped_column(
        ForeignKey("windows.id", ondelete="CASCADE"), primary_key=True
    )
    feature: Mapped[str] = mapped_column(Name, primary_key=True)
    method: Mapped[str] = mapped_column(String(32))
    score: Mapped[float | None] = mapped_column(Float)
    p_value: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    drift: Mapped[bool | None] = mapped_column(Boolean)


class ConsumerOffset(Base):
    """The next offset to consume per partition, written with the effects before it."""

    __tablename__ = "consumer_offsets"
    group_id: Mapped[str] = mapped_column(GroupId, primary_key=True)
    topic: Mapped[str] = mapped_column(Topic, primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    next_offset: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PipelineCheckpoint(Base):
    """The join state of one partition for one model (what restarting needs besides windows)."""

    __tablename__ = "pipeline_checkpoints"
    group_id: Mapped[str] = mapped_column(GroupId, primary_key=True)
    topic: Mapped[str] = mapped_column(Topic, primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(ForeignKey(MODEL_FK), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(Json)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Alert(Base):
    """An alert as sent to webhooks (contract section 4), by its stable ``alert_id``."""

    __tablename__ = "alerts"
    __table_args__ = (Index(None, "model", "created_at"),)
    alert_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    model: Mapped[str] = mapped_column(ForeignKey(MODEL_FK))
    model_version: Mapped[str | None] = mapped_column(Version)
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # firing | resolved
    window_start: Mapped[datetime | None] = mapped_column(UtcDateTime)
    window_end: Mapped[datetime | None] = mapped_column(UtcDateTime)
    health_score: Mapped[float | None] = mapped_column(Float)
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Outbox(Base):
    """One delivery of an alert to one route, retried until acknowledged or given up."""

    __tablename__ = "outbox"
    __table_args__ = (Index(None, "delivered_at", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.alert_id", ondelete="CASCADE"))
    route: Mapped[str] = mapped_column(String(200))
    body: Mapped[dict[str, Any]] = mapped_column(Json)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    gave_up_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class RetrainRun(Base):
    """One run of the retrain job and what came of it in MLflow."""

    __tablename__ = "retrain_runs"
    __table_args__ = (Index(None, "model", "started_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(ForeignKey(MODEL_FK))
    request_id: Mapped[str] = mapped_column(String(64), unique=True)  # one run per request
    trigger_alert_id: Mapped[str | None] = mapped_column(ForeignKey("alerts.alert_id"))
    status: Mapped[str] = mapped_column(String(16))  # running | succeeded | failed
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    registered_version: Mapped[str | None] = mapped_column(Version)
    promoted: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    detail: Mapped[dict[str, Any] | None] = mapped_column(Json)


class TrainingRow(Base):
    """One prediction event kept for retraining: its features, prediction and label.

    A label can arrive before its prediction: the row then has ``features == {}`` and
    ``ts_ms`` NULL until the prediction's features complete it.
    """

    __tablename__ = "training_rows"
    __table_args__ = (Index(None, "model", "ts_ms"),)
    model: Mapped[str] = mapped_column(ForeignKey(MODEL_FK), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    ts_ms: Mapped[int | None] = mapped_column(BigInteger)  # the prediction's event time
    features: Mapped[dict[str, Any]] = mapped_column(Json)
    prediction: Mapped[Any] = mapped_column(JsonValue, nullable=True)
    label: Mapped[Any] = mapped_column(JsonValue, nullable=True)
    labelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
