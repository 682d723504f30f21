"""``driftline run``: the Kafka source around the shared pipeline.

Exactly-once effect: each commit (``monitor.effects``) writes, in ONE store transaction,
the next offset of every partition, the pipeline's state (join buffers, open windows,
counters) and the window lines closed since the last commit. On start the pipeline is
restored from that state and every partition is positioned at its stored offset, so a
crash, even a SIGKILL, neither loses nor double-counts an event: the messages after the
last commit are read again and, processed in the same order from the same state, produce
the same windows. Dead letters are produced before the commit and may be produced again
after a crash (at least once).

Scale-out: several daemons may share a consumer group. The state is saved per shard
(model and partition); on every assignment a daemon loads the shards of the partitions it
got, and on every revocation it commits and forgets its shards first. A window is
finalised by whichever daemon's commit finds every partition past it (``monitor.finalise``).
The three topics must have as many partitions each, and messages must be keyed by
``event_id`` (the contract's rule), so an event's three messages meet in one shard. A
count-window model (``window.size``) counts in one order of all predictions: it needs a
daemon that holds every partition, and a daemon stops with a configuration error when it
gets only some.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata
from sqlalchemy import select

from monitor.alerts import DeliveryStats, OutboxWorker
from monitor.config import Config
from monitor.effects import Effects
from monitor.engine.profile import ReferenceProfile
from monitor.errors import ConfigError, DriftlineError, KafkaError, StoreError
from monitor.http_api import HttpServer, create_app
from monitor.ingest.ordering import TimestampMerge
from monitor.kafka_io import SeekToStored, dlq_headers, make_consumer, make_producer
from monitor.metrics import Metrics
from monitor.pipeline import Message, Pipeline
from monitor.replay import load_profiles
from monitor.report import WindowReports
from monitor.retrain_trigger import RetrainTrigger
from monitor.store import Store, open_store

__all__ = ["Daemon", "DaemonStats", "run_daemon"]

log = structlog.get_logger("driftline.daemon")

COMMIT_INTERVAL_S = 1.0  # how often state and offsets are saved while messages flow...
COMMIT_SHARE = 0.1  # ...unless saving takes longer: then at most this share of the time
ORDER_WAIT_S = 2.0  # how long records wait for a lagging partition before going on
PRUNE_INTERVAL_S = 3600.0  # retention runs hourly, on APScheduler's thread


class DaemonStats:
    """What the daemon did, for logs, tests and benchmarks."""

    def __init__(self) -> None:
        self.consumed = 0
        self.dead_letters = 0
        self.commits = 0
        self.windows = 0  # window lines written (first closes and revisions)
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


def _prune(store: Store, config: Config) -> None:
    """Retention: drop state and raw rows older than ``store.retention`` (scores stay)."""
    horizon = datetime.now(UTC) - timedelta(seconds=config.store.retention_s)
    pruned = store.prune(horizon)
    if any(pruned.values()):
        log.info("pruned", older_than=horizon.isoformat(), **pruned)


class Daemon:
    """Consumer loop, ordering, readiness and lifecycle; the store side is ``Effects``."""

    def __init__(self, config: Config, *, cache_dir: Path, output: Path | None = None) -> None:
        self.config = config
        self.stats = DaemonStats()
        self.metrics = Metrics()
        profiles = load_profiles(config, cache_dir)
        self.store = store = open_store(config.store)
        versions: dict[str, str | None] = {}
        for model in config.models:
            store.register_model(model.name, model.task)
            latest = store.latest_profile(model.name)  # a champion re-baselined on before
            versions[model.name] = None if latest is None else latest[0]
            if latest is not None:
                profiles[model.name] = ReferenceProfile.from_dict(latest[1])
                log.info("profile_from_store", model=model.name, version=latest[0])
        self.consumer = make_consumer(config.kafka)
        self.producer = make_producer(config.kafka)
        self._failures: list[BaseException] = []
        retraining = any(m.retrain.enabled for m in config.models)
        self.pipeline = Pipeline(config, profiles, self._no_line, self._dead_letter,
                                 collect_training=retraining, local=False)
        self.trigger = RetrainTrigger(config, store, cache_dir / "retrain") \
            if retraining else None
        self.worker = OutboxWorker(store, config.alerts, on_stats=self._delivered)
        self.effects = Effects(config, store, self.pipeline,
                               metrics=self.metrics, worker=self.worker, trigger=self.trigger,
                               sink=output.open("ab") if output is not None else None,
                               versions=versions)
        self._fatal: DriftlineError | None = None  # raised by a rebalance callback
        self.readiness = {"broker": False, "assignment": False}
        self.http = HttpServer(create_app(store, self.metrics, self._ready, config.http.token,
                                          models=config.models,
                                          reports=WindowReports(config, store)),
                               config.http.host, config.http.port) \
            if config.http.enabled else None
        self.housekeeping = BackgroundScheduler(timezone=UTC)
        self.housekeeping.add_job(_prune, "interval", seconds=PRUNE_INTERVAL_S,
                                  args=[store, config], next_run_time=datetime.now(UTC))
        topics = config.kafka.topics
        self.streams = {t: topics.stream_of(t) or "" for t in
                        (topics.predictions, topics.features, topics.labels)}
        self.next_offsets: dict[tuple[str, int], int] = {}
        self.merge: TimestampMerge[TopicPartition] = TimestampMerge()

    # -- callbacks ------------------------------------------------------------------------

    @staticmethod
    def _no_line(line: dict[str, Any]) -> None:
        raise AssertionError("the daemon's pipeline finalises windows in the store")

    def _dead_letter(self, message: Message, reason: str, detail: str) -> None:
        self.stats.dead_letters += 1
        self.metrics.observe_dead_letter(reason)
        future = self.producer.send(f"{message.topic}.dlq", value=message.value,
                                    key=message.key,
                                    headers=dlq_headers(message, reason, detail))
        future.add_errback(self._failures.append)

    def _delivered(self, stats: DeliveryStats) -> None:
        self.metrics.observe_delivery("delivered", stats.delivered)
        self.metrics.observe_delivery("retried", stats.retried)
        self.metrics.observe_delivery("gave_up", stats.gave_up)

    def _ready(self) -> dict[str, bool]:
        try:
            with self.store.reading("checking the store") as conn:
                conn.execute(select(1))
            reachable = True
        except StoreError:
            reachable = False
        return {**self.readiness, "store": reachable}

    # -- the loop -------------------------------------------------------------------------

    def _feed(self, records: list[Any]) -> None:
        if not records:
            return
        streams = self.streams
        self.pipeline.process([
            Message(streams[r.topic], r.value, r.topic, r.partition, r.offset, r.key,
                    tuple(r.headers or ()))
            for r in records
        ], wall_ms=int(time.time() * 1000))
        for r in records:
            self.next_offsets[(r.topic, r.partition)] = r.offset + 1
        self.metrics.observe_messages(Counter(streams[r.topic] for r in records))
        self.stats.consumed += len(records)
        self.stats.last_message_at = time.monotonic()

    def _lagging(self) -> set[TopicPartition]:
        """Partitions with records on the broker that this consumer has not fetched yet."""
        out = set()
        for tp in self.consumer.assignment():
            highwater = self.consumer.highwater(tp)
            if highwater is not None:
                lag = highwater - self.consumer.position(tp)
                self.metrics.observe_lag(tp.topic, tp.partition, lag)
                if lag > 0:
                    out.add(tp)
        return out

    def commit(self) -> float:
        """Dead letters acknowledged, then the one transaction; returns the seconds it took
        (the state grows with the join, and the next commit waits to bound its cost)."""
        started = time.monotonic()
        self.producer.flush()
        if self._failures:
            raise KafkaError(f"a dead letter could not be written: {self._failures[0]}; "
                             "nothing was committed, nothing is lost")
        self.effects.commit(self.next_offsets)
        self.stats.commits += 1
        self.stats.windows = self.effects.windows_written
        if self.next_offsets:  # for lag tooling only; the store's offsets are the truth
            self.consumer.commit(offsets={
                TopicPartition(t, p): OffsetAndMetadata(o, "", -1)
                for (t, p), o in self.next_offsets.items()})
        took = time.monotonic() - started
        self.metrics.observe_commit(took)
        return took

    def _on_revoked(self) -> None:
        """Partitions go to another member: commit everything, then forget every shard
        (the next assignment loads its own from the store)."""
        self._feed(list(self.merge.drain_all()))
        self.commit()
        self.pipeline.drop_shards()
        self.next_offsets.clear()

    def _on_assigned(self, assigned: list[TopicPartition]) -> None:
        try:
            count = self._partition_count()
            predictions = self.config.kafka.topics.predictions
            held = {tp.partition for tp in assigned if tp.topic == predictions}
            counted = [m.name for m in self.config.models if m.window.size is not None]
            if counted and held != set(range(count)):
                raise ConfigError(
                    f"models {', '.join(counted)} use count windows (window.size), which need "
                    f"one daemon holding every partition of {predictions}, but this one was "
                    f"given {sorted(held)} of {count}: run one daemon per "
                    "consumer group, or use window.duration to scale out")
            self.effects.set_partitions(count)
            self.effects.restore(held)
        except DriftlineError as err:
            self._fatal = err

    def _partition_count(self) -> int:
        """Partitions of the predictions topic; the features and labels topics must have
        as many (an event's messages, keyed by event_id, then share a partition number)."""
        topics = self.config.kafka.topics
        counts = {t: len(self.consumer.partitions_for_topic(t) or ())
                  for t in (topics.predictions, topics.features, topics.labels)}
        if len(set(counts.values())) != 1:
            raise ConfigError(
                "the three topics need as many partitions each, so an event's prediction, "
                "features and label (keyed by event_id) meet in one partition number; found "
                + ", ".join(f"{t}: {n}" for t, n in counts.items()))
        return counts[topics.predictions]

    def run(self, *, max_idle_s: float | None = None, stop: threading.Event | None = None
            ) -> DaemonStats:
        """Consume until stopped (signal, ``stop``, or ``max_idle_s`` without messages).

        When stopped for idleness, open windows are closed and written first (backfills,
        demos, tests); on a signal they stay open in the saved state for the next start.
        """
        stop = stop or threading.Event()
        kafka, consumer = self.config.kafka, self.consumer
        consumer.subscribe(topics=list(self.streams), listener=SeekToStored(
            consumer, lambda: self.store.load_offsets(kafka.group_id), self._on_revoked,
            self._on_assigned))
        self.worker.start()
        self.housekeeping.start()
        if self.trigger is not None:
            self.trigger.recover()
            self.trigger.start_schedules()
        if self.http is not None:
            self.http.start()
            log.info("http", url=self.http.url)
        log.info("started", bootstrap=kafka.bootstrap_servers, group=kafka.group_id,
                 models=[m.name for m in self.config.models])
        idle_since = committed_at = time.monotonic()
        interval, uncommitted = COMMIT_INTERVAL_S, False
        try:
            with _stop_on_signals(stop):
                while not stop.is_set():
                    batch = consumer.poll(timeout_ms=kafka.poll_timeout_ms,
                                          max_records=kafka.poll_max_records)
                    if self._fatal is not None:
                        raise self._fatal
                    now = time.monotonic()
                    self.readiness["broker"] = True  # poll returned: the cluster answers
                    self.readiness["assignment"] = bool(consumer.assignment())
                    self.effects.collect_retrains()
                    self.effects.follow_rebaselines()
                    uncommitted = self.pipeline.close_idle(int(time.time() * 1000)) \
                        or uncommitted
                    for tp, records in batch.items():
                        self.merge.add(tp, [(r.offset, r.timestamp, r) for r in records])
                    if batch or not consumer.assignment() or (
                            self.trigger is not None and self.trigger.running):
                        idle_since = now  # idle once partitions are ours and no retrain runs
                    if batch:
                        self.stats.first_message_at = self.stats.first_message_at or now
                        self._feed(list(self.merge.drain(self._lagging())))
                        uncommitted = True
                    elif len(self.merge) and now - idle_since >= ORDER_WAIT_S:
                        self._feed(list(self.merge.drain_all()))  # a lagging partition is silent
                    if uncommitted and now - committed_at >= interval:
                        interval = max(COMMIT_INTERVAL_S, self.commit() / COMMIT_SHARE)
                        uncommitted, committed_at = False, time.monotonic()
                    if not batch and max_idle_s is not None and now - idle_since >= max_idle_s:
                        log.info("idle_stop", idle_s=max_idle_s)
                        self._feed(list(self.merge.drain_all()))
                        self.pipeline.flush()
                        break
                self.commit()
        finally:
            self.close()
        return self.stats

    def close(self) -> None:
        summary = self.pipeline.summary()
        log.info("stopped", consumed=self.stats.consumed,
                 lines_written=self.effects.windows_written, **summary)
        self.effects.write_summary()
        self.producer.close(timeout=self.config.kafka.shutdown_timeout_s)
        self.consumer.close(autocommit=False)
        if self.trigger is not None:
            self.trigger.stop()
        if self.http is not None:
            self.http.stop()
        self.worker.stop()
        self.housekeeping.shutdown(wait=True)
        self.store.close()


def run_daemon(
    config: Config,
    *,
    cache_dir: Path,
    output: Path | None = None,
    max_idle_s: float | None = None,
    stop: threading.Event | None = None,
) -> DaemonStats:
    """Build the daemon and run it until stopped; see ``Daemon.run``."""
    return Daemon(config, cache_dir=cache_dir, output=output).run(
        max_idle_s=max_idle_s, stop=stop)
