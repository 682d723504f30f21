"""Links from a retrain run to its pages in the MLflow UI.

A run row knows its ``mlflow_run_id`` and ``registered_version``; the model's
``retrain.tracking_uri`` says where the UI is. Only a tracking server reached over HTTP has
pages to link to (a ``file:`` or ``sqlite:`` store has none).

>>> target = MlflowTarget("http://127.0.0.1:5000/", "wine")
>>> links = retrain_links({"mlflow_run_id": "ab12", "registered_version": "4"}, target)
>>> links["run_url"], links["model_version_url"]
('http://127.0.0.1:5000/#/runs/ab12', 'http://127.0.0.1:5000/#/models/wine/versions/4')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from monitor.settings import ModelConfig

__all__ = ["MlflowTarget", "mlflow_targets", "retrain_links"]


@dataclass(frozen=True)
class MlflowTarget:
    """Where a model's retrains are tracked: the server's URI and the registered name."""

    tracking_uri: str | None
    registered_model: str

    @property
    def ui(self) -> str | None:
        """The UI's base URL, or None when the tracking URI is not an HTTP server."""
        uri = self.tracking_uri
        if uri is None or not uri.startswith(("http://", "https://")):
            return None
        return uri.rstrip("/")


def mlflow_targets(models: Iterable[ModelConfig]) -> dict[str, MlflowTarget]:
    """Each configured model's MLflow target, by model name."""
    return {
        m.name: MlflowTarget(m.retrain.tracking_uri, m.retrain.registered_model or m.name)
        for m in models
    }


def retrain_links(run: Mapping[str, Any], target: MlflowTarget | None) -> dict[str, str | None]:
    """``run_url`` and ``model_version_url`` of a retrain run row (None when unknown).

    The job's own ``detail.run_url`` (it knows the experiment) wins over the generic
    ``#/runs/<id>`` page, which the MLflow UI redirects to the run's experiment.
    """
    detail = run.get("detail") or {}
    ui = target.ui if target is not None else None
    run_id, version = run.get("mlflow_run_id"), run.get("registered_version")
    run_url = detail.get("run_url") if isinstance(detail, Mapping) else None
    if run_url is None and ui is not None and run_id:
        run_url = f"{ui}/#/runs/{quote(str(run_id), safe='')}"
    version_url = None
    if ui is not None and version and target is not None:
        name = detail.get("registered_model") if isinstance(detail, Mapping) else None
        name = quote(str(name or target.registered_model), safe="")
        version_url = f"{ui}/#/models/{name}/versions/{quote(str(version), safe='')}"
    return {"run_url": run_url, "model_version_url": version_url}
