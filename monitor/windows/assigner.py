"""Which window a prediction belongs to, and when a window closes.

Two kinds of window (contract section 3):

- count (``size: N``): the next N predictions of a model, in arrival order. Its start and
  end are the timestamps of its first and last prediction. Once full it closes when the
  model's event-time clock passes its newest prediction's time by the grace.
- duration (``duration: 15m``): ``[k·d, (k+1)·d)`` in event time, aligned to the epoch. It
  closes when the clock passes its end by the grace; a prediction whose window has already
  closed is late.

The clock of a model is the newest event time of its predictions and features. Labels do
not move it: their timestamp is when the truth became known, possibly weeks later.

>>> a = WindowAssigner(size=None, duration_ms=60_000, grace_ms=0)
>>> a.key_for(90_000, clock_ms=90_000)
1
>>> a.bounds(1)
(60000, 120000)
"""

from __future__ import annotations

__all__ = ["WindowAssigner"]


class WindowAssigner:
    """Keys windows by an increasing integer; pure arithmetic, no state but the count."""

    def __init__(self, *, size: int | None, duration_ms: int | None, grace_ms: int) -> None:
        if (size is None) == (duration_ms is None):
            raise ValueError("a window has exactly one of size and duration")
        self.size = size
        self.duration_ms = duration_ms
        self.grace_ms = grace_ms
        self._count_key = 0
        self._count_n = 0

    def to_dict(self) -> list[int]:
        return [self._count_key, self._count_n]

    def load_dict(self, data: list[int]) -> None:
        self._count_key, self._count_n = data

    @property
    def by_count(self) -> bool:
        return self.size is not None

    def key_for(self, ts_ms: int, clock_ms: int) -> int | None:
        """The window key of a prediction at ``ts_ms``, or None when its window closed."""
        if self.size is not None:
            if self._count_n == self.size:
                self._count_key += 1
                self._count_n = 0
            self._count_n += 1
            return self._count_key
        assert self.duration_ms is not None
        key = ts_ms // self.duration_ms
        if clock_ms > (key + 1) * self.duration_ms + self.grace_ms:
            return None
        return key

    def skip(self, key: int) -> None:
        """Count window ``key`` closed before it filled: the next prediction starts a new one."""
        if key == self._count_key and self._count_n > 0:
            self._count_key += 1
            self._count_n = 0

    def is_full(self, key: int) -> bool:
        """A count window that takes no more predictions (always true for durations)."""
        return self.size is None or key < self._count_key or self._count_n == self.size

    def bounds(self, key: int) -> tuple[int, int]:
        """``[start, end)`` of a duration window in epoch milliseconds."""
        assert self.duration_ms is not None
        return key * self.duration_ms, (key + 1) * self.duration_ms

    def deadline(self, key: int, newest_ts_ms: int) -> int | None:
        """The clock value past which the window closes; None while a count window fills."""
        if self.duration_ms is not None:
            return (key + 1) * self.duration_ms + self.grace_ms
        if not self.is_full(key):
            return None
        return newest_ts_ms + self.grace_ms
