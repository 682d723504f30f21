"""The state of one window of one model (per partition): bounded, mergeable, persistable.

What it holds (all sized by the profile and ``sample_size``, never by traffic):

- per numeric feature: counts over the reference bins, missing count, min, max, moments
  and a bottom-k sample of raw values (``NumericSketch``);
- per categorical feature: counts over the reference categories + unseen + missing, and
  a bottom-k sample of the codes with the same priorities as the numeric sample, so both
  keep the same rows (``monitor.engine.sample_rows`` joins them into decoded rows);
- per feature: type errors (wrong-typed values, also counted as missing);
- the prediction distribution (class counts, or bins for regression), the positive-class
  probability's bins (binary classifiers) and a ``PerformanceState``: joined (prediction,
  label, probability) rows for real metrics, unlabelled probabilities for the estimate.

Feature rows and predictions are counted apart (``n_rows``, ``n_predictions``): features
logged apart from their prediction may be missing from the window (late) without counting
as missing values. ``update`` is vectorised over the batch; ``merge`` returns a new state
and is associative and commutative (exactly for counts and samples, up to float rounding
for the moment sums); ``to_dict``/``from_dict`` round-trip through JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from monitor.engine.batch import Batch, counter_priorities, to_batch
from monitor.engine.performance import PerformanceState, class_key
from monitor.engine.profile import ReferenceProfile
from monitor.engine.row_sample import RowSample
from monitor.engine.sketches import CategoryCounts, NumericSketch

__all__ = ["Batch", "WindowState", "to_batch"]

STATE_VERSION = 1
_OUTPUT_SEED = 0x5EED  # a separate priority stream for outputs (their samples are unused)


class WindowState:
    """Sketches of one window's features, outputs and performance.

    >>> import pandas as pd
    >>> frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0, 1, 1, 0]})
    >>> profile = ReferenceProfile.build(
    ...     frame, task="classification", features=None, prediction="y", target="y")
    >>> state = WindowState(profile, sample_size=10)
    >>> state.update(to_batch([{"x": 1.5}, {"x": None}], profile), [1, 0], [0.8, 0.3])
    >>> state.add_labels([1, 0], [1, 1])
    >>> state.n_predictions, state.features.n_missing.tolist()
    (2, [1])
    >>> state.performance.metrics()["accuracy"]
    0.5
    """

    def __init__(self, profile: ReferenceProfile, sample_size: int = 1000, seed: int = 0) -> None:
        if sample_size < 0:
            raise ValueError(f"sample_size must be >= 0, got {sample_size}")
        self.profile = profile
        self.sample_size = int(sample_size)
        self.seed = int(seed)
        self.n_rows = 0
        self.n_predictions = 0
        self.features = NumericSketch(
            [p.edges for p in profile.numeric],
            np.array([p.mean for p in profile.numeric]),
            self.sample_size,
        )
        self.categories = CategoryCounts([len(p.categories) + 2 for p in profile.categorical])
        self.category_rows = RowSample(len(profile.categorical), self.sample_size)
        self.type_errors = np.zeros(len(profile.numeric) + len(profile.categorical), np.int64)
        pred = profile.prediction
        self.prediction_values: NumericSketch | None = None
        self.prediction_counts: CategoryCounts | None = None
        if pred is not None and profile.task == "regression":
            self.prediction_values = _output_sketch(pred.edges, pred.mean)  # type: ignore[union-attr]
        elif pred is not None:
            self.prediction_counts = CategoryCounts([len(profile.classes) + 2])
        prob = profile.probability
        self.probability_values = None if prob is None else _output_sketch(prob.edges, prob.mean)
        self.performance = PerformanceState(
            profile.task,
            classes=profile.classes,
            positive_class=profile.positive_class,
            calibrator=profile.calibrator,
        )

    def update(
        self,
        batch: Batch,
        predictions: Sequence[Any] | NDArray[Any] = (),
        probabilities: Sequence[Any] | NDArray[Any] | None = None,
    ) -> None:
        """Add feature rows and predictions (counted apart; either may be empty).

        ``probabilities`` (one per prediction, or None): the positive-class probability
        as a float, a {class: p} mapping, or None for a row without one.
        """
        if batch.n_rows:
            priorities = batch.priorities
            if priorities is None:
                priorities = counter_priorities(self.seed, self.n_rows, batch.n_rows)
            self.features.update(batch.numeric, priorities)
            self.categories.update(batch.categorical)
            if self.category_rows.n_columns:
                self.category_rows.offer(batch.categorical.astype(np.float64), priorities)
            self.type_errors += batch.type_errors
            self.n_rows += batch.n_rows
        n = len(predictions)
        if n == 0:
            return
        self.n_predictions += n
        if self.prediction_values is not None:
            self.prediction_values.update(_floats(predictions)[None, :], np.empty(0))
        if self.prediction_counts is not None:
            self.prediction_counts.update(self._class_codes(predictions)[None, :])
        if probabilities is not None:
            if len(probabilities) != n:
                raise ValueError(f"{len(probabilities)} probabilities for {n} predictions")
            if self.probability_values is not None:
                positive = _positive_probabilities(probabilities, self.profile.positive_class)
                self.probability_values.update(positive[None, :], np.empty(0))
            self.performance.add_unlabelled(probabilities, predictions)

    def add_labels(
        self,
        predictions: Sequence[Any] | NDArray[Any],
        labels: Sequence[Any] | NDArray[Any],
        probabilities: Sequence[Any] | NDArray[Any] | None = None,
    ) -> None:
        """Add (prediction, label, probability) rows joined after the predictions."""
        self.performance.add(predictions, labels, probabilities)

    def _class_codes(self, predictions: Sequence[Any] | NDArray[Any]) -> NDArray[np.int64]:
        index = self.profile.class_index
        unseen, missing = len(index), len(index) + 1
        codes = [missing if v is None else index.get(_key(v), unseen) for v in predictions]
        return np.array(codes, dtype=np.int64)

    def merge(self, other: WindowState) -> WindowState:
        """A new state of both windows' events; neither operand changes."""
        if (self.sample_size, self.seed) != (other.sample_size, other.seed):
            raise ValueError("cannot merge window states of different sample_size or seed")
        out = WindowState(self.profile, self.sample_size, self.seed)
        out.n_rows = self.n_rows + other.n_rows
        out.n_predictions = self.n_predictions + other.n_predictions
        out.features = self.features.merge(other.features)
        out.categories = self.categories.merge(other.categories)
        out.category_rows = self.category_rows.merge(other.category_rows)
        out.type_errors = self.type_errors + other.type_errors
        if self.prediction_values is not None and other.prediction_values is not None:
            out.prediction_values = self.prediction_values.merge(other.prediction_values)
        if self.prediction_counts is not None and other.prediction_counts is not None:
            out.prediction_counts = self.prediction_counts.merge(other.prediction_counts)
        if self.probability_values is not None and other.probability_values is not None:
            out.probability_values = self.probability_values.merge(other.probability_values)
        out.performance = self.performance.merge(other.performance)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe state (the profile is not included: pass it to ``from_dict``)."""

        def opt(part: NumericSketch | CategoryCounts | None) -> Any:
            return None if part is None else part.to_dict()

        return {
            "state_version": STATE_VERSION,
            "sample_size": self.sample_size,
            "seed": self.seed,
            "n_rows": self.n_rows,
            "n_predictions": self.n_predictions,
            "type_errors": self.type_errors.tolist(),
            "features": self.features.to_dict(),
            "categories": self.categories.to_dict(),
            "category_sample": self.category_rows.to_dict(),
            "prediction_values": opt(self.prediction_values),
            "prediction_counts": opt(self.prediction_counts),
            "probability_values": opt(self.probability_values),
            "performance": self.performance.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], profile: ReferenceProfile) -> WindowState:
        """Restore a state saved by ``to_dict`` against the same profile."""
        if data.get("state_version") != STATE_VERSION:
            raise ValueError(f"unknown window state version {data.get('state_version')!r}")
        state = cls(profile, int(data["sample_size"]), int(data["seed"]))
        state.n_rows = int(data["n_rows"])
        state.n_predictions = int(data["n_predictions"])
        state.type_errors = np.asarray(data["type_errors"], dtype=np.int64)
        state.features.load_dict(data["features"])
        state.categories.load_dict(data["categories"])
        if "category_sample" in data:  # states saved before it existed have none
            state.category_rows.load_dict(data["category_sample"])
        for name in ("prediction_values", "prediction_counts", "probability_values"):
            part = getattr(state, name)
            if (part is None) != (data[name] is None):
                raise ValueError(f"window state {name} does not match the profile")
            if part is not None:
                part.load_dict(data[name])
        state.performance = PerformanceState.from_dict(data["performance"])
        return state


def _output_sketch(edges: NDArray[np.float64], center: float) -> NumericSketch:
    return NumericSketch([edges], np.array([center]), sample_size=0)


def _key(value: object) -> str:
    try:
        return class_key(value)
    except TypeError:
        return str(value)


def _floats(values: Sequence[Any] | NDArray[Any]) -> NDArray[np.float64]:
    """Numbers as floats; anything else (None, strings, booleans) as NaN."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiu":
        return values.astype(np.float64)
    return np.array(
        [
            float(v)
            if isinstance(v, int | float | np.number) and not isinstance(v, bool)
            else np.nan
            for v in values
        ],
        dtype=np.float64,
    )


def _positive_probabilities(
    probabilities: Sequence[Any] | NDArray[Any], positive: str | None
) -> NDArray[np.float64]:
    """The positive class's probability per row (float rows as they are; NaN if unknown)."""
    if isinstance(probabilities, np.ndarray) and probabilities.dtype.kind in "fiu":
        return probabilities.astype(np.float64)
    out = np.full(len(probabilities), np.nan)
    for i, row in enumerate(probabilities):
        if isinstance(row, Mapping):
            if positive is not None:
                for key, p in row.items():
                    if _key(key) == positive:
                        out[i] = float(p)
        elif isinstance(row, int | float | np.number) and not isinstance(row, bool):
            out[i] = float(row)
    return out
