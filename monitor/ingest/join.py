"""The (model, event_id) join of predictions, features and labels, bounded by count and age.

One ``JoinBuffer`` per model holds three bounded maps, oldest first:

- ``predictions``: predictions seen recently (for duplicate detection and for labels and
  features that arrive after them), up to ``max_predictions``;
- ``pending_features`` / ``pending_labels``: features and labels whose prediction has not
  arrived yet, up to ``max_pending`` each.

An entry leaves a map by count (the oldest goes when the map is full) or by age (its event
time is more than ``max_age_s`` behind the model's event-time clock). Every eviction is
reported to the callback with its reason, so nothing leaves unaccounted for.

>>> evicted = []
>>> buf = JoinBuffer(max_pending=1, max_age_s=60, max_predictions=10,
...                  on_evict=lambda kind, key, value: evicted.append((kind, key)))
>>> buf.hold("features", "e1", ts_ms=0, value={"x": 1})
>>> buf.hold("features", "e2", ts_ms=0, value={"x": 2})
>>> evicted
[('features', 'e1')]
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

__all__ = ["BoundedMap", "JoinBuffer"]

V = TypeVar("V")
EvictCallback = Callable[[str, str, Any], None]


class BoundedMap(Generic[V]):
    """An insertion-ordered map bounded by count and by event-time age."""

    __slots__ = ("_items", "kind", "max_age_ms", "max_items", "on_evict")

    def __init__(
        self, kind: str, max_items: int, max_age_ms: int, on_evict: EvictCallback
    ) -> None:
        self.kind = kind
        self.max_items = max_items
        self.max_age_ms = max_age_ms
        self.on_evict = on_evict
        self._items: OrderedDict[str, tuple[int, V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def get(self, key: str) -> V | None:
        item = self._items.get(key)
        return None if item is None else item[1]

    def put(self, key: str, ts_ms: int, value: V) -> None:
        self._items[key] = (ts_ms, value)
        if len(self._items) > self.max_items:
            old_key, (_, old_value) = self._items.popitem(last=False)
            self.on_evict(self.kind, old_key, old_value)

    def pop(self, key: str) -> V | None:
        item = self._items.pop(key, None)
        return None if item is None else item[1]

    def expire(self, clock_ms: int) -> None:
        """Evict entries older than the age bound, oldest inserted first.

        Arrival order approximates event-time order; an old entry behind a newer one
        waits until the newer one goes, which bounds memory by count all the same.
        """
        horizon = clock_ms - self.max_age_ms
        items = self._items
        while items:
            key, (ts_ms, value) = next(iter(items.items()))
            if ts_ms >= horizon:
                return
            del items[key]
            self.on_evict(self.kind, key, value)

    def drain(self) -> list[tuple[str, V]]:
        """Remove and return everything (end of input)."""
        out = [(key, value) for key, (_, value) in self._items.items()]
        self._items.clear()
        return out

    def entries(self) -> list[tuple[str, int, V]]:
        """``(key, ts_ms, value)`` oldest first: what a checkpoint saves."""
        return [(key, ts_ms, value) for key, (ts_ms, value) in self._items.items()]

    def load(self, entries: Iterable[tuple[str, int, V]]) -> None:
        """Replace the content with saved ``entries`` (no evictions are reported)."""
        self._items = OrderedDict((key, (int(ts_ms), value)) for key, ts_ms, value in entries)


class JoinBuffer:
    """The three bounded maps of one model's join."""

    def __init__(
        self,
        *,
        max_pending: int,
        max_age_s: float,
        max_predictions: int,
        on_evict: EvictCallback,
    ) -> None:
        age_ms = round(max_age_s * 1000)
        self.predictions: BoundedMap[Any] = BoundedMap(
            "predictions", max_predictions, age_ms, on_evict
        )
        self.pending = {
            "features": BoundedMap[Any]("features", max_pending, age_ms, on_evict),
            "labels": BoundedMap[Any]("labels", max_pending, age_ms, on_evict),
        }

    def hold(self, stream: str, event_id: str, ts_ms: int, value: Any) -> None:
        """Keep features or a label until its prediction arrives."""
        self.pending[stream].put(event_id, ts_ms, value)

    def take(self, stream: str, event_id: str) -> Any | None:
        """The features or label waiting for this prediction, if any (removed)."""
        return self.pending[stream].pop(event_id)

    def expire(self, clock_ms: int) -> None:
        self.predictions.expire(clock_ms)
        for buffer in self.pending.values():
            buffer.expire(clock_ms)
