"""One window of one model: its engine state, the rows waiting to enter it, its bookkeeping.

Rows are buffered and handed to the vectorised ``WindowState.update`` in blocks, so the
per-event cost stays a list append. A window is ``open`` until its deadline passes; once
closed it keeps accepting labels (they revise its performance) while predictions that
remember it are still in the join.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from monitor.engine.scoring import score_window
from monitor.engine.window_state import WindowState, to_batch
from monitor.timeparse import format_rfc3339_ms

if TYPE_CHECKING:
    from monitor.config import ModelConfig
    from monitor.engine.profile import ReferenceProfile

__all__ = ["Window", "merged_line"]

FLUSH_ROWS = 1024  # rows buffered before a vectorised update


class Window:
    __slots__ = (
        "_labels",
        "_predictions",
        "_probabilities",
        "_row_keys",
        "_rows",
        "closed",
        "dirty",
        "end_ms",
        "final",
        "key",
        "model",
        "model_version",
        "n_predictions",
        "newest_ms",
        "profile",
        "refs",
        "revision",
        "start_ms",
        "state",
    )

    def __init__(
        self,
        key: int,
        *,
        start_ms: int,
        end_ms: int,
        profile: ReferenceProfile,
        model: ModelConfig,
        model_version: str | None,
    ) -> None:
        self.key = key
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.newest_ms = start_ms
        self.profile = profile
        self.model = model
        self.model_version = model_version
        self.state = WindowState(profile, model.drift.sample_size, model.drift.seed)
        self.n_predictions = 0
        self.refs = 0  # predictions in the join that point here (labels may still come)
        self.closed = False
        self.final = False  # closed and handed to finalisation (scored, or saved for it)
        self.dirty = False  # closed, and labels changed it since its last line
        self.revision = -1
        self._rows: list[Any] = []
        self._row_keys: list[str] = []  # event ids: reservoir priorities hash them
        self._predictions: list[Any] = []
        self._probabilities: list[Any] = []
        self._labels: list[tuple[Any, Any, Any]] = []

    def add_prediction(
        self,
        event_id: str,
        ts_ms: int,
        *,
        prediction: Any,
        probabilities: Any,
        features: Any,
    ) -> None:
        self.n_predictions += 1
        self.refs += 1
        self.newest_ms = max(self.newest_ms, ts_ms)
        if self.model.window.size is not None:  # a count window ends at its last prediction
            self.end_ms = ts_ms
        self._predictions.append(prediction)
        self._probabilities.append(probabilities)
        if features is not None:
            self._rows.append(features)
            self._row_keys.append(event_id)
        if len(self._predictions) >= FLUSH_ROWS:
            self.flush()

    def add_features(self, event_id: str, features: Any) -> None:
        self._rows.append(features)
        self._row_keys.append(event_id)
        if len(self._rows) >= FLUSH_ROWS:
            self.flush()

    def add_label(self, prediction: Any, probabilities: Any, label: Any) -> None:
        self._labels.append((prediction, probabilities, label))
        if self.closed:
            self.dirty = True
        elif len(self._labels) >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        """Hand the buffered rows, predictions and labels to the engine state."""
        if self._rows or self._predictions:
            batch = to_batch(self._rows, self.profile, keys=self._row_keys,
                             seed=self.model.drift.seed)
            self.state.update(batch, self._predictions, self._probabilities)
            self._rows, self._row_keys, self._predictions, self._probabilities = [], [], [], []
        if self._labels:
            predictions, probabilities, labels = zip(*self._labels, strict=True)
            self.state.add_labels(list(predictions), list(labels), list(probabilities))
            self._labels = []

    def to_dict(self) -> dict[str, Any]:
        """The window as plain data, its buffers as they are: flushing here would move
        block boundaries and change float sums in their last bits."""
        return {
            "key": self.key, "start_ms": self.start_ms, "end_ms": self.end_ms,
            "newest_ms": self.newest_ms, "model_version": self.model_version,
            "n_predictions": self.n_predictions, "refs": self.refs, "closed": self.closed,
            "final": self.final, "dirty": self.dirty, "revision": self.revision,
            "state": self.state.to_dict(),
            "buffers": [self._rows, self._row_keys, self._predictions, self._probabilities,
                        [list(t) for t in self._labels]],
        }

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], profile: ReferenceProfile, model: ModelConfig
    ) -> Window:
        window = cls(data["key"], start_ms=data["start_ms"], end_ms=data["end_ms"],
                     profile=profile, model=model, model_version=data["model_version"])
        window.newest_ms = data["newest_ms"]
        window.n_predictions = data["n_predictions"]
        window.refs = data["refs"]
        window.closed = data["closed"]
        window.final = data.get("final", data["closed"])
        window.dirty = data["dirty"]
        window.revision = data["revision"]
        window.state = WindowState.from_dict(data["state"], profile)
        rows, keys, predictions, probabilities, labels = data["buffers"]
        window._rows, window._row_keys = list(rows), list(keys)
        window._predictions, window._probabilities = list(predictions), list(probabilities)
        window._labels = [tuple(t) for t in labels]
        return window

    @classmethod
    def merged(cls, parts: list[Window]) -> Window:
        """A new window of the partials of several partitions (in the order given: merged
        float sums depend on it); the partials do not change but for a flush."""
        first = parts[0]
        versions = [w.model_version for w in parts if w.model_version is not None]
        out = cls(first.key, start_ms=min(w.start_ms for w in parts),
                  end_ms=max(w.end_ms for w in parts), profile=first.profile,
                  model=first.model, model_version=versions[0] if versions else None)
        out.newest_ms = max(w.newest_ms for w in parts)
        out.n_predictions = sum(w.n_predictions for w in parts)
        out.closed = out.final = True
        out.revision = max(w.revision for w in parts)
        for window in parts:
            window.flush()
        states = [w.state for w in parts]
        if len(states) == 1:  # merged into out's new, empty state: out never shares one
            states.insert(0, out.state)
        out.state = functools.reduce(WindowState.merge, states)
        return out

    def line(self, as_of_ms: int) -> dict[str, Any]:
        """Score the window and return its result line (contract section 3)."""
        self.flush()
        self.revision += 1
        self.dirty = False
        features = self.model.features or self.profile.features
        score = score_window(self.profile, self.state, self.model.drift, features)
        return {
            "model": self.model.name,
            "model_version": self.model_version,
            "window_key": self.key,
            "window_start": format_rfc3339_ms(self.start_ms),
            "window_end": format_rfc3339_ms(self.end_ms),
            "n_predictions": self.n_predictions,
            **score,
            "revision": self.revision,
            "as_of": format_rfc3339_ms(as_of_ms),
        }


def merged_line(parts: list[Window], as_of_ms: int, revision: int | None = None
                ) -> dict[str, Any]:
    """The result line of a window from its partials (in partition order); ``revision``
    (the store knows it) defaults to one more than the partials have seen."""
    window = parts[0] if len(parts) == 1 else Window.merged(parts)
    if revision is not None:
        window.revision = revision - 1
    line = window.line(as_of_ms)
    for part in parts:
        part.revision = window.revision
    return line
