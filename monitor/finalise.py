"""Finalising a window: merging its partials from every partition, scoring, once.

A window is final when every partition of its model has passed its end (a partition's
shard closed its part, or its clock, the partition's watermark, went past the end and
grace). The local pipeline (replay, tests) decides that in memory; the daemon decides it in
the store (``finalise_in_store``), inside the commit transaction and under a lock on the
model's row, so that of several processes sharing a consumer group exactly one finalises
each window, whichever gets there first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection

from monitor.store import finals
from monitor.windows.assigner import WindowAssigner
from monitor.windows.window import Window

if TYPE_CHECKING:
    from monitor.pipeline import Pipeline

__all__ = ["finalise_in_store"]


def finalise_in_store(conn: Connection, pipeline: Pipeline, topic: str, *,
                      partitions: Mapping[str, Iterable[int]],
                      revised: Iterable[tuple[str, int]],
                      released: Iterable[tuple[str, int]],
                      held: Mapping[tuple[str, int, int], Window] | None = None,
                      ) -> tuple[list[dict[str, Any]], list[Window]]:
    """In the commit transaction (after this process's partials and watermarks are
    saved, with the models locked): write out every window all ``partitions`` of its model
    have passed, in key order, then a revision of every finalised window whose partials
    changed (``revised``: late labels, or a partition that closed its part late). Partials
    of finalised windows that no prediction points at any more (``released`` ones among
    them) are deleted. ``held``: partials this process holds as saved, by (model, window
    key, partition), used instead of reading them back. Returns the window lines, first
    closes then revisions, and the windows finalised (merged: their row samples are
    saved)."""
    held = held or {}
    lines: list[dict[str, Any]] = []
    firsts: list[Window] = []
    for name, model in pipeline.models.items():
        spec = model.window
        assigner = WindowAssigner(
            size=spec.size,
            duration_ms=None if spec.duration_s is None else round(spec.duration_s * 1000),
            grace_ms=round(spec.grace_s * 1000))
        marks = finals.watermarks(conn, name, topic)
        pending = finals.unfinalised(conn, name)
        wanted = sorted(set(partitions[name]))
        finalised: list[int] = []
        for key in sorted(pending):
            deadline = None if assigner.by_count else assigner.deadline(key, 0)
            if not all(p in pending[key] or (deadline is not None and p in marks
                                              and marks[p] > deadline) for p in wanted):
                break
            window = _merged(conn, pipeline, name, key, held)
            lines.append(window.line(pipeline.as_of_ms))
            firsts.append(window)
            pipeline.counts["windows"] += 1
            finalised.append(key)
        changed = {key for m, key in revised if m == name} - set(pending)
        latest = finals.latest_revisions(conn, name, changed)
        for key, revision in sorted(latest.items()):
            window = _merged(conn, pipeline, name, key, held)
            window.revision = revision
            lines.append(window.line(pipeline.as_of_ms))
        let_go = {key for m, key in released if m == name} - set(pending)
        finals.delete_released(conn, name, {*finalised, *latest, *let_go})
    return lines, firsts


def _merged(conn: Connection, pipeline: Pipeline, name: str, key: int,
            held: Mapping[tuple[str, int, int], Window]) -> Window:
    """A new window merged from its saved partials (in partition order), not yet scored;
    the partials this process holds are not read back, nor changed."""
    model, profile = pipeline.models[name], pipeline.profiles[name]
    partitions = finals.partitions_of(conn, name, key)
    stored = dict(finals.partials_of(conn, name, key, [p for p in partitions
                                                       if (name, key, p) not in held]))
    parts = [held[(name, key, p)] if p not in stored
             else Window.from_dict(stored[p], profile, model) for p in partitions]
    window = Window.merged(parts)
    window.revision = -1
    return window
