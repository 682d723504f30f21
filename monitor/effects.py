"""What the daemon writes, and what follows from it: the one commit and its side effects.

``Effects.commit`` saves, in ONE store transaction, the next offset of every partition,
the pipeline's checkpoint, the alert policies' state, the windows closed since the last
commit, the alerts they raised with their outbox rows, and the joined rows kept for
retraining. Then come the effects that may be repeated safely: waking the webhook worker,
starting retrains, metrics, logs and the optional JSONL sink.
"""

from __future__ import annotations

import hashlib
from typing import IO, Any

import orjson
import structlog

from monitor.alerts import AlertPolicyState, OutboxWorker, enqueue
from monitor.config import Config
from monitor.engine.profile import FORMAT_VERSION
from monitor.engine.sample_rows import sample_rows
from monitor.metrics import Metrics
from monitor.pipeline import Pipeline
from monitor.rebaseline import champion_profile
from monitor.retrain_trigger import RetrainTrigger
from monitor.store import Checkpoint, Store, TrainingLabel, TrainingRow, WindowLine, WindowSample
from monitor.windows.window import Window

__all__ = [
    "ALERTS_TOPIC",
    "CHECKPOINT_PARTITION",
    "CHECKPOINT_TOPIC",
    "SEGMENT_TOPIC",
    "WINDOW_TOPIC",
    "Effects",
]

log = structlog.get_logger("driftline.daemon")

CHECKPOINT_TOPIC, CHECKPOINT_PARTITION = "*", -1  # the state is per model, not per partition
ALERTS_TOPIC = "__alerts__"  # the alert policies' state rides in the same checkpoints
# The join's remembered predictions, one checkpoint row per window ("partition" = window
# key): a commit rewrites only the segments that changed, not the whole join.
SEGMENT_TOPIC = "__segment__"
WINDOW_TOPIC = "__window__"  # closed windows kept for late labels, one row each, likewise


def _sample(window: Window) -> WindowSample:
    """The retained rows of a window closed for the first time, as the store keeps them."""
    rows = sample_rows(window.state)
    return WindowSample(window.model.name, window.key, rows.columns, rows.rows)


class Effects:
    """The store-side half of the daemon (the Kafka half is ``monitor.daemon``)."""

    def __init__(self, config: Config, store: Store, pipeline: Pipeline,
                 closed_lines: list[dict[str, Any]], *, metrics: Metrics,
                 worker: OutboxWorker, trigger: RetrainTrigger | None,
                 sink: IO[bytes] | None) -> None:
        """``closed_lines`` is the list the pipeline appends its window lines to."""
        self.config = config
        self.store = store
        self.pipeline = pipeline
        self.metrics = metrics
        self.worker = worker
        self.trigger = trigger
        self.sink = sink
        self.closed_lines = closed_lines
        self.windows_written = 0
        self.policies = {m.name: AlertPolicyState(m.name, m.alerts) for m in config.models}
        self._evicted = dict(pipeline.summary()["unmatched"])

    def restore(self) -> None:
        """Continue the pipeline and the alert policies from the saved checkpoints."""
        saved = self.store.load_checkpoints(self.config.kafka.group_id)
        segments: dict[str, dict[int, list[list[Any]]]] = {}
        closed: dict[str, dict[int, dict[str, Any]]] = {}
        for c in saved:
            if c.topic == SEGMENT_TOPIC:
                segments.setdefault(c.model, {})[c.partition] = c.state["entries"]
            elif c.topic == WINDOW_TOPIC and c.state.get("window") is not None:
                closed.setdefault(c.model, {})[c.partition] = c.state["window"]
        self.pipeline.restore({c.model: c.state for c in saved
                               if (c.topic, c.partition) == (CHECKPOINT_TOPIC,
                                                             CHECKPOINT_PARTITION)},
                              segments, closed)
        for c in saved:
            model = self.config.model(c.model)
            if c.topic == ALERTS_TOPIC and model is not None:
                self.policies[c.model] = AlertPolicyState.from_dict(c.state, model.alerts,
                                                                    c.model)
        self._evicted = dict(self.pipeline.summary()["unmatched"])

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        """The one transaction, then its effects."""
        pipeline = self.pipeline
        pipeline.emit_revisions()
        lines = list(self.closed_lines)
        alerts = [event.to_body() for line in lines
                  for event in self.policies[line["model"]].evaluate(line)]
        rows, labels = pipeline.training.drain() if pipeline.training else ([], [])
        self.store.commit_batch(
            self.config.kafka.group_id,
            offsets=offsets,
            checkpoints=[
                *(Checkpoint(CHECKPOINT_TOPIC, CHECKPOINT_PARTITION, name, state)
                  for name, state in pipeline.checkpoint().items()),
                *(Checkpoint(ALERTS_TOPIC, CHECKPOINT_PARTITION, name, policy.to_dict())
                  for name, policy in self.policies.items()),
                *(Checkpoint(SEGMENT_TOPIC, key, name, {"entries": entries})
                  for name, changed in pipeline.segments().items()
                  for key, entries in changed.items()),
                *(Checkpoint(WINDOW_TOPIC, key, name, {"window": window})
                  for name, changed in pipeline.closed_windows().items()
                  for key, window in changed.items()),
            ],
            windows=[WindowLine(line["window_key"], line) for line in lines],
            alerts=alerts,
            outbox=enqueue(alerts, self.config.alerts.routes, self.store.now()),
            training_rows=[TrainingRow(*row) for row in rows],
            training_labels=[TrainingLabel(*label) for label in labels],
            window_samples=[_sample(window) for window in pipeline.drain_first_closed()],
        )
        self.closed_lines.clear()
        self._announce(alerts)
        if self.trigger is not None:
            self.raise_alerts(self.trigger.consider(alerts, pipeline.as_of_ms))
        self._written(lines)

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
        log.info("rebaselined", model=name, version=version)

    def write_summary(self) -> None:
        if self.sink is not None:
            summary = self.pipeline.summary()
            self.sink.write(orjson.dumps({"summary": summary}, option=orjson.OPT_APPEND_NEWLINE))
            self.sink.close()

