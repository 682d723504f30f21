"""The typed configuration: frozen dataclasses every module receives.

``monitor.config`` builds them from the YAML file (and re-exports them); nothing else
reads the environment. Constructor arguments are configuration, with their defaults here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = [
    "AlertDelivery",
    "AlertPolicy",
    "AlertRule",
    "AlertSettings",
    "Config",
    "DriftMethod",
    "DriftSettings",
    "FeatureKind",
    "FeatureSpec",
    "HttpSettings",
    "JoinSettings",
    "KafkaSettings",
    "ModelConfig",
    "ReferenceSource",
    "RetrainSettings",
    "Severity",
    "StoreSettings",
    "Task",
    "Topics",
    "WebhookRoute",
    "WindowSpec",
]

FeatureKind = Literal["numeric", "categorical"]
DriftMethod = Literal["auto", "psi", "ks", "chisquare", "jensenshannon", "wasserstein"]
Task = Literal["classification", "regression"]


@dataclass(frozen=True)
class Topics:
    predictions: str = "driftline.predictions"
    features: str = "driftline.features"
    labels: str = "driftline.labels"

    def stream_of(self, topic: str) -> str | None:
        """The stream name ("predictions", ...) a topic carries, or None."""
        for stream in ("predictions", "features", "labels"):
            if getattr(self, stream) == topic:
                return stream
        return None


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str = "127.0.0.1:9092"
    group_id: str = "driftline"
    topics: Topics = field(default_factory=Topics)
    client_id: str = "driftline"
    max_message_bytes: int = 1_048_576
    poll_max_records: int = 2000
    poll_timeout_ms: int = 500
    shutdown_timeout_s: float = 10.0
    # Extra kafka-python client settings passed through unchanged (security_protocol,
    # sasl_mechanism, sasl_plain_username, ssl_cafile, ...). The SASL password is resolved
    # from the environment variable named by `sasl_password_env` into `sasl_plain_password`.
    security: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class StoreSettings:
    url: str = "sqlite:///driftline.db"
    password: str | None = None  # resolved from `password_env`
    retention_s: float = 30 * 86400.0  # state and raw rows older than this are pruned


@dataclass(frozen=True)
class HttpSettings:
    """The daemon's HTTP server (probes, ``/metrics``, the read-only API)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = field(default=None, repr=False)  # from `token_env`; needed off loopback


@dataclass(frozen=True)
class JoinSettings:
    """Bounds of the (model, event_id) join buffer, per model."""

    max_pending: int = 100_000  # unjoined features/labels waiting for their prediction
    max_age_s: float = 7 * 86400.0  # event-time age after which they are given up
    max_predictions: int = 1_000_000  # predictions remembered for late labels and duplicates


@dataclass(frozen=True)
class WindowSpec:
    size: int | None = None  # predictions per window
    duration_s: float | None = None  # event-time duration, aligned to the epoch
    grace_s: float = 30.0
    idle_timeout_s: float = 300.0  # live only: a quiet model's clock follows the wall clock


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    kind: FeatureKind
    method: DriftMethod = "auto"
    threshold: float | None = None  # overrides the method's default threshold
    critical: bool = False  # its drift alone makes the window drift


@dataclass(frozen=True)
class DriftSettings:
    bins: int = 10  # quantile bins per numeric feature, plus underflow and overflow
    sample_size: int = 1000  # reservoir of raw values per feature per window
    fdr: float = 0.05  # Benjamini-Hochberg false discovery rate across features
    drift_share: float = 0.1  # window drifts when this share of features drift
    method: DriftMethod = "auto"
    # distance thresholds (drift when score >= threshold) and p-value level for tests
    thresholds: dict[str, float] = field(default_factory=dict)
    # effect-size floors: a significant test still needs this much distance to count
    min_effect: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    # performance alert: accuracy drop (absolute) or MAE increase (relative to the
    # reference) that the window's figure exceeds with ~98% confidence (Wilson/2 s.e.)
    performance_drop: float = 0.05
    min_labels: int = 30  # labels a window needs before its performance can alert
    # data-quality alert: missing, type-error, out-of-range or unseen rate above the
    # reference's by this much (read at the rate's lower 2 s.e. bound)
    quality_margin: float = 0.05


@dataclass(frozen=True)
class ReferenceSource:
    path: Path | None = None  # CSV or Parquet, absolute (resolved against the config folder)
    uri: str | None = None  # an MLflow model URI whose run holds the reference
    target: str | None = None
    prediction: str | None = None
    probability: str | None = None


Severity = Literal["info", "warning", "critical"]


@dataclass(frozen=True)
class AlertRule:
    """When one kind of alert fires and resolves (per model)."""

    enabled: bool = True
    severity: Severity = "warning"
    pending: int = 1  # consecutive bad windows before it fires
    keep_firing: int = 3  # consecutive good windows before it resolves: no flapping
    cooldown_s: float = 1800.0  # after resolving, no new episode of this kind for this long
    below: float | None = None  # health rule only: fires when health_score < below


@dataclass(frozen=True)
class AlertPolicy:
    drift: AlertRule = field(default_factory=AlertRule)
    performance: AlertRule = field(default_factory=lambda: AlertRule(severity="critical"))
    data_quality: AlertRule = field(default_factory=AlertRule)
    health: AlertRule = field(
        default_factory=lambda: AlertRule(enabled=False, severity="critical", below=50.0)
    )


@dataclass(frozen=True)
class WebhookRoute:
    """A receiver of alert webhooks (top-level ``alerts.routes``)."""

    name: str
    url: str
    format: Literal["json", "slack"] = "json"
    secret: str | None = None  # resolved from `secret_env`; signs X-Driftline-Signature
    models: tuple[str, ...] = ()  # empty: every model
    min_severity: Severity = "info"
    kinds: tuple[str, ...] = ()  # empty: every kind


@dataclass(frozen=True)
class AlertDelivery:
    timeout_s: float = 5.0
    initial_backoff_s: float = 1.0
    max_backoff_s: float = 300.0
    give_up_after_s: float = 86400.0


@dataclass(frozen=True)
class AlertSettings:
    routes: tuple[WebhookRoute, ...] = ()
    delivery: AlertDelivery = field(default_factory=AlertDelivery)


@dataclass(frozen=True)
class RetrainSettings:
    """The retrain-and-register job of one model (MLflow)."""

    enabled: bool = False
    on: tuple[str, ...] = ("drift", "performance")  # alert kinds that start a retrain
    tracking_uri: str | None = None  # MLflow tracking server; None: MLflow's default
    registered_model: str | None = None  # None: the model's name
    training_entry_point: str | None = None  # "package.module:function"; None: refit
    horizon_s: float = 7 * 86400.0  # recent labelled events used for training/evaluation
    holdout_fraction: float = 0.3  # of recent labelled events, kept to compare the two
    metric: str = "accuracy"  # accuracy, f1_macro, roc_auc (higher better); mae, rmse (lower)
    margin: float = 0.0  # the challenger must beat the champion by more than this
    cooldown_s: float = 6 * 3600.0
    max_per_day: int = 3
    schedule: str | None = None  # optional cron expression (APScheduler CronTrigger)


@dataclass(frozen=True)
class ModelConfig:
    name: str
    task: Task
    reference: ReferenceSource
    window: WindowSpec
    features: tuple[FeatureSpec, ...] | None = None  # None: inferred from the reference
    drift: DriftSettings = field(default_factory=DriftSettings)
    alerts: AlertPolicy = field(default_factory=AlertPolicy)
    retrain: RetrainSettings = field(default_factory=RetrainSettings)


@dataclass(frozen=True)
class Config:
    models: tuple[ModelConfig, ...]
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    join: JoinSettings = field(default_factory=JoinSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    path: Path | None = None  # the file it was loaded from

    def model(self, name: str) -> ModelConfig | None:
        for model in self.models:
            if model.name == name:
                return model
        return None
