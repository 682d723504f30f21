"""The store's write API, used by the daemon: every call is one explicit transaction.

Exactly-once effect: ``commit_batch`` writes the consumer offsets of a batch in the same
transaction as everything that batch changed (window partials, join checkpoints, closed
windows and their feature scores, alerts, training rows and labels) and deletes the
partials of windows it finalises. Either all of it is saved or none of it; after a crash
the daemon resumes from the saved offsets with the saved state, so no message counts twice
or is lost.

    store = open_store(config.store)
    store.commit_batch(
        "driftline",
        offsets={("driftline.predictions", 0): 1042},
        partials=[Partial("wine", 7, "driftline.predictions", 0, state.to_dict(), 500)],
        windows=[WindowLine(6, line)],
        finalised=[("wine", 6)],
    )
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Table, and_, delete, func, insert, or_, select
from sqlalchemy.engine import Connection

from monitor.errors import StoreError
from monitor.store import retrains, samples, training
from monitor.store import tables as t
from monitor.store.failures import store_errors
from monitor.store.records import (
    ALERT_UPDATES,
    Checkpoint,
    Partial,
    TopicPartition,
    TrainingLabel,
    TrainingRow,
    Watermark,
    WindowLine,
    alert_row,
    checkpoint_row,
    feature_rows,
    offset_row,
    partial_row,
    watermark_row,
    window_row,
)
from monitor.store.sqlite import WRITE
from monitor.store.upsert import upsert
from monitor.store.utc import as_utc, utc_now

__all__ = ["Store"]


def _table(name: str) -> Table:
    return t.Base.metadata.tables[name]


class Store:
    """An open store: the write API here, the read API in ``monitor.store.queries``.

    Made by :func:`monitor.store.open_store`; ``clock`` gives the ``*_at`` timestamps.
    """

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.engine = engine
        self._writer = engine.execution_options(**{WRITE: True})
        self._clock = clock

    def __repr__(self) -> str:
        return f"Store({self.engine.url.render_as_string(hide_password=True)!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    @contextmanager
    def reading(self, action: str) -> Iterator[Connection]:
        """A connection for reads; SQL errors become ``StoreError`` naming ``action``."""
        with store_errors(self.engine.url, action), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def writing(self, action: str) -> Iterator[Connection]:
        """One transaction, committed at the end of the block or rolled back on error."""
        with store_errors(self.engine.url, action), self._writer.begin() as conn:
            yield conn

    def now(self) -> datetime:
        return as_utc(self._clock())

    # --- models and their references ----------------------------------------------------

    def register_model(self, name: str, task: str) -> None:
        """Record a monitored model (its task is updated when it changed)."""
        row = {"name": name, "task": task, "created_at": self.now()}
        with self.writing(f"registering model {name!r}") as conn:
            upsert(conn, _table("models"), [row], ["name"], ["task"])

    def save_profile(
        self, model: str, profile_hash: str, profile: Mapping[str, Any], format_version: int
    ) -> None:
        """Keep a reference profile under its content hash (kept as is when already there)."""
        row = {
            "hash": profile_hash,
            "model": model,
            "format_version": format_version,
            "profile": dict(profile),
            "created_at": self.now(),
        }
        with self.writing(f"saving the reference profile of {model!r}") as conn:
            upsert(conn, _table("reference_profiles"), [row], ["hash"], [])

    def register_version(self, model: str, version: str, reference_hash: str | None) -> None:
        """Record a model version and the reference profile it is compared with."""
        row = {
            "model": model,
            "version": version,
            "reference_hash": reference_hash,
            "created_at": self.now(),
        }
        with self.writing(f"registering version {version!r} of {model!r}") as conn:
            upsert(conn, _table("model_versions"), [row], ["model", "version"], ["reference_hash"])

    def last_windows(self) -> dict[str, int]:
        """Per model, the key of its newest finalised window."""
        w = t.Window
        with self.reading("reading the newest window of each model") as conn:
            rows = conn.execute(select(w.model, func.max(w.window_key)).group_by(w.model)).all()
        return {str(model): int(key) for model, key in rows}

    def latest_version(self, model: str) -> str | None:
        """The newest registered version of ``model`` that has a profile (cheap: another
        daemon of the group may have re-baselined)."""
        v = t.ModelVersion
        query = (
            select(v.version)
            .where(v.model == model, v.reference_hash.is_not(None))
            .order_by(v.created_at.desc())
            .limit(1)
        )
        with self.reading(f"reading the newest version of {model!r}") as conn:
            return conn.execute(query).scalar()

    def latest_profile(self, model: str) -> tuple[str, dict[str, Any]] | None:
        """The newest registered version of ``model`` that has a profile, and that profile
        (a re-baselined daemon continues from it after a restart)."""
        v, p = t.ModelVersion, t.ReferenceProfile
        query = (
            select(v.version, p.profile)
            .join(p, p.hash == v.reference_hash)
            .where(v.model == model)
            .order_by(v.created_at.desc())
            .limit(1)
        )
        with self.reading(f"reading the newest profile of {model!r}") as conn:
            row = conn.execute(query).first()
        return None if row is None else (str(row[0]), dict(row[1]))

    # --- the daemon's batch --------------------------------------------------------------

    def commit_batch(
        self,
        group_id: str,
        *,
        offsets: Mapping[TopicPartition, int] | None = None,
        partials: Sequence[Partial] = (),
        checkpoints: Sequence[Checkpoint] = (),
        windows: Sequence[WindowLine] = (),
        finalised: Iterable[tuple[str, int]] = (),
        alerts: Sequence[Mapping[str, Any]] = (),
        outbox: Sequence[Mapping[str, Any]] = (),
        training_rows: Sequence[TrainingRow] = (),
        training_labels: Sequence[TrainingLabel] = (),
        window_samples: Sequence[samples.WindowSample] = (),
    ) -> None:
        """Save the effect of one batch and its offsets in ONE transaction.

        ``offsets`` maps (topic, partition) to the next offset to consume. ``partials`` and
        ``checkpoints`` replace the saved ones with the same key. ``windows`` are inserted as
        closed windows with their feature scores (a (model, window_key, revision) saved
        before is an error). ``finalised`` lists (model, window_key) whose partials are
        deleted, after the upserts: a window both updated and finalised here ends deleted.
        ``alerts`` are contract alert bodies, upserted by ``alert_id``. ``outbox`` rows
        (``{"alert_id", "route", "body"}``, from ``monitor.alerts.outbox.enqueue``) are
        deliveries of those alerts, inserted due now. ``training_rows`` (features and
        prediction) are upserted, then ``training_labels`` applied, by (model, event_id); a
        label may come first and its features later (``monitor.store.training`` has the rules).
        ``window_samples`` (the retained rows of windows closed for the first time) are
        upserted by (model, window_key).
        """
        with self.writing(f"saving a batch of consumer group {group_id!r}") as conn:
            self.save_batch(conn, group_id, offsets=offsets, partials=partials,
                            checkpoints=checkpoints, windows=windows, finalised=finalised,
                            alerts=alerts, outbox=outbox, training_rows=training_rows,
                            training_labels=training_labels, window_samples=window_samples)

    def save_batch(
        self,
        conn: Connection,
        group_id: str,
        *,
        offsets: Mapping[TopicPartition, int] | None = None,
        partials: Sequence[Partial] = (),
        checkpoints: Sequence[Checkpoint] = (),
        windows: Sequence[WindowLine] = (),
        finalised: Iterable[tuple[str, int]] = (),
        alerts: Sequence[Mapping[str, Any]] = (),
        outbox: Sequence[Mapping[str, Any]] = (),
        training_rows: Sequence[TrainingRow] = (),
        training_labels: Sequence[TrainingLabel] = (),
        watermarks: Sequence[Watermark] = (),
        window_samples: Sequence[samples.WindowSample] = (),
        dropped_checkpoints: Iterable[tuple[str, int, str]] = (),
    ) -> None:
        """``commit_batch``'s writes, in the caller's transaction ``conn``; ``watermarks``
        replace the saved ones of their partitions; the checkpoints ``dropped_checkpoints``
        names (topic, partition, model) are deleted."""
        now = self.now()
        upsert(
            conn,
            _table("window_partials"),
            [partial_row(p, now) for p in partials],
            ["model", "window_key", "topic", "partition"],
        )
        upsert(
            conn,
            _table("partition_watermarks"),
            [watermark_row(w, now) for w in watermarks],
            ["model", "topic", "partition"],
        )
        upsert(
            conn,
            _table("pipeline_checkpoints"),
            [checkpoint_row(group_id, c, now) for c in checkpoints],
            ["group_id", "topic", "partition", "model"],
        )
        pc = t.PipelineCheckpoint
        for topic, partition, model in dropped_checkpoints:
            conn.execute(delete(pc).where(pc.group_id == group_id, pc.topic == topic,
                                          pc.partition == partition, pc.model == model))
        for item in windows:
            window_id = conn.execute(
                insert(t.Window).returning(t.Window.id), window_row(item, now)
            ).scalar_one()
            rows = feature_rows(item.line, window_id)
            if rows:
                conn.execute(insert(t.FeatureScore), rows)
        for model, window_key in finalised:
            conn.execute(
                delete(t.WindowPartial).where(
                    t.WindowPartial.model == model, t.WindowPartial.window_key == window_key
                )
            )
        upsert(
            conn,
            _table("alerts"),
            [alert_row(body, now) for body in alerts],
            ["alert_id"],
            ALERT_UPDATES,
        )
        if outbox:
            deliveries = [
                {"alert_id": row["alert_id"], "route": row["route"], "body": dict(row["body"]),
                 "attempts": 0, "next_attempt_at": now}
                for row in outbox
            ]  # fmt: skip
            conn.execute(insert(t.Outbox), deliveries)
        training.save_training(conn, training_rows, training_labels, now)
        samples.save_samples(conn, window_samples, now)
        upsert(
            conn,
            _table("consumer_offsets"),
            [offset_row(group_id, tp, offset, now) for tp, offset in (offsets or {}).items()],
            ["group_id", "topic", "partition"],
        )

    def load_offsets(
        self, group_id: str, partitions: Iterable[TopicPartition] | None = None
    ) -> dict[TopicPartition, int]:
        """The saved next offsets of a group (only of ``partitions`` when given)."""
        wanted = None if partitions is None else set(partitions)
        query = select(
            t.ConsumerOffset.topic, t.ConsumerOffset.partition, t.ConsumerOffset.next_offset
        ).where(t.ConsumerOffset.group_id == group_id)
        with self.reading(f"loading the offsets of consumer group {group_id!r}") as conn:
            rows = conn.execute(query).all()
        return {
            (topic, partition): offset
            for topic, partition, offset in rows
            if wanted is None or (topic, partition) in wanted
        }

    def load_partials(self, model: str | None = None) -> list[Partial]:
        """The saved open-window states (of one model when given), by model and key."""
        p = t.WindowPartial
        query = select(p).order_by(p.model, p.window_key, p.topic, p.partition)
        if model is not None:
            query = query.where(p.model == model)
        with self.reading("loading window partials") as conn:
            rows = conn.execute(query).mappings().all()
        return [Partial(**row) for row in rows]

    def load_checkpoints(
        self, group_id: str, partitions: Iterable[TopicPartition] | None = None
    ) -> list[Checkpoint]:
        """The saved join states of a group (only of ``partitions`` when given)."""
        wanted = None if partitions is None else set(partitions)
        c = t.PipelineCheckpoint
        query = (
            select(c.topic, c.partition, c.model, c.state, c.updated_at)
            .where(c.group_id == group_id)
            .order_by(c.topic, c.partition, c.model)
        )
        with self.reading(f"loading the checkpoints of consumer group {group_id!r}") as conn:
            rows = conn.execute(query).mappings().all()
        return [
            Checkpoint(**row)
            for row in rows
            if wanted is None or (row["topic"], row["partition"]) in wanted
        ]

    def prune(self, older_than: datetime) -> dict[str, int]:
        """Retention: delete partials, checkpoints, finished deliveries, training rows and
        window samples last written before ``older_than``; closed windows, their scores and
        retrain runs are kept. Returns the count deleted per table."""
        cutoff = as_utc(older_than)
        o = t.Outbox
        statements = {
            "window_partials": delete(t.WindowPartial).where(t.WindowPartial.updated_at < cutoff),
            "pipeline_checkpoints": delete(t.PipelineCheckpoint).where(
                t.PipelineCheckpoint.updated_at < cutoff
            ),
            "outbox": delete(o).where(
                or_(
                    and_(o.delivered_at.is_not(None), o.delivered_at < cutoff),
                    and_(o.gave_up_at.is_not(None), o.gave_up_at < cutoff),
                )
            ),
            "training_rows": training.prune_statement(cutoff),
            "window_samples": samples.prune_statement(cutoff),
        }
        with self.writing(f"pruning rows older than {cutoff.isoformat()}") as conn:
            return {name: conn.execute(stmt).rowcount for name, stmt in statements.items()}

    # --- training rows and retrain runs --------------------------------------------------

    def recent_training_rows(
        self, model: str, since_ms: int | None = None, limit: int = 100_000
    ) -> list[dict[str, Any]]:
        """The newest ``limit`` labelled rows of ``model`` whose prediction time is at or
        after ``since_ms`` (epoch ms), oldest first: ``{"event_id", "ts_ms", "features",
        "prediction", "label"}``. Rows whose features have not arrived are left out."""
        with self.reading(f"reading the training rows of {model!r}") as conn:
            return training.recent_rows(conn, model, since_ms, limit)

    def start_retrain_run(
        self,
        model: str,
        request_id: str,
        trigger_alert_id: str | None,
        started_at: datetime,
    ) -> tuple[int, bool]:
        """Record a running retrain of ``request_id`` (at most 64 characters).

        Returns ``(run_id, True)``, or ``(run_id, False)`` when the request already had a
        run (started before a restart, say): no second run is made. ``trigger_alert_id``
        must be a saved alert (or None for a manual request).
        """
        with self.writing(f"starting retrain request {request_id!r} of {model!r}") as conn:
            return retrains.start(conn, model, request_id, trigger_alert_id, started_at)

    def finish_retrain_run(
        self,
        run_id: int,
        status: str,
        *,
        mlflow_run_id: str | None,
        registered_version: str | None,
        promoted: bool,
        detail: Mapping[str, Any] | None,
        finished_at: datetime,
    ) -> None:
        """Record the outcome of a run: ``status`` is ``succeeded`` or ``failed``; finishing a
        run again overwrites its outcome. Raises ``StoreError`` for an unknown ``run_id``."""
        with self.writing(f"finishing retrain run {run_id}") as conn:
            found = retrains.finish(
                conn,
                run_id,
                status=status,
                mlflow_run_id=mlflow_run_id,
                registered_version=registered_version,
                promoted=promoted,
                detail=detail,
                finished_at=finished_at,
            )
            if not found:
                raise StoreError(
                    f"store {self!r}: there is no retrain run {run_id} to finish; "
                    "pass the id start_retrain_run returned"
                )

    def retrain_runs(self, model: str, since: datetime | None = None) -> list[dict[str, Any]]:
        """The runs of ``model`` started at or after ``since``, oldest first (JSON-able)."""
        with self.reading(f"reading the retrain runs of {model!r}") as conn:
            rows = conn.execute(retrains.newest_first(model, since)).mappings().all()
        return [retrains.run_dict(row) for row in reversed(rows)]

    def running_retrain(self, model: str) -> dict[str, Any] | None:
        """The newest unfinished run of ``model`` (JSON-able), or None."""
        query = retrains.newest_first(model, running=True).limit(1)
        with self.reading(f"reading the running retrain of {model!r}") as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else retrains.run_dict(row)
