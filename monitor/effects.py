"""What the daemon writes, and what follows from it: the one commit and its side effects.

``Effects.commit`` saves, in ONE store transaction: the next offset of every partition
this process holds, the state of its shards (join, open windows, clock), the partials its
shards closed or late labels changed, its partitions' watermarks, and the joined rows kept
for retraining; then, with the models' rows locked, it finalises every window all
partitions have passed (whichever process's partitions they are: ``monitor.finalise``),
evaluates the alert policies on the lines and saves the alerts with their outbox rows.
Then come the effects that may be repeated safely: waking the webhook worker, starting
retrains, metrics, logs and the optional JSONL sink.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from typing import IO, Any

import orjson
import structlog

from monitor.alerts import AlertPolicyState, OutboxWorker, enqueue
from monitor.config import Config
from monitor.engine.profile import FORMAT_VERSION, ReferenceProfile
from monitor.engine.sample_rows import sample_rows
from monitor.finalise import finalise_in_store
from monitor.metrics import Metrics
from monitor.pipeline import ALL_PARTITIONS, Pipeline
from monitor.rebaseline import champion_profile
from monitor.retrain_trigger import RetrainTrigger
from monitor.store import (
    Checkpoint,
    Partial,
    Store,
    TrainingLabel,
    TrainingRow,
    WindowLine,
    WindowSample,
    finals,
)
from monitor.store.records import Watermark
from monitor.windows.window import Window

__all__ = ["ALERTS_TOPIC", "CHECKPOINT_PARTITION", "CHECKPOINT_TOPIC", "Effects",
           "segment_topic"]

log = structlog.get_logger("driftline.daemon")

CHECKPOINT_TOPIC = "*"  # a shard's state: (topic "*", its partition, model)
CHECKPOINT_PARTITION = -1  # of state that is per model, not per partition
ALERTS_TOPIC = "__alerts__"  # the alert policies' state rides in the same checkpoints
FOLLOW_INTERVAL_S = 30.0  # how often the store is asked for a champion promoted elsewhere


def segment_topic(partition: int) -> str:
    """The checkpoint "topic" of a shard's remembered predictions, one row per segment
    ("partition" = segment number, see ``monitor.shard``): a commit rewrites only the
    segments that changed and deletes those emptied."""
    return f"__segment__/{partition}"


def _sample(window: Window) -> WindowSample:
    """The retained rows of a window closed for the first time, as the store keeps them."""
    rows = sample_rows(window.state)
    return WindowSample(window.model.name, window.key, rows.columns, rows.rows)


class Effects:
    """The store-side half of the daemon (the Kafka half is ``monitor.daemon``)."""

    def __init__(self, config: Config, store: Store, pipeline: Pipeline, *,
                 metrics: Metrics, worker: OutboxWorker, trigger: RetrainTrigger | None,
                 sink: IO[bytes] | None, versions: dict[str, str | None] | None = None
                 ) -> None:
        """``versions``: per model, the version whose profile the pipeline scores with
        (None: the configured reference)."""
        self.config = config
        self.store = store
        self.pipeline = pipeline
        self.metrics = metrics
        self.worker = worker
        self.trigger = trigger
        self.sink = sink
        self.topic = config.kafka.topics.predictions  # partials and watermarks are its
        self.partitions: dict[str, set[int]] = {}  # per model: partitions finalising waits for
        self.windows_written = 0
        self.versions = dict(versions or {})
        self._followed_at = time.monotonic()
        self.policies = {m.name: AlertPolicyState(m.name, m.alerts) for m in config.models}
        self._evicted = dict(pipeline.summary()["unmatched"])

    def set_partitions(self, count: int) -> None:
        """The predictions topic has ``count`` partitions: a window is final once all have
        passed it (a count-window model has one shard for all)."""
        for model in self.config.models:
            self.partitions[model.name] = {ALL_PARTITIONS} if model.window.size is not None \
                else set(range(count))

    def restore(self, partitions: Iterable[int]) -> None:
        """Continue the shards of newly assigned ``partitions`` from the store (and make
        those not saved yet), and the alert policies."""
        wanted = {*partitions, ALL_PARTITIONS}
        saved = self.store.load_checkpoints(self.config.kafka.group_id)
        states: dict[tuple[str, int], dict[str, Any]] = {}
        segments: dict[tuple[str, int], dict[int, list[list[Any]]]] = {}
        segment_topics = {segment_topic(partition): partition for partition in wanted}
        for c in saved:
            model = self.config.model(c.model)
            if c.topic == CHECKPOINT_TOPIC and c.partition in wanted:
                states[(c.model, c.partition)] = c.state
            elif c.topic in segment_topics:  # c.partition is the segment's number
                segments.setdefault((c.model, segment_topics[c.topic]), {})[c.partition] = \
                    c.state["entries"]
            elif c.topic == ALERTS_TOPIC and model is not None:
                self.policies[c.model] = AlertPolicyState.from_dict(c.state, model.alerts,
                                                                    c.model)
        closed: dict[tuple[str, int], dict[int, dict[str, Any]]] = {}
        for partial in self.store.load_partials():
            if partial.topic == self.topic and partial.partition in wanted and partial.refs > 0:
                closed.setdefault((partial.model, partial.partition), {})[
                    partial.window_key] = partial.state
        self.pipeline.restore(states, segments, closed)
        self.pipeline.open_shards(partitions, int(time.time() * 1000))
        for name, key in self.store.last_windows().items():
            self.pipeline.pass_finalised(name, key)
        self._evicted = dict(self.pipeline.summary()["unmatched"])

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        """The one transaction, then its effects."""
        pipeline, group = self.pipeline, self.config.kafka.group_id
        pipeline.emit_revisions()
        changed = {(name, key, partition): window
                   for (name, partition), windows in pipeline.partials().items()
                   for key, window in windows.items()}
        partials = [Partial(name, key, self.topic, partition, window.to_dict(),
                            window.n_predictions, refs=window.refs)
                    for (name, key, partition), window in changed.items()]
        held = {**{(name, window.key, partition): window
                   for (name, partition), shard in pipeline.shards.items()
                   for window in shard.closed}, **changed}  # as saved: no need to read back
        revised, pipeline.revised = pipeline.revised, set()
        segments = [(shard, key, entries) for shard, changed in pipeline.segments().items()
                    for key, entries in changed.items()]
        rows, labels = pipeline.training.drain() if pipeline.training else ([], [])
        with self.store.writing(f"committing a batch of consumer group {group!r}") as conn:
            finals.lock_models(conn, pipeline.models)
            self.store.save_batch(
                conn, group,
                offsets=offsets,
                partials=partials,
                watermarks=[Watermark(name, self.topic, partition, mark)
                            for (name, partition), mark in pipeline.watermarks().items()],
                checkpoints=[
                    *(Checkpoint(CHECKPOINT_TOPIC, partition, name, state)
                      for (name, partition), state in pipeline.checkpoint().items()),
                    *(Checkpoint(segment_topic(partition), key, name, {"entries": entries})
                      for (name, partition), key, entries in segments if entries),
                ],
                dropped_checkpoints=[(segment_topic(partition), key, name)
                                     for (name, partition), key, entries in segments
                                     if not entries],
                training_rows=[TrainingRow(*row) for row in rows],
                training_labels=[TrainingLabel(*label) for label in labels],
            )
            lines, firsts = finalise_in_store(
                conn, pipeline, self.topic, partitions=self.partitions, revised=revised,
                released={(p.model, p.window_key) for p in partials if p.refs <= 0}, held=held)
            alerts = self._evaluate(conn, lines)
            self.store.save_batch(
                conn, group,
                checkpoints=[Checkpoint(ALERTS_TOPIC, CHECKPOINT_PARTITION, name,
                                        self.policies[name].to_dict())
                             for name in {line["model"] for line in lines}],
                windows=[WindowLine(line["window_key"], line) for line in lines],
                alerts=alerts,
                outbox=enqueue(alerts, self.config.alerts.routes, self.store.now()),
                window_samples=[_sample(window) for window in firsts],
            )
        self._announce(alerts)
        if self.trigger is not None:
            self.raise_alerts(self.trigger.consider(alerts, pipeline.as_of_ms))
        self._written(lines)

    def _evaluate(self, conn: Any, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The alert policies of the lines' models, as saved (another process may have
        moved them), applied to the lines in order; the bodies of the alerts raised."""
        names = {line["model"] for line in lines}
        for name, state in finals.checkpoint_states(conn, self.config.kafka.group_id,
                                                    ALERTS_TOPIC, names).items():
            model = self.config.model(name)
            assert model is not None
            self.policies[name] = AlertPolicyState.from_dict(state, model.alerts, name)
        return [event.to_body() for line in lines
                for event in self.policies[line["model"]].evaluate(line)]

    def raise_alerts(self, bodies: list[dict[str, Any]]) -> None:
        """Alerts not tied to a window (retrain outcomes): saved and queued at once."""
        if bodies:
            self.store.commit_batch(self.config.kafka.group_id, alerts=bodies,
                                    outbox=enqueue(bodies, self.config.alerts.routes,
                                                   self.store.now()))
            self._announce(bodies)

    def _announce(self, bodies: list[dict[str, Any]]) -> None:
        if bodies:
            self.worker.wake()
        for body in bodies:
            log.info("alert", model=body["model"], kind=body["kind"],
                     status=body["status"], summary=body["summary"])

    def _written(self, lines: list[dict[str, Any]]) -> None:
        self.windows_written += len(lines)
        unmatched = self.pipeline.summary()["unmatched"]
        for kind in ("features", "labels"):
            self.metrics.observe_eviction(kind, unmatched[kind] - self._evicted[kind])
            self._evicted[kind] = unmatched[kind]
        for line in lines:
            self.metrics.observe_window(line)
            log.info("window", model=line["model"], window_start=line["window_start"],
                     revision=line["revision"], n=line["n_predictions"],
                     drift=line["drift_detected"], health=line["health_score"])
            if self.sink is not None:
                self.sink.write(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
        if self.sink is not None:
            self.sink.flush()

    def collect_retrains(self) -> None:
        """Record finished retrains, start due ones, re-baseline on a promotion."""
        if self.trigger is None:
            return
        bodies, outcomes = self.trigger.poll()
        bodies += self.trigger.due(self.pipeline.as_of_ms, self._is_firing)
        self.raise_alerts(bodies)
        for outcome in outcomes:
            self.metrics.observe_retrain(outcome.status)
            if outcome.promoted and outcome.version is not None:
                self.metrics.observe_retrain("promoted")
                self._rebaseline(outcome.model, outcome.version)

    def follow_rebaselines(self) -> None:
        """Every ``FOLLOW_INTERVAL_S``: re-baseline on a champion another daemon of the
        group promoted (this one re-baselines on its own promotions at once)."""
        if time.monotonic() - self._followed_at < FOLLOW_INTERVAL_S:
            return
        self._followed_at = time.monotonic()
        for model in self.config.models:
            version = self.store.latest_version(model.name)
            if version is not None and version != self.versions.get(model.name):
                latest = self.store.latest_profile(model.name)
                if latest is not None:
                    self.versions[model.name] = latest[0]
                    self.pipeline.rebaseline(model.name, ReferenceProfile.from_dict(latest[1]))
                    log.info("rebaselined", model=model.name, version=latest[0],
                             promoted_by="another daemon")

    def _is_firing(self, alert_id: str) -> bool:
        return any(alert_id in policy.firing().values() for policy in self.policies.values())

    def _rebaseline(self, name: str, version: str) -> None:
        """Score new windows against the new champion's profile, also after restarts."""
        model = self.config.model(name)
        assert model is not None
        profile = champion_profile(model)
        saved = profile.to_dict()
        digest = hashlib.sha256(orjson.dumps(saved, option=orjson.OPT_SORT_KEYS)).hexdigest()
        self.store.save_profile(name, digest, saved, FORMAT_VERSION)
        self.store.register_version(name, version, digest)
        self.pipeline.rebaseline(name, profile)
        self.versions[name] = version
        log.info("rebaselined", model=name, version=version)

    def write_summary(self) -> None:
        if self.sink is not None:
            summary = self.pipeline.summary()
            self.sink.write(orjson.dumps({"summary": summary}, option=orjson.OPT_APPEND_NEWLINE))
            self.sink.close()

