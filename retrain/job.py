"""The retrain job: refit the champion on fresh data, compare, register, maybe promote.

``run_retrain`` does, in this order (each step named in a failure's reason):

1. load the version under alias ``champion`` of the registered model;
2. build the training set and the held-out slice (``retrain.dataset``);
3. fit the challenger (``retrain.training``): the champion's estimator refitted with the
   same parameters, or the configured ``training_entry_point``;
4. score both on the held-out slice and run the gate (``retrain.gate``);
5. write the new reference: the training rows with the challenger's outputs, and their
   profile (``retrain.new_reference``);
6. log params, metrics, the sklearn model and the two files in one MLflow run;
7. register a new version, created with tags naming the request, the triggering alert and
   window and the gate's decision (``driftline.gate``);
8. point ``challenger`` at it; then, only when the gate passed, point ``champion`` at it.

Any failure (MLflow unreachable, no champion, unusable data, a failing fit) ends the job
with a ``failed`` outcome whose reason names the step, never an exception. The aliases
move last, challenger first: a failure leaves ``champion`` where it was, and ``challenger``
only ever names a version that registered completely.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import structlog
from mlflow import MlflowClient

from monitor.config import ModelConfig, RetrainSettings
from monitor.engine.profile import infer_features
from monitor.errors import RetrainError
from retrain import registry
from retrain.dataset import TrainingSet, build_training_set
from retrain.evaluate import TASK_METRICS, evaluate
from retrain.gate import GateResult, compare
from retrain.new_reference import write_reference_files
from retrain.outcome import (
    RetrainOutcome,
    RetrainRequest,
    Status,
    outcome_alerts,
    started_alert,
)
from retrain.registry import bootstrap_champion
from retrain.training import fit_challenger

__all__ = [
    "RetrainOutcome",
    "RetrainRequest",
    "bootstrap_champion",
    "outcome_alerts",
    "run_retrain",
    "started_alert",
]

log = structlog.get_logger("driftline.retrain")
MAX_REASON_CHARS = 600
N_STEPS = 10  # the steps ``_run`` enters when the challenger is promoted (for progress bars)


@dataclass
class _Progress:
    """How far the job got: what a failed outcome reports."""

    step: str = "starting"
    champion_version: str | None = None
    run_id: str | None = None
    run_url: str | None = None
    version: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    gate: GateResult | None = None
    data: dict[str, Any] = field(default_factory=dict)
    on_step: Callable[[str], object] | None = None

    def enter(self, step: str) -> None:
        self.step = step
        if self.on_step is not None:
            self.on_step(step)


def run_retrain(
    request: RetrainRequest,
    settings: RetrainSettings,
    *,
    recent: pd.DataFrame | None,
    reference: pd.DataFrame,
    model_config: ModelConfig,
    client: MlflowClient | None = None,
    on_step: Callable[[str], object] | None = None,
) -> RetrainOutcome:
    """Retrain ``model_config``'s model as the module docstring says; never raises.

    ``reference`` is the reference frame, ``recent`` the recent labelled rows (features and
    target columns, oldest first; ``None`` or empty: none). ``client`` (default: one for
    ``settings.tracking_uri``) must talk to the same server as the tracking URI.
    ``on_step(name)`` is called as each step starts (at most ``N_STEPS``).
    """
    registered = settings.registered_model or model_config.name
    progress = _Progress(on_step=on_step)
    log.info("retrain_started", model=model_config.name, request_id=request.request_id)
    try:
        with registry.tracking(settings.tracking_uri):
            mlflow_client = client or MlflowClient()
            promoted = _run(
                request,
                settings,
                recent=recent,
                reference=reference,
                model=model_config,
                client=mlflow_client,
                progress=progress,
            )
    except Exception as err:  # every failure becomes a failed outcome (and an alert)
        reason = f"{progress.step} failed: {type(err).__name__}: {err}"
        reason = " ".join(reason.split())[:MAX_REASON_CHARS]
        log.warning("retrain_failed", model=model_config.name, step=progress.step, error=reason)
        return _outcome("failed", model_config.name, registered, progress, reason=reason)
    log.info(
        "retrain_succeeded",
        model=model_config.name,
        version=progress.version,
        promoted=promoted,
        gate=progress.gate.reason if progress.gate else None,
    )
    return _outcome(
        "succeeded", model_config.name, registered, progress, promoted=promoted, reason=""
    )


def _run(
    request: RetrainRequest,
    settings: RetrainSettings,
    *,
    recent: pd.DataFrame | None,
    reference: pd.DataFrame,
    model: ModelConfig,
    client: MlflowClient,
    progress: _Progress,
) -> bool:
    registered = settings.registered_model or model.name
    progress.enter("checking the settings")
    if settings.metric not in TASK_METRICS[model.task]:
        raise RetrainError(
            f"metric {settings.metric!r} does not suit a {model.task} model; "
            f"use one of {', '.join(TASK_METRICS[model.task])}"
        )
    progress.enter(f"loading the {registry.CHAMPION} of {registered!r}")
    champion_version = client.get_model_version_by_alias(registered, registry.CHAMPION)
    progress.champion_version = str(champion_version.version)
    champion = registry.load_version(registered, progress.champion_version)

    progress.enter("building the training set")
    data = _training_set(champion, recent, reference, model, settings)
    progress.data = data.summary()

    progress.enter("training the challenger")
    challenger = fit_challenger(champion, settings.training_entry_point, data)

    progress.enter("scoring champion and challenger on the holdout")
    scores = {
        "champion": evaluate(champion, data.X_holdout, data.y_holdout, model.task),
        "challenger": evaluate(challenger, data.X_holdout, data.y_holdout, model.task),
    }
    progress.metrics = {
        f"{who}_{name}": value
        for who, values in scores.items()
        for name, value in values.items()
        if not math.isnan(value)  # undefined on this holdout: left out
    }
    metric = settings.metric
    gate = compare(
        metric, scores["champion"][metric], scores["challenger"][metric], settings.margin
    )
    progress.gate = gate

    trigger = {
        "driftline.request_id": request.request_id,
        "driftline.trigger_alert_id": request.trigger_alert_id,
        "driftline.trigger_kind": request.trigger_kind,
        "driftline.trigger_window_start": request.window_start,
        "driftline.trigger_window_end": request.window_end,
        "driftline.champion_version": progress.champion_version,
        "driftline.gate": gate.tag(),
    }
    tags = {key: value for key, value in trigger.items() if value is not None}
    with tempfile.TemporaryDirectory(prefix="driftline-retrain-") as tmp:
        progress.enter("profiling the new reference")
        files = write_reference_files(data, challenger, model, Path(tmp))

        progress.enter("logging the run to MLflow")
        logged = registry.log_model_run(
            challenger,
            client=client,
            experiment=f"driftline/{registered}",
            run_name=f"retrain-{request.request_id}"[:250],
            sample=data.X_holdout,
            params=_params(challenger, settings, progress),
            metrics=progress.metrics,
            tags=tags,
            artifacts=files,
        )
    progress.run_id = logged.run_id
    progress.run_url = registry.run_url(mlflow.get_tracking_uri(), logged)

    progress.enter(f"registering a new version of {registered!r}")
    progress.version = registry.register_version(logged.model_uri, registered, tags)

    progress.enter(f"setting alias {registry.CHALLENGER}")
    client.set_registered_model_alias(registered, registry.CHALLENGER, progress.version)
    if not gate.passed:
        return False
    progress.enter(f"moving alias {registry.CHAMPION}")
    client.set_registered_model_alias(registered, registry.CHAMPION, progress.version)
    return True


def _training_set(
    champion: Any,
    recent: pd.DataFrame | None,
    reference: pd.DataFrame,
    model: ModelConfig,
    settings: RetrainSettings,
) -> TrainingSet:
    source = model.reference
    if source.target is None:
        raise RetrainError(
            f"model {model.name!r} names no reference target column; retraining needs labels"
        )
    outputs = {c for c in (source.target, source.prediction, source.probability) if c}
    specs = model.features or infer_features(reference, outputs)
    monitored = [spec.name for spec in specs]
    # the columns the champion was fitted on, in its order, when it recorded them
    fitted_on = [str(c) for c in getattr(champion, "feature_names_in_", monitored)]
    return build_training_set(
        reference,
        recent,
        features=fitted_on,
        target=source.target,
        holdout_fraction=settings.holdout_fraction,
        seed=model.drift.seed,
        extra_columns=monitored,
    )


def _params(challenger: Any, settings: RetrainSettings, progress: _Progress) -> dict[str, Any]:
    own = {
        "driftline.champion_version": progress.champion_version,
        "driftline.training": settings.training_entry_point or "refit",
        "driftline.metric": settings.metric,
        "driftline.margin": settings.margin,
        "driftline.holdout_fraction": settings.holdout_fraction,
        **{f"driftline.{key}": value for key, value in progress.data.items()},
    }
    return {**registry.scalar_params(challenger), **own}


def _outcome(
    status: Status,
    model: str,
    registered: str,
    progress: _Progress,
    *,
    promoted: bool = False,
    reason: str,
) -> RetrainOutcome:
    return RetrainOutcome(
        status=status,
        model=model,
        registered_model=registered,
        run_id=progress.run_id,
        version=progress.version,
        champion_version=progress.champion_version,
        promoted=promoted,
        metrics=dict(progress.metrics),
        gate=None if progress.gate is None else progress.gate.to_dict(),
        data=dict(progress.data),
        reason=reason,
        run_url=progress.run_url,
    )
