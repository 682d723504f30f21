"""A shard: one model's join, windows and event-time clock in one partition.

The pipeline (``monitor.pipeline``) keeps one shard per (model, partition) and routes each
message to its shard. A shard joins predictions with their features and labels (bounded by
``join`` settings), assigns predictions to windows, and closes a window when its own clock,
the partition's watermark, passes the window's end and grace; the closed window is a
*partial*, which the pipeline finalises (locally, or through the store) once every
partition has passed it. Everything a restart needs is in ``to_dict`` (the small core,
with the open windows), ``segments`` (remembered predictions, in blocks of arrival that a
commit rewrites only when they changed) and ``partials`` (closed windows that changed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from monitor.config import ModelConfig
from monitor.engine.profile import ReferenceProfile
from monitor.ingest.decode import Event
from monitor.ingest.join import JoinBuffer
from monitor.windows.assigner import WindowAssigner
from monitor.windows.window import Window

if TYPE_CHECKING:
    from monitor.pipeline import Message, Pipeline

__all__ = ["NEVER", "SEGMENT_SIZE", "Shard"]

NEVER = 2**62  # a deadline no clock reaches
_RECHECK = -(2**62)  # forces the next close check to scan the open windows
SEGMENT_SIZE = 4096  # remembered predictions per checkpoint segment, in arrival order


def _segment(seq: int) -> int:
    """The checkpoint segment of the prediction that arrived ``seq``-th: a commit rewrites
    the segments that changed, so its cost follows the traffic since the last one, not
    the size of a window or of the join."""
    return seq // SEGMENT_SIZE



@dataclass(slots=True)
class _Remembered:
    """A prediction kept for the features and label that may follow it."""

    window: Window | None
    prediction: Any
    probabilities: Any
    has_features: bool
    labelled: bool = False
    seq: int = 0  # arrival order, so a checkpoint restores the join in the same order
    ts_ms: int = 0


class Shard:
    """Join, windows and clock of one model in one partition (see the module docstring)."""

    def __init__(self, model: ModelConfig, partition: int, profile: ReferenceProfile,
                 core: Pipeline) -> None:
        self.model = model
        self.partition = partition
        self.profile = profile
        self.core = core
        join = core.config.join
        self.join = JoinBuffer(
            max_pending=join.max_pending,
            max_age_s=join.max_age_s,
            max_predictions=join.max_predictions,
            on_evict=self._evicted,
        )
        spec = model.window
        self.assigner = WindowAssigner(
            size=spec.size,
            duration_ms=None if spec.duration_s is None else round(spec.duration_s * 1000),
            grace_ms=round(spec.grace_s * 1000),
        )
        self.open: dict[int, Window] = {}
        self.closed: list[Window] = []  # partials not yet final, or that may still get labels
        self.clock_ms = -(2**62)
        self.active_at_ms: int | None = None  # wall time of its last event (live only)
        self._seq = 0
        self._dirty: set[int] = set()  # segments of remembered predictions changed since saved
        self._unsaved: dict[int, Window] = {}  # partials changed (or dropped) since saved
        # segment -> its remembered predictions by event id, in arrival order
        self._members: dict[int, dict[str, _Remembered]] = {}
        # joined rows kept for the retrain job, when it is on and the core collects them
        self.training = core.training if model.retrain.enabled else None
        self._next_deadline = _RECHECK  # clock value up to which no window is due
        self.flushed = False  # the input ended (replay's end, or an idle stop)
        self.idle_saved_ms = -(2**62)  # wall clock when an idle clock move was last reported
        self._expired_at = self.clock_ms

    # -- events ---------------------------------------------------------------------------

    def on_prediction(self, event: Event, message: Message) -> None:
        joined = self.join.predictions
        if event.event_id in joined:
            self.core.dead_letter(message, "duplicate_event_id",
                                  f"event_id {event.event_id!r} already seen for model "
                                  f"{event.model!r}; the first prediction stands")
            return
        self.core.counts["predictions"] += 1
        self._advance(event.ts_ms)
        body = event.body
        key = self.assigner.key_for(event.ts_ms, self.clock_ms)
        window = None if key is None else self._window(key, event, message)
        features = body.get("features")
        pending = self.join.take("features", event.event_id)
        if pending is not None:
            if features is None:
                features = pending
            else:
                self.core.counts["duplicate_features"] += 1
        self._seq += 1
        remembered = _Remembered(window, body["prediction"], body.get("probabilities"),
                                 features is not None, seq=self._seq, ts_ms=event.ts_ms)
        segment = _segment(self._seq)
        self._dirty.add(segment)
        self._members.setdefault(segment, {})[event.event_id] = remembered
        if window is None:
            self.core.counts["late_predictions"] += 1
        else:
            window.add_prediction(event.event_id, event.ts_ms,
                                  prediction=remembered.prediction,
                                  probabilities=remembered.probabilities, features=features)
            if self.assigner.by_count and self.assigner.is_full(window.key):
                self._next_deadline = _RECHECK
        joined.put(event.event_id, event.ts_ms, remembered)
        if self.training is not None and features is not None:
            self.training.rows.append(
                (self.model.name, event.event_id, event.ts_ms, features, remembered.prediction))
        label = self.join.take("labels", event.event_id)
        if label is not None:
            self._apply_label(event.event_id, remembered, label)
        self.close_due()

    def on_features(self, event: Event, message: Message) -> None:
        self._advance(event.ts_ms)
        features = event.body["features"]
        remembered = self.join.predictions.get(event.event_id)
        if remembered is None:
            self.join.hold("features", event.event_id, event.ts_ms, features)
        elif remembered.has_features:
            self.core.counts["duplicate_features"] += 1
        else:
            remembered.has_features = True
            self._dirty.add(_segment(remembered.seq))
            if self.training is not None:
                self.training.rows.append((self.model.name, event.event_id, event.ts_ms,
                                           features, remembered.prediction))
            window = remembered.window
            if window is None or window.closed:
                self.core.counts["late_features"] += 1
            else:
                window.add_features(event.event_id, features)
        self.close_due()

    def on_label(self, event: Event, message: Message) -> None:
        label = event.body["label"]
        remembered = self.join.predictions.get(event.event_id)
        if remembered is None:
            self.join.hold("labels", event.event_id, event.ts_ms, label)
        else:
            self._apply_label(event.event_id, remembered, label)

    def _apply_label(self, event_id: str, remembered: _Remembered, label: Any) -> None:
        if remembered.labelled:
            self.core.counts["duplicate_labels"] += 1
            return
        remembered.labelled = True
        self._dirty.add(_segment(remembered.seq))
        if self.training is not None:
            self.training.labels.append((self.model.name, event_id, label))
        window = remembered.window
        if window is None:
            self.core.counts["labels_of_late_predictions"] += 1
            return
        window.add_label(remembered.prediction, remembered.probabilities, label)
        if window.closed:
            self._unsaved[window.key] = window

    # -- windows --------------------------------------------------------------------------

    def _window(self, key: int, event: Event, message: Message) -> Window:
        window = self.open.get(key)
        if window is None:
            if self.assigner.by_count:
                start_ms = end_ms = event.ts_ms
            else:
                start_ms, end_ms = self.assigner.bounds(key)
            window = Window(key, start_ms=start_ms, end_ms=end_ms, profile=self.profile,
                            model=self.model, model_version=event.body.get("model_version"))
            self.open[key] = window
            self._next_deadline = _RECHECK
        return window

    def _advance(self, ts_ms: int) -> None:
        if ts_ms > self.clock_ms:
            self.clock_ms = ts_ms
            if ts_ms - self._expired_at >= 1000:  # age eviction at most once per second
                self._expired_at = ts_ms
                self.join.expire(ts_ms)

    def close_due(self) -> None:
        if self.clock_ms <= self._next_deadline:
            return
        due, upcoming = [], [NEVER]
        for window in self.open.values():
            when = self.assigner.deadline(window.key, window.newest_ms)
            if when is None:
                continue
            if self.clock_ms > when:
                due.append(window)
            else:
                upcoming.append(when)
        self._next_deadline = min(upcoming)
        for window in sorted(due, key=lambda w: w.key):
            self._close(window)
        if due:
            self.emit_revisions()
            self.core.settle(self.model.name)

    def _close(self, window: Window) -> None:
        del self.open[window.key]
        window.closed = True
        window.flush()
        self.closed.append(window)
        self._unsaved[window.key] = window
        self.core.closed_partial(self, window)

    @property
    def watermark(self) -> int:
        """Event time this partition has passed: its clock, or "all" once its input ended."""
        return NEVER if self.flushed else self.clock_ms

    def passed(self, key: int) -> bool:
        """Whether this partition is past the end (and grace) of duration window ``key``."""
        if self.assigner.by_count:
            return self.flushed
        return self.watermark > (self.assigner.deadline(key, 0) or 0)

    def close_all(self) -> None:
        """End of input: every window closes. The clock moves past them, so an event for
        one of them that still comes (after a restart) counts as late, not as a new window."""
        for window in sorted(self.open.values(), key=lambda w: w.key):
            self._close(window)
            if self.assigner.by_count:
                self.assigner.skip(window.key)
            else:
                self.clock_ms = max(self.clock_ms, self.assigner.deadline(window.key, 0) or 0)
        self.flushed = True
        self._next_deadline = _RECHECK

    def emit_revisions(self) -> None:
        for window in self.closed:
            if window.dirty:
                window.flush()
                window.dirty = False
                self.core.revised_partial(self, window)
            if window.refs <= 0 and window.final:
                self._unsaved[window.key] = window  # dropped: saved once more, with no refs
        self.closed = [w for w in self.closed if w.refs > 0 or not w.final]

    def drain_pending(self) -> None:
        """End of input: what still waits for its prediction never gets one."""
        for stream, buffer in self.join.pending.items():
            for _key, _value in buffer.drain():
                self.core.counts[f"unmatched_{stream}"] += 1

    def _evicted(self, kind: str, key: str, value: Any) -> None:
        if kind == "predictions":
            window = value.window
            segment = _segment(value.seq)
            self._dirty.add(segment)
            members = self._members.get(segment)
            if members is not None:
                members.pop(key, None)
                if not members:
                    del self._members[segment]
            if window is not None:
                window.refs -= 1
        else:
            self.core.counts[f"unmatched_{kind}"] += 1

    # -- checkpoint -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Everything a restart needs to continue exactly where this left off."""
        return {
            "clock_ms": self.clock_ms,
            "expired_at": self._expired_at,
            "assigner": self.assigner.to_dict(),
            "windows": [w.to_dict() for w in self.open.values()],
            "seq": self._seq,
            "pending": {stream: [list(entry) for entry in buffer.entries()]
                        for stream, buffer in self.join.pending.items()},
        }

    def segments(self) -> dict[int, list[list[Any]]]:
        """The remembered predictions of every segment (``SEGMENT_SIZE`` predictions in
        arrival order) changed since the last call, each with its window's key (None: it
        came late for its window): what a checkpoint rewrites. An emptied segment comes
        back as an empty list."""
        dirty, self._dirty = self._dirty, set()
        return {segment: [[r.seq, key, r.ts_ms, r.prediction, r.probabilities, r.has_features,
                           r.labelled, None if r.window is None else r.window.key]
                          for key, r in self._members.get(segment, {}).items()]
                for segment in dirty}

    def partials(self) -> dict[int, Window]:
        """Closed windows (partials) changed since the last call, by key, including those
        just dropped (no predictions point at them any more: ``refs == 0``). Saved apart,
        so a commit does not rewrite them all."""
        unsaved, self._unsaved = self._unsaved, {}
        return unsaved

    def load_dict(self, data: dict[str, Any], segments: Mapping[int, list[list[Any]]],
                  closed: Mapping[int, dict[str, Any]]) -> None:
        self.clock_ms = data["clock_ms"]
        self._expired_at = data["expired_at"]
        self.assigner.load_dict(data["assigner"])
        windows = {}
        for saved in [*data["windows"], *closed.values()]:
            window = Window.from_dict(saved, self.profile, self.model)
            windows[window.key] = window
        self.open = {k: w for k, w in windows.items() if not w.closed}
        self.closed = [w for w in windows.values() if w.closed and (w.refs > 0 or not w.final)]
        self._seq = data["seq"]
        # an entry saved before segments were blocks of arrival has no window key: its
        # segment was the window's key (-1: none); those segments are rewritten as blocks
        older = any(len(entry) == 7 for saved in segments.values() for entry in saved)
        entries = sorted(entry if len(entry) == 8 else [*entry, None if segment == -1 else segment]
                         for segment, saved in segments.items() for entry in saved)
        self._members = {}
        for seq, key, ts, prediction, probabilities, has_features, labelled, window_key \
                in entries:
            self._members.setdefault(_segment(seq), {})[key] = _Remembered(
                None if window_key is None else windows.get(window_key),
                prediction, probabilities, has_features, labelled, seq, ts)
        self.join.predictions.load((key, r.ts_ms, r) for members in self._members.values()
                                   for key, r in members.items())
        if older:
            self._dirty = {*segments, *self._members}
        for stream, pending in data["pending"].items():
            self.join.pending[stream].load(pending)
        self._next_deadline = _RECHECK
