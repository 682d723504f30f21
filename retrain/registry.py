"""The MLflow edge of the retrain job: runs, the sklearn model, versions and aliases.

MLflow's fluent API (``start_run``, ``log_model``, ``register_model``) reads one
process-wide tracking URI. ``tracking(uri)`` sets it for the duration of a block and puts
the previous one back, so a job runs against its model's server; two jobs with different
servers must not run at the same time in one process (run them one after the other, or in
subprocesses). Registry calls go through an explicit ``MlflowClient``.

Models are saved in the ``skops`` format (no pickle); the types the fitted estimator is
made of are written to the model as trusted, since driftline trained it itself.
``pip_requirements`` are given so MLflow does not infer them in a slow subprocess.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import mlflow.artifacts
import mlflow.sklearn
import pandas as pd
import skops.io
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "MODEL_ARTIFACT",
    "PROFILE_ARTIFACT",
    "REFERENCE_ARTIFACT",
    "LoggedRun",
    "bootstrap_champion",
    "download_run_artifact",
    "experiment_id",
    "load_version",
    "log_model_run",
    "register_version",
    "run_url",
    "scalar_params",
    "tracking",
]

CHAMPION = "champion"
CHALLENGER = "challenger"
MODEL_ARTIFACT = "model"  # the logged model's name
PROFILE_ARTIFACT = "reference_profile.json"  # ReferenceProfile.save, at the run's root
REFERENCE_ARTIFACT = "reference.parquet"  # the new reference data, at the run's root
SIGNATURE_ROWS = 50
MAX_PARAM_CHARS = 500


@dataclass(frozen=True)
class LoggedRun:
    run_id: str
    experiment_id: str
    model_uri: str  # models:/<model_id>, what register_version registers


@contextlib.contextmanager
def tracking(uri: str | None) -> Iterator[None]:
    """Use tracking server ``uri`` in this block (``None``: leave MLflow's setting alone)."""
    if uri is None:
        yield
        return
    # what was in force, from mlflow.set_tracking_uri or the MLFLOW_TRACKING_URI variable;
    # restoring it (rather than unsetting) keeps the variable a caller had set
    previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)  # type: ignore[arg-type]  # None unsets it


def experiment_id(client: MlflowClient, name: str) -> str:
    """The id of experiment ``name``, created when missing."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    try:
        return str(client.create_experiment(name))
    except MlflowException:  # created meanwhile by another job
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return str(experiment.experiment_id)


def load_version(registered_model: str, version: str) -> Any:
    """The scikit-learn estimator of one registered version."""
    return mlflow.sklearn.load_model(f"models:/{registered_model}/{version}")


def scalar_params(estimator: Any) -> dict[str, str]:
    """``get_params(deep=True)`` without nested estimators, as MLflow param strings."""
    params = estimator.get_params(deep=True) if hasattr(estimator, "get_params") else {}
    return {
        str(key)[:250]: str(value)[:MAX_PARAM_CHARS]
        for key, value in sorted(params.items())
        if value is None or isinstance(value, str | int | float | bool)
    }


def log_model_run(
    estimator: Any,
    *,
    client: MlflowClient,
    experiment: str,
    run_name: str,
    sample: pd.DataFrame,
    params: Mapping[str, Any] | None = None,
    metrics: Mapping[str, float] | None = None,
    tags: Mapping[str, str] | None = None,
    artifacts: Sequence[Path] = (),
) -> LoggedRun:
    """One finished run with ``params``, ``metrics``, the sklearn model and ``artifacts``.

    ``sample`` (a few input rows) gives the model its signature. Raises MLflow's errors.
    """
    exp_id = experiment_id(client, experiment)
    rows = sample.head(SIGNATURE_ROWS)
    signature = infer_signature(rows, estimator.predict(rows))
    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(estimator))
    defined = {k: v for k, v in (metrics or {}).items() if not math.isnan(v)}  # NaN: not logged
    with mlflow.start_run(experiment_id=exp_id, run_name=run_name, tags=dict(tags or {})) as run:
        mlflow.log_params(dict(params or {}))
        mlflow.log_metrics(defined)
        info = mlflow.sklearn.log_model(
            estimator,
            name=MODEL_ARTIFACT,
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
            skops_trusted_types=trusted or None,
            pip_requirements=mlflow.sklearn.get_default_pip_requirements(include_skops=True),
            signature=signature,
        )
        for path in artifacts:
            mlflow.log_artifact(str(path))
    return LoggedRun(run.info.run_id, exp_id, info.model_uri)


def register_version(model_uri: str, registered_model: str, tags: Mapping[str, str]) -> str:
    """Register ``model_uri`` as a new version (created with its tags); return the version."""
    version = mlflow.register_model(model_uri, registered_model, tags=dict(tags))
    return str(version.version)


def run_url(tracking_uri: str, logged: LoggedRun) -> str | None:
    """The run's page in the MLflow UI, when the server is reached over HTTP."""
    if not tracking_uri.startswith(("http://", "https://")):
        return None
    return f"{tracking_uri.rstrip('/')}/#/experiments/{logged.experiment_id}/runs/{logged.run_id}"


def download_run_artifact(
    model_uri: str, artifact: str, folder: Path, *, tracking_uri: str | None = None
) -> Path:
    """Download ``artifact`` of the run that logged a registered version into ``folder``.

    ``model_uri`` is ``models:/<name>@<alias>`` or ``models:/<name>/<version>``; e.g.
    ``reference.parquet`` of ``models:/wine@champion`` is the champion's reference data.
    """
    name, version = _parse_models_uri(model_uri)
    with tracking(tracking_uri):
        client = MlflowClient()
        if version.startswith("@"):
            found = client.get_model_version_by_alias(name, version[1:])
        else:
            found = client.get_model_version(name, version)
        if not found.run_id:
            raise MlflowException(f"{model_uri} was not logged by a run: it has no {artifact}")
        path = mlflow.artifacts.download_artifacts(
            run_id=found.run_id, artifact_path=artifact, dst_path=str(folder)
        )
    return Path(path)


def _parse_models_uri(uri: str) -> tuple[str, str]:
    """``models:/wine@champion`` -> ("wine", "@champion"); ``models:/wine/3`` -> ("wine", "3")."""
    body = uri.removeprefix("models:/") if uri.startswith("models:/") else ""
    name, at, alias = body.partition("@")
    if at and name and alias and "/" not in name:
        return name, "@" + alias
    name, slash, version = body.rpartition("/")
    if slash and name and version.isdigit():
        return name, version
    raise MlflowException(
        f"model URI {uri!r} must read models:/<name>@<alias> or models:/<name>/<version>"
    )


def bootstrap_champion(
    estimator: Any,
    *,
    registered_model: str,
    sample: pd.DataFrame,
    tracking_uri: str | None = None,
    artifacts: Sequence[Path] = (),
    experiment: str | None = None,
) -> str:
    """Log a fitted estimator, register it and point ``champion`` at it; return its version.

    For a first model (tests, the demo): on an empty registry it becomes version 1.
    ``sample`` is a few input rows (the signature); ``artifacts`` are logged beside it
    (e.g. ``reference.parquet`` and ``reference_profile.json``).
    """
    with tracking(tracking_uri):
        client = MlflowClient()
        logged = log_model_run(
            estimator,
            client=client,
            experiment=experiment or f"driftline/{registered_model}",
            run_name="bootstrap-champion",
            sample=sample,
            params=scalar_params(estimator),
            tags={"driftline.bootstrap": "true"},
            artifacts=artifacts,
        )
        version = register_version(
            logged.model_uri, registered_model, {"driftline.bootstrap": "true"}
        )
        client.set_registered_model_alias(registered_model, CHAMPION, version)
        return version
