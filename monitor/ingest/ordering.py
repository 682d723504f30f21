"""Merge records of several topic-partitions into timestamp order before the pipeline.

A consumer fetches partitions in chunks: it may hand over thousands of predictions before
the features that belong to them. Fed in that order, event time would race ahead on one
stream and close windows before the other stream caught up, counting its events as late.
Like Kafka Streams, the daemon keeps a buffer per partition and always takes the record
with the smallest timestamp among the buffers; it stops while a partition that still has
unread data on the broker has an empty buffer, and waits for the next poll to fill it.

>>> merge = TimestampMerge()
>>> merge.add("p", [(0, 10, "p0"), (1, 30, "p1")])
>>> merge.add("f", [(0, 20, "f0")])
>>> [r for r in merge.drain(lagging=set())]
['p0', 'f0', 'p1']
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterator, Set
from typing import Any, Generic, TypeVar

__all__ = ["TimestampMerge"]

K = TypeVar("K", bound=Hashable)


class TimestampMerge(Generic[K]):
    """Per-partition buffers of ``(offset, timestamp, record)``, drained in time order."""

    def __init__(self) -> None:
        self._buffers: dict[K, deque[tuple[int, int, Any]]] = {}

    def add(self, partition: K, records: list[tuple[int, int, Any]]) -> None:
        self._buffers.setdefault(partition, deque()).extend(records)

    def __len__(self) -> int:
        return sum(len(b) for b in self._buffers.values())

    def drain(self, lagging: Set[K]) -> Iterator[Any]:
        """Records in timestamp order while no lagging partition has an empty buffer.

        ``lagging``: partitions with more data on the broker than fetched so far; an empty
        buffer of one of them means its next record may be older than everything here.
        """
        buffers = self._buffers
        while True:
            head: tuple[int, int, Any] | None = None
            source: deque[tuple[int, int, Any]] | None = None
            for partition, buffer in buffers.items():
                if not buffer:
                    if partition in lagging:
                        return
                    continue
                if head is None or buffer[0][1] < head[1]:
                    head, source = buffer[0], buffer
            if source is None or head is None:
                return
            source.popleft()
            yield head[2]

    def drain_all(self) -> Iterator[Any]:
        """Everything buffered, in timestamp order (shutdown, or a stuck partition)."""
        return self.drain(lagging=frozenset())
