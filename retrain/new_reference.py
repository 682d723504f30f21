"""The challenger's reference: the rows it will be judged against, and their profile.

What the challenger will see in production looks like the recent traffic it was trained
on, not like the old reference: so the new reference is the recent training rows when
there are at least ``MIN_RECENT_ROWS`` of them, else every training row. Either way, the
rows come with the challenger's prediction (column ``reference.prediction``
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

__all__ = ["MIN_RECENT_ROWS", "write_reference_files"]

MIN_RECENT_ROWS = 500  # enough rows for stable quantile bins and a 1,000-value sample


def write_reference_files(
    data: TrainingSet, challenger: Any, model: ModelConfig, folder: Path
) -> list[Path]:
    """The new reference (training rows + challenger outputs) and its profile, as files."""
    recent = data.train.iloc[data.n_reference:]
    frame = (recent if len(recent) >= MIN_RECENT_ROWS else data.train).reset_index(drop=True)
    inputs = frame[list(data.features)]
    taken = set(frame.columns)
    prediction = _free_name(model.reference.prediction or "prediction", taken)
    frame[prediction] = challenger.predict(inputs)
    probability = None
    classes = list(getattr(challenger, "classes_", []))
    if (
        model.task == "classification"
        and len(classes) == 2
        and hasattr(challenger, "predict_proba")
    ):
        probability = _free_name(model.reference.probability or "probability", taken)
        frame[probability] = challenger.predict_proba(inputs)[:, 1]
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
