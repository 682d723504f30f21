"""``driftline run``: the Kafka source and the store around the shared pipeline.

Exactly-once effect: each commit writes, in ONE store transaction, the next offset of every
partition, the pipeline's state (join buffers, open windows, counters) and the window lines
closed since the last commit. On start the pipeline is restored from that state and every
partition is positioned at its stored offset, so a crash, even a SIGKILL, neither loses nor
double-counts an event: the messages after the last commit are read again and, processed
in the same order from the same state, produce the same windows. Dead letters are produced
before the commit and may be produced again after a crash (at least once).

One daemon per consumer group for now: the pipeline's state is saved per model, not per
partition, so a second process in the group would not see the first one's state.
"""

from __future__ import annotations

import hashlib
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata
from sqlalchemy import select

from monitor.alerts import AlertPolicyState, DeliveryStats, OutboxWorker, enqueue
from monitor.config import Config
from monitor.engine.profile import FORMAT_VERSION, ReferenceProfile
from monitor.errors import KafkaError, StoreError
from monitor.http_api import HttpServer, create_app
from monitor.ingest.ordering import TimestampMerge
from monitor.kafka_io import SeekToStored, dlq_headers, make_consumer, make_producer
from monitor.metrics import Metrics
from monitor.pipeline import Message, Pipeline
from monitor.rebaseline import champion_profile
from monitor.replay import load_profiles
from monitor.retrain_trigger import RetrainTrigger
from monitor.store import Checkpoint, Store, TrainingLabel, TrainingRow, WindowLine, open_store

__all__ = ["CHECKPOINT_PARTITION", "CHECKPOINT_TOPIC", "DaemonStats", "run_daemon"]

log = structlog.get_logger("driftline.daemon")

COMMIT_INTERVAL_S = 1.0  # how often state and offsets are saved while messages flow...
PRUNE_INTERVAL_S = 3600.0  # retention runs hourly, on APScheduler's thread
COMMIT_SHARE = 0.1  # ...unless saving takes longer: then at most this share of the time
ORDER_WAIT_S = 2.0  # how long records wait for a lagging partition before going on
CHECKPOINT_TOPIC, CHECKPOINT_PARTITION = "*", -1  # the state is per model, not per partition
ALERTS_TOPIC = "__alerts__"  # the alert policies' state rides in the same checkpoints


def _prune(store: Store, config: Config) -> None:
    """Retention: drop state and raw rows older than ``store.retention`` (scores stay)."""
    horizon = datetime.now(UTC) - timedelta(seconds=config.store.retention_s)
    pruned = store.prune(horizon)
    if any(pruned.values()):
        log.info("pruned", older_than=horizon.isoformat(), **pruned)


class DaemonStats:
    """What the daemon did, for logs, tests and benchmarks."""

    def __init__(self) -> None:
        self.consumed = 0
        self.dead_letters = 0
        self.windows = 0
        self.commits = 0
        self.first_message_at = 0.0  # time.monotonic() of the first and last processed data
        self.last_message_at = 0.0


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signals only reach the main thread; the caller owns `stop`
        return

    def handler(signum: int, _frame: object) -> None:
        log.info("stopping", signal=signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_daemon(
    config: Config,
    *,
    cache_dir: Path,
    output: Path | None = None,
    max_idle_s: float | None = None,
    stop: threading.Event | None = None,
) -> DaemonStats:
    """Consume until stopped (signal, ``stop`` event, or ``max_idle_s`` without messages).

    When stopped for idleness, open windows are closed and written first (backfills,
    demos, tests); on a signal they stay open in the saved state and continue on restart.
    """
    stop = stop or threading.Event()
    stats = DaemonStats()
    kafka = config.kafka
    group = kafka.group_id
    profiles = load_profiles(config, cache_dir)
    store = open_store(config.store)
    for model in config.models:
        store.register_model(model.name, model.task)
        latest = store.latest_profile(model.name)  # a champion re-baselined on before
        if latest is not None:
            profiles[model.name] = ReferenceProfile.from_dict(latest[1])
            log.info("profile_from_store", model=model.name, version=latest[0])
    consumer, producer = make_consumer(kafka), make_producer(kafka)
    sink = output.open("ab") if output is not None else None
    failures: list[BaseException] = []
    closed_lines: list[dict[str, Any]] = []

    def on_dead_letter(message: Message, reason: str, detail: str) -> None:
        stats.dead_letters += 1
        metrics.observe_dead_letter(reason)
        future = producer.send(f"{message.topic}.dlq", value=message.value, key=message.key,
                               headers=dlq_headers(message, reason, detail))
        future.add_errback(failures.append)

    retraining = any(m.retrain.enabled for m in config.models)
    pipeline = Pipeline(config, profiles, closed_lines.append, on_dead_letter,
                        collect_training=retraining)
    trigger = RetrainTrigger(config, store, cache_dir / "retrain") if retraining else None
    if trigger is not None:
        trigger.recover()
        trigger.start_schedules()
    saved = store.load_checkpoints(group)
    pipeline.restore({c.model: c.state for c in saved
                      if (c.topic, c.partition) == (CHECKPOINT_TOPIC, CHECKPOINT_PARTITION)})
    policies = {m.name: AlertPolicyState(m.name, m.alerts) for m in config.models}
    for c in saved:
        if c.topic == ALERTS_TOPIC and c.model in policies:
            policies[c.model] = AlertPolicyState.from_dict(
                c.state, config.model(c.model).alerts, c.model)  # type: ignore[union-attr]
    metrics = Metrics()

    def delivered(stats: DeliveryStats) -> None:
        metrics.observe_delivery("delivered", stats.delivered)
        metrics.observe_delivery("retried", stats.retried)
        metrics.observe_delivery("gave_up", stats.gave_up)

    worker = OutboxWorker(store, config.alerts, on_stats=delivered)
    readiness = {"broker": False, "assignment": False}

    def ready() -> dict[str, bool]:
        try:
            with store.reading("checking the store") as conn:
                conn.execute(select(1))
            reachable = True
        except StoreError:
            reachable = False
        return {**readiness, "store": reachable}

    http = None
    if config.http.enabled:
        http = HttpServer(create_app(store, metrics, ready, config.http.token),
                          config.http.host, config.http.port)
    housekeeping = BackgroundScheduler(timezone=UTC)
    housekeeping.add_job(_prune, "interval", seconds=PRUNE_INTERVAL_S, args=[store, config],
                         next_run_time=datetime.now(UTC))
    topics = kafka.topics
    streams = {t: topics.stream_of(t) or "" for t in
               (topics.predictions, topics.features, topics.labels)}
    next_offsets: dict[tuple[str, int], int] = {}
    evicted = dict(pipeline.summary()["unmatched"])

    def commit() -> float:
        """Save offsets, state and closed windows in one transaction, then tell Kafka.

        Returns the seconds it took: the state grows with the join's remembered
        predictions, and the next commit waits long enough to keep its cost bounded.
        """
        started = time.monotonic()
        pipeline.emit_revisions()
        producer.flush()
        if failures:
            raise KafkaError(f"a dead letter could not be written: {failures[0]}; "
                             "nothing was committed, nothing is lost")
        lines = list(closed_lines)
        alerts = [event.to_body() for line in lines
                  for event in policies[line["model"]].evaluate(line)]
        rows, labels = pipeline.training.drain() if pipeline.training else ([], [])
        store.commit_batch(
            group,
            offsets=next_offsets,
            checkpoints=[
                *(Checkpoint(CHECKPOINT_TOPIC, CHECKPOINT_PARTITION, name, state)
                  for name, state in pipeline.checkpoint().items()),
                *(Checkpoint(ALERTS_TOPIC, CHECKPOINT_PARTITION, name, policy.to_dict())
                  for name, policy in policies.items()),
            ],
            windows=[WindowLine(line["window_key"], line) for line in lines],
            alerts=alerts,
            outbox=enqueue(alerts, config.alerts.routes, store.now()),
            training_rows=[TrainingRow(*row) for row in rows],
            training_labels=[TrainingLabel(*label) for label in labels],
        )
        closed_lines.clear()
        if trigger is not None:
            raise_alerts(trigger.consider(alerts, pipeline.as_of_ms))
        if alerts:
            worker.wake()
            for body in alerts:
                log.info("alert", model=body["model"], kind=body["kind"],
                         status=body["status"], summary=body["summary"])
        stats.commits += 1
        for line in lines:
            metrics.observe_window(line)
        unmatched = pipeline.summary()["unmatched"]
        for kind in ("features", "labels"):
            metrics.observe_eviction(kind, unmatched[kind] - evicted[kind])
            evicted[kind] = unmatched[kind]
        stats.windows += len(lines)
        for line in lines:
            log.info("window", model=line["model"], window_start=line["window_start"],
                     revision=line["revision"], n=line["n_predictions"],
                     drift=line["drift_detected"], health=line["health_score"])
            if sink is not None:
                sink.write(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
        if sink is not None:
            sink.flush()
        if next_offsets:  # for lag tooling only; the store's offsets are the truth
            consumer.commit(offsets={TopicPartition(t, p): OffsetAndMetadata(o, "", -1)
                                     for (t, p), o in next_offsets.items()})
        took = time.monotonic() - started
        metrics.observe_commit(took)
        return took

    def raise_alerts(bodies: list[dict[str, Any]]) -> None:
        """Alerts not tied to a window (retrain outcomes): saved and queued at once."""
        if bodies:
            store.commit_batch(group, alerts=bodies,
                               outbox=enqueue(bodies, config.alerts.routes, store.now()))
            worker.wake()
            for body in bodies:
                log.info("alert", model=body["model"], kind=body["kind"],
                         status=body["status"], summary=body["summary"])

    def collect_retrains() -> None:
        if trigger is None:
            return
        bodies, outcomes = trigger.poll()
        for outcome in outcomes:
            metrics.observe_retrain(outcome.status)
            if outcome.promoted:
                metrics.observe_retrain("promoted")
        bodies += trigger.due(pipeline.as_of_ms,
                              lambda alert_id: any(alert_id in p.firing().values()
                                                   for p in policies.values()))
        raise_alerts(bodies)
        for outcome in outcomes:
            if outcome.promoted and outcome.version is not None:
                model = config.model(outcome.model)
                assert model is not None
                profile = champion_profile(model)
                saved = profile.to_dict()
                digest = hashlib.sha256(orjson.dumps(saved, option=orjson.OPT_SORT_KEYS))
                store.save_profile(model.name, digest.hexdigest(), saved, FORMAT_VERSION)
                store.register_version(model.name, outcome.version, digest.hexdigest())
                pipeline.rebaseline(model.name, profile)
                log.info("rebaselined", model=model.name, version=outcome.version)

    merge: TimestampMerge[TopicPartition] = TimestampMerge()

    def feed(records: list[Any]) -> None:
        if not records:
            return
        pipeline.process([
            Message(streams[r.topic], r.value, r.topic, r.partition, r.offset, r.key,
                    tuple(r.headers or ()))
            for r in records
        ], wall_ms=int(time.time() * 1000))
        for r in records:
            next_offsets[(r.topic, r.partition)] = r.offset + 1
        metrics.observe_messages(Counter(streams[r.topic] for r in records))
        stats.consumed += len(records)
        stats.last_message_at = time.monotonic()

    def lagging() -> set[TopicPartition]:
        """Partitions with records on the broker that this consumer has not fetched yet."""
        out = set()
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                lag = highwater - consumer.position(tp)
                metrics.observe_lag(tp.topic, tp.partition, lag)
                if lag > 0:
                    out.add(tp)
        return out

    def on_revoked() -> None:
        feed(list(merge.drain_all()))
        commit()

    consumer.subscribe(topics=list(streams), listener=SeekToStored(
        consumer, lambda: store.load_offsets(group), on_revoked))
    worker.start()
    housekeeping.start()
    if http is not None:
        http.start()
        log.info("http", url=http.url)
    log.info("started", bootstrap=kafka.bootstrap_servers, group=group,
             models=[m.name for m in config.models])
    idle_since = committed_at = time.monotonic()
    interval = COMMIT_INTERVAL_S
    uncommitted = False
    try:
        with _stop_on_signals(stop):
            while not stop.is_set():
                batch = consumer.poll(timeout_ms=kafka.poll_timeout_ms,
                                      max_records=kafka.poll_max_records)
                now = time.monotonic()
                readiness["broker"] = True  # poll returned: the cluster answers
                readiness["assignment"] = bool(consumer.assignment())
                collect_retrains()
                pipeline.close_idle(int(time.time() * 1000))
                uncommitted = uncommitted or bool(closed_lines)
                for tp, records in batch.items():
                    merge.add(tp, [(r.offset, r.timestamp, r) for r in records])
                if batch or not consumer.assignment() or (trigger and trigger.running):
                    idle_since = now  # idle counts once partitions are ours and no retrain runs
                if batch:
                    stats.first_message_at = stats.first_message_at or now
                    feed(list(merge.drain(lagging())))
                    uncommitted = True
                elif len(merge) and now - idle_since >= ORDER_WAIT_S:
                    feed(list(merge.drain_all()))  # a lagging partition sent nothing: go on
                if uncommitted and now - committed_at >= interval:
                    took = commit()
                    interval = max(COMMIT_INTERVAL_S, took / COMMIT_SHARE)
                    uncommitted, committed_at = False, time.monotonic()
                if not batch and max_idle_s is not None and now - idle_since >= max_idle_s:
                    log.info("idle_stop", idle_s=max_idle_s)
                    feed(list(merge.drain_all()))
                    pipeline.flush()
                    break
            commit()
    finally:
        summary = pipeline.summary()
        log.info("stopped", consumed=stats.consumed, lines_written=stats.windows, **summary)
        if sink is not None:
            sink.write(orjson.dumps({"summary": summary}, option=orjson.OPT_APPEND_NEWLINE))
            sink.close()
        producer.close(timeout=kafka.shutdown_timeout_s)
        consumer.close(autocommit=False)
        if trigger is not None:
            trigger.stop()
        if http is not None:
            http.stop()
        worker.stop()
        housekeeping.shutdown(wait=True)
        store.close()
    return stats
