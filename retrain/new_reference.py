"""The challenger's reference: its training rows with its outputs, and their profile.

The rows the challenger was fitted on, plus its prediction (column ``reference.prediction``
of the config, default ``prediction``) and, for a binary classifier with
``predict_proba``, the probability of ``classes_[1]`` (``reference.probability``, default
``probability``). A name already taken by a feature gets a ``driftline_`` prefix. The
predictions are in-sample, so the profile's performance is optimistic; drift statistics
do not depend on it. Written as ``reference.parquet`` and ``reference_profile.json``
(``ReferenceProfile.save``), the two files the run logs beside the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from monitor.config import ModelConfig
from monitor.engine.profile import ReferenceProfile
from retrain.dataset import TrainingSet
from retrain.registry import PROFILE_ARTIFACT, REFERENCE_ARTIFACT

__all__ = ["write_reference_files"]


def write_reference_files(
    data: TrainingSet, challenger: Any, model: ModelConfig, folder: Path
) -> list[Path]:
    """The new reference (training rows + challenger outputs) and its profile, as files."""
    frame = data.train.copy()
    taken = set(frame.columns)
    prediction = _free_name(model.reference.prediction or "prediction", taken)
    frame[prediction] = challenger.predict(data.X_train)
    probability = None
    classes = list(getattr(challenger, "classes_", []))
    if (
        model.task == "classification"
        and len(classes) == 2
        and hasattr(challenger, "predict_proba")
    ):
        probability = _free_name(model.reference.probability or "probability", taken)
        frame[probability] = challenger.predict_proba(data.X_train)[:, 1]
    profile = ReferenceProfile.build(
        frame,
        task=model.task,
        features=model.features,
        target=data.target,
        prediction=prediction,
        probability=probability,
        bins=model.drift.bins,
        sample_size=model.drift.sample_size,
        seed=model.drift.seed,
    )
    profile_path = folder / PROFILE_ARTIFACT
    profile.save(profile_path)
    reference_path = folder / REFERENCE_ARTIFACT
    frame.to_parquet(reference_path, index=False)
    return [profile_path, reference_path]


def _free_name(name: str, taken: set[str]) -> str:
    while name in taken:
        name = f"driftline_{name}"
    return name
