"""Seeded synthetic traffic of a binary classifier: a reference frame and contract events.

For dry runs of a config (``driftline replay``), benchmarks and tests. The model is a fixed
logistic scorer over standard-normal features ``f0..f{k-1}`` (and optional categorical
``c0..``); labels are drawn from its probability, so it is calibrated on the reference.
A ``Shift`` moves chosen features by a number of standard deviations from an event index
on; ``concept_flip`` inverts the labels from that index on (features unchanged).

>>> frame = reference_frame(100, n_numeric=3, seed=1)
>>> sorted(frame.columns)
['f0', 'f1', 'f2', 'prediction', 'probability', 'target']
>>> first = next(iter(events(1, n_numeric=3, seed=1)))
>>> first[0], sorted(first[1])[:4]
('predictions', ['event_id', 'features', 'model', 'prediction'])
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Shift", "events", "reference_frame"]

CATEGORIES = ("red", "green", "blue", "white")


@dataclass(frozen=True)
class Shift:
    start: int  # first event index affected
    features: Sequence[int] = ()  # numeric feature indices shifted
    sd: float = 0.0  # shift in standard deviations
    concept_flip: bool = False  # labels inverted from `start` on
    new_categories: Sequence[str] = field(default_factory=tuple)  # unseen categories appear


def _weights(n_numeric: int) -> np.ndarray:
    return np.linspace(1.0, -1.0, n_numeric) if n_numeric > 1 else np.ones(n_numeric)


def _draw(rng: np.random.Generator, n: int, n_numeric: int, n_categorical: int
          ) -> tuple[np.ndarray, np.ndarray]:
    numeric = rng.standard_normal((n, n_numeric))
    categorical = rng.choice(len(CATEGORIES), size=(n, n_categorical), p=[0.4, 0.3, 0.2, 0.1])
    return numeric, categorical


def _probability(numeric: np.ndarray) -> np.ndarray:
    score = numeric @ _weights(numeric.shape[1]) if numeric.shape[1] else np.zeros(len(numeric))
    return 1.0 / (1.0 + np.exp(-score))


def reference_frame(n_rows: int, *, n_numeric: int = 20, n_categorical: int = 0,
                    seed: int = 0) -> pd.DataFrame:
    """A reference set: features, the model's prediction and probability, the target."""
    rng = np.random.default_rng(seed)
    numeric, categorical = _draw(rng, n_rows, n_numeric, n_categorical)
    probability = _probability(numeric)
    frame = pd.DataFrame({f"f{i}": numeric[:, i] for i in range(n_numeric)})
    for j in range(n_categorical):
        frame[f"c{j}"] = [CATEGORIES[k] for k in categorical[:, j]]
    frame["prediction"] = (probability >= 0.5).astype(int)
    frame["probability"] = probability
    frame["target"] = (rng.random(n_rows) < probability).astype(int)
    return frame


def events(
    n: int,
    *,
    n_numeric: int = 20,
    n_categorical: int = 0,
    seed: int = 0,
    model: str = "m",
    start_ms: int = 1_767_225_600_000,  # 2026-01-01T00:00:00Z
    step_ms: int = 100,
    shift: Shift | None = None,
    features_inline: bool = True,
    label_every: int = 1,
    label_delay: int = 0,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(stream, event)`` pairs: a prediction per index, its features (inline or as a
    separate features event right after), and a label for every ``label_every``-th
    prediction, ``label_delay`` events later."""
    rng = np.random.default_rng(seed + 1)
    numeric, categorical = _draw(rng, n, n_numeric, n_categorical)
    if shift is not None and shift.sd:
        numeric[shift.start:, list(shift.features)] += shift.sd
    probability = _probability(numeric)
    truth = rng.random(n) < probability
    if shift is not None and shift.concept_flip:
        truth[shift.start:] = ~truth[shift.start:]
    pending: list[tuple[int, dict[str, Any]]] = []
    for i in range(n):
        ts = start_ms + i * step_ms
        feats: dict[str, Any] = {f"f{k}": float(numeric[i, k]) for k in range(n_numeric)}
        for j in range(n_categorical):
            category = CATEGORIES[categorical[i, j]]
            if shift is not None and shift.new_categories and i >= shift.start and j == 0:
                category = shift.new_categories[i % len(shift.new_categories)]
            feats[f"c{j}"] = category
        event_id = f"{model}-{i}"
        p = float(probability[i])
        prediction: dict[str, Any] = {
            "schema_version": 1, "event_id": event_id, "model": model, "timestamp": ts,
            "prediction": int(p >= 0.5), "probabilities": p,
        }
        if features_inline:
            prediction["features"] = feats
        yield "predictions", prediction
        if not features_inline:
            yield "features", {"schema_version": 1, "event_id": event_id, "model": model,
                               "timestamp": ts, "features": feats}
        if i % label_every == 0:
            pending.append((i + label_delay, {
                "schema_version": 1, "event_id": event_id, "model": model,
                "timestamp": ts + label_delay * step_ms, "label": int(truth[i])}))
        while pending and pending[0][0] <= i:
            yield "labels", pending.pop(0)[1]
    for _, label in pending:
        yield "labels", label
