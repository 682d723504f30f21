"""The one core shared by ``driftline run`` and ``driftline replay``: no I/O, only callbacks.

A source feeds ``Message``s in order to ``Pipeline.process``; the pipeline decodes and
validates them, joins predictions with their features and labels, assigns predictions to
windows, closes windows on event time and scores them. Outputs leave through two
callbacks: ``on_window(line)`` for every window line of contract section 3 (first close and
revisions) and ``on_dead_letter(message, reason, detail)`` for every rejected message.

The result depends only on the order of the messages, never on how they are batched.

Scale-out: the state of a model is split in *shards*, one per Kafka partition (the three
streams are keyed by ``event_id``, so an event's prediction, features and label share a
partition number). Each shard joins, windows and closes on its own event-time clock (the
partition's watermark); a closed shard window is a *partial*. A window is *finalised* when
every partition of the model has passed its end: its partials are merged (the sketches are
mergeable, so the merge equals one pass) and scored. In replay and tests (``local=True``)
every shard is in this process and the pipeline finalises itself; the daemon
(``local=False``) hands partials and clocks to the store, where whichever process sees
every partition past a window finalises it (``monitor.finalise``). Count windows need one
order of all predictions: such a model has one shard (``ALL_PARTITIONS``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from monitor.config import Config, ModelConfig
from monitor.engine.profile import ReferenceProfile
from monitor.ingest.decode import Decoder, Event, Rejection
from monitor.ingest.join import JoinBuffer
from monitor.windows.assigner import WindowAssigner
from monitor.windows.window import Window, merged_line

__all__ = ["ALL_PARTITIONS", "SEGMENT_SIZE", "Message", "Pipeline", "Shard", "TrainingBuffer"]

_NEVER = 2**62  # a deadline no clock reaches
_RECHECK = -(2**62)  # forces the next close check to scan the open windows
ALL_PARTITIONS = -1  # the shard of a count-window model: every partition, in one order
IDLE_STEP_MS = 10_000  # an idle partition's watermark is saved when it moved this much
SEGMENT_SIZE = 4096  # remembered predictions per checkpoint segment, in arrival order

WindowSink = Callable[[dict[str, Any]], None]
DeadLetterSink = Callable[["Message", str, str], None]


@dataclass(frozen=True, slots=True)
class Message:
    """One raw message as it came from its source (Kafka record or replay line)."""

    stream: str
    value: bytes | None
    topic: str
    partition: int = 0
    offset: int = 0
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


def _segment(seq: int) -> int:
    """The checkpoint segment of the prediction that arrived ``seq``-th: a commit rewrites
    the segments that changed, so its cost follows the traffic since the last one, not
    the size of a window or of the join."""
    return seq // SEGMENT_SIZE


@dataclass(slots=True)
class TrainingBuffer:
    """Joined rows for the retrain job since the last drain: predictions with their
    features ``(model, event_id, ts_ms, features, prediction)`` and labels
    ``(model, event_id, label)``; the daemon saves them with each commit."""

    rows: list[tuple[str, str, int, Any, Any]] = field(default_factory=list)
    labels: list[tuple[str, str, Any]] = field(default_factory=list)

    def drain(self) -> tuple[list[tuple[str, str, int, Any, Any]], list[tuple[str, str, Any]]]:
        rows, labels = self.rows, self.labels
        self.rows, self.labels = [], []
        return rows, labels


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
        due, upcoming = [], [_NEVER]
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
        return _NEVER if self.flushed else self.clock_ms

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
        entries = sorted((entry if len(entry) == 8 else [*entry, segment if segment != -1
                                                        else None], len(entry) == 8)
                         for segment, saved in segments.items() for entry in saved)
        self._members = {}
        for (seq, key, ts, prediction, probabilities, has_features, labelled, window_key), _ \
                in entries:
            self._members.setdefault(_segment(seq), {})[key] = _Remembered(
                None if window_key is None else windows.get(window_key),
                prediction, probabilities, has_features, labelled, seq, ts)
        self.join.predictions.load((key, r.ts_ms, r) for members in self._members.values()
                                   for key, r in members.items())
        if not all(current for _, current in entries):
            self._dirty = {*segments, *self._members}
        for stream, entries in data["pending"].items():
            self.join.pending[stream].load(entries)
        self._next_deadline = _RECHECK


class Pipeline:
    """Decode, join, window and score; see the module docstring."""

    def __init__(
        self,
        config: Config,
        profiles: Mapping[str, ReferenceProfile],
        on_window: WindowSink,
        on_dead_letter: DeadLetterSink,
        *,
        collect_training: bool = False,
        local: bool = True,
    ) -> None:
        """``local``: every partition is in this process, which finalises windows itself
        (replay, tests); else the daemon's store does (see ``monitor.finalise``)."""
        self.config = config
        self.local = local
        self.training: TrainingBuffer | None = TrainingBuffer() if collect_training else None
        self.on_window = on_window
        self.on_dead_letter = on_dead_letter
        self.decoder = Decoder((m.name for m in config.models), config.kafka.max_message_bytes)
        self.counts: Counter[str] = Counter()
        self.dlq: Counter[str] = Counter()
        self.as_of_ms = 0
        self.models = {m.name: m for m in config.models}
        self.profiles = dict(profiles)
        self.shards: dict[tuple[str, int], Shard] = {}
        # local finalisation: per model and window key, the partials by partition, kept
        # until final and no prediction points at them (late labels make revisions)
        self._partials: dict[str, dict[int, dict[int, Window]]] = {m: {} for m in self.models}
        self.revised: set[tuple[str, int]] = set()  # partials changed once final
        self._finalised: set[str] = set()  # local: models with a window finalised since settle

    def shard(self, model: str, partition: int, wall_ms: int | None = None) -> Shard:
        """The shard of ``model`` that a message of ``partition`` goes to (made if new)."""
        config = self.models[model]
        if config.window.size is not None:
            partition = ALL_PARTITIONS
        shard = self.shards.get((model, partition))
        if shard is None:
            shard = Shard(config, partition, self.profiles[model], self)
            shard.active_at_ms = wall_ms
            self.shards[(model, partition)] = shard
        return shard

    def process(self, messages: Iterable[Message], wall_ms: int | None = None) -> None:
        """Feed messages in order; ``wall_ms`` (live only) is the processing time, which
        ``close_idle`` compares with."""
        decode = self.decoder.decode
        shards = self.shards
        for message in messages:
            event = decode(message.stream, message.value)
            if isinstance(event, Rejection):
                self.dead_letter(message, event.reason, event.detail)
                continue
            self.as_of_ms = max(self.as_of_ms, event.ts_ms)
            shard = shards.get((event.model, message.partition)) or \
                self.shard(event.model, message.partition)
            shard.active_at_ms = wall_ms
            stream = event.stream
            if stream == "predictions":
                shard.on_prediction(event, message)
            elif stream == "features":
                shard.on_features(event, message)
            else:
                shard.on_label(event, message)

    def dead_letter(self, message: Message, reason: str, detail: str) -> None:
        self.dlq[reason] += 1
        self.on_dead_letter(message, reason, detail)

    def emit(self, line: dict[str, Any]) -> None:
        self.on_window(line)

    # -- finalisation ---------------------------------------------------------------------

    def closed_partial(self, shard: Shard, window: Window) -> None:
        """A shard closed its part of a window."""
        name = shard.model.name
        if not self.local:
            window.final = True  # handed over: the store finalises it (or revises it, when
            self.revised.add((name, window.key))  # it was finalised already)
            return
        parts = self._partials[name].setdefault(window.key, {})
        parts[shard.partition] = window
        if any(w.final for w in parts.values()):  # a partition that came late to it
            window.final = True
            self.revised.add((name, window.key))
            self._finalised.add(name)  # its revision is written at once
        else:
            self._finalise_ready(name)

    def revised_partial(self, shard: Shard, window: Window) -> None:
        """Late labels changed a shard's closed window."""
        self.revised.add((shard.model.name, window.key))

    def _finalise_ready(self, name: str) -> None:
        """Finalise, in key order, the windows every partition of the model has passed."""
        pending = self._partials[name]
        shards = [s for (model, _), s in self.shards.items() if model == name]
        for key in sorted(k for k, parts in pending.items()
                          if not any(w.final for w in parts.values())):
            parts = pending[key]
            if not all(s.partition in parts or s.passed(key) for s in shards):
                break
            self.counts["windows"] += 1
            self._emit_final(name, parts)
            self._finalised.add(name)

    def _emit_final(self, name: str, parts: dict[int, Window]) -> None:
        windows = [parts[p] for p in sorted(parts)]
        for window in windows:
            window.final = True
        self.emit(merged_line(windows, self.as_of_ms))

    def settle(self, name: str, *, force: bool = False) -> None:
        """Local only: once a window of ``name`` was finalised (or ``force``), write one
        revision line per final window that changed since (whichever partitions changed
        it), and forget the windows no prediction points at any more."""
        if not self.local or not (force or name in self._finalised):
            return
        self._finalised.discard(name)
        pending = self._partials[name]
        for model, key in sorted(self.revised):
            parts = pending.get(key)
            if model == name and parts is not None and all(w.final for w in parts.values()):
                self.revised.discard((model, key))
                self._emit_final(name, parts)
        for key in [k for k, parts in pending.items()
                    if all(w.final and w.refs <= 0 for w in parts.values())]:
            del pending[key]

    def emit_revisions(self) -> None:
        """Mark every closed window that late labels changed; local, write their revision
        lines now (the daemon's store finalises them at its commit)."""
        for shard in list(self.shards.values()):
            shard.emit_revisions()
        for name in self.models:
            self.settle(name, force=True)

    def flush(self) -> None:
        """End of input: close and score every open window, then write revisions."""
        for shard in list(self.shards.values()):
            shard.close_all()
            shard.drain_pending()
        if self.local:
            for name in self.models:
                self._finalise_ready(name)
        self.emit_revisions()

    def close_idle(self, wall_ms: int) -> bool:
        """Live only: a shard quiet for its model's ``window.idle_timeout`` has its
        event-time clock moved to the wall clock, so its due windows close although no
        event comes, and other partitions' windows are not held back by it. Returns
        whether there is something to save: a window closed, or an idle watermark moved
        by ``IDLE_STEP_MS`` since it was last reported."""
        changed = False
        for shard in list(self.shards.values()):
            quiet_since = shard.active_at_ms
            idle_ms = shard.model.window.idle_timeout_s * 1000
            if quiet_since is None or wall_ms - quiet_since < idle_ms:
                continue
            if wall_ms > shard.clock_ms:
                if wall_ms - shard.idle_saved_ms >= IDLE_STEP_MS:
                    shard.idle_saved_ms, changed = wall_ms, True
                shard.clock_ms = wall_ms
                closed = len(shard.closed)
                shard.close_due()
                changed = changed or len(shard.closed) != closed
                if self.local:
                    self._finalise_ready(shard.model.name)
                    self.settle(shard.model.name)
        return changed

    def rebaseline(self, model: str, profile: ReferenceProfile) -> None:
        """Score windows opened from now on against ``profile`` (a new champion's
        reference); open windows keep the profile they started with."""
        self.profiles[model] = profile
        for (name, _), shard in self.shards.items():
            if name == model:
                shard.profile = profile

    # -- shards of the daemon's partitions ------------------------------------------------

    def open_shards(self, partitions: Iterable[int], wall_ms: int) -> None:
        """Make the shards of newly assigned partitions, so a partition without messages
        still has a clock (it follows the wall clock once idle)."""
        for partition in partitions:
            for name in self.models:
                self.shard(name, partition, wall_ms)

    def pass_finalised(self, model: str, key: int) -> None:
        """Windows up to ``key`` are final (the store says so): every duration shard of
        the model treats their events as late, also a shard that has just been made."""
        for (name, _), shard in self.shards.items():
            if name == model and not shard.assigner.by_count:
                shard.clock_ms = max(shard.clock_ms, shard.assigner.deadline(key, 0) or 0)

    def drop_shards(self) -> None:
        """Forget every shard (after its state was committed: partitions were revoked)."""
        self.shards.clear()
        for pending in self._partials.values():
            pending.clear()
        self.revised.clear()
        self._finalised.clear()

    # -- checkpoint -----------------------------------------------------------------------

    def checkpoint(self) -> dict[tuple[str, int], dict[str, Any]]:
        """Per shard (model, partition), the state to save with the offsets (the counters
        ride on each)."""
        shared = {"counts": dict(self.counts), "dlq": dict(self.dlq), "as_of_ms": self.as_of_ms}
        return {key: {"pipeline": shared, "model": shard.to_dict()}
                for key, shard in self.shards.items()}

    def segments(self) -> dict[tuple[str, int], dict[int, list[list[Any]]]]:
        """Per shard, the segments of remembered predictions changed since the last call;
        saved beside ``checkpoint()``, so a commit rewrites only what changed."""
        return {key: shard.segments() for key, shard in self.shards.items()}

    def partials(self) -> dict[tuple[str, int], dict[int, Window]]:
        """Per shard, its closed windows changed since the last call (see ``Shard``'s)."""
        return {key: shard.partials() for key, shard in self.shards.items()}

    def watermarks(self) -> dict[tuple[str, int], int]:
        """Per shard, the event time its partition has passed."""
        return {key: shard.watermark for key, shard in self.shards.items()}

    def restore(self, states: Mapping[tuple[str, int], dict[str, Any]],
                segments: Mapping[tuple[str, int], Mapping[int, list[list[Any]]]],
                closed: Mapping[tuple[str, int], Mapping[int, dict[str, Any]]]) -> None:
        """Continue from a ``checkpoint()``, every saved segment and closed window;
        shards without a saved state start empty."""
        for (name, partition), state in states.items():
            if name not in self.models:
                continue  # a model removed from the config since
            shard = self.shard(name, partition)
            shard.load_dict(state["model"], segments.get((name, partition), {}),
                            closed.get((name, partition), {}))
            shared = state["pipeline"]
            self.counts = Counter(shared["counts"])
            self.dlq = Counter(shared["dlq"])
            self.as_of_ms = max(self.as_of_ms, shared["as_of_ms"])
            if self.local:
                for window in shard.closed:
                    self._partials[name].setdefault(window.key, {})[partition] = window

    def summary(self) -> dict[str, Any]:
        c = self.counts
        return {
            "predictions": c["predictions"],
            "dlq": dict(sorted(self.dlq.items())),
            "unmatched": {"features": c["unmatched_features"], "labels": c["unmatched_labels"]},
            "late_features": c["late_features"],
            "windows": c["windows"],
            "late_predictions": c["late_predictions"],
            "duplicates": {"features": c["duplicate_features"], "labels": c["duplicate_labels"]},
            "labels_of_late_predictions": c["labels_of_late_predictions"],
        }
