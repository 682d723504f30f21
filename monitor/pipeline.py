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

from monitor.config import Config
from monitor.engine.profile import ReferenceProfile
from monitor.ingest.decode import Decoder, Rejection
from monitor.shard import Shard
from monitor.windows.window import Window, merged_line

__all__ = ["ALL_PARTITIONS", "Message", "Pipeline", "TrainingBuffer"]

ALL_PARTITIONS = -1  # the shard of a count-window model: every partition, in one order
IDLE_STEP_MS = 10_000  # an idle partition's watermark is saved when it moved this much

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
