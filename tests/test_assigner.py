"""Window assignment and deadlines for count and duration windows."""

from __future__ import annotations

import pytest

from monitor.windows.assigner import WindowAssigner


class TestCountWindows:
    def test_every_size_predictions_start_a_new_window(self):
        a = WindowAssigner(size=3, duration_ms=None, grace_ms=0)
        keys = [a.key_for(ts, ts) for ts in range(7)]
        assert keys == [0, 0, 0, 1, 1, 1, 2]

    def test_a_filling_window_has_no_deadline_and_a_full_one_closes_after_grace(self):
        a = WindowAssigner(size=2, duration_ms=None, grace_ms=500)
        a.key_for(0, 0)
        assert a.deadline(0, newest_ts_ms=0) is None
        a.key_for(100, 100)
        assert a.deadline(0, newest_ts_ms=100) == 600


class TestDurationWindows:
    def test_windows_are_aligned_to_the_epoch(self):
        a = WindowAssigner(size=None, duration_ms=60_000, grace_ms=0)
        assert a.key_for(125_000, 125_000) == 2
        assert a.bounds(2) == (120_000, 180_000)

    def test_a_prediction_whose_window_has_closed_is_late(self):
        a = WindowAssigner(size=None, duration_ms=60_000, grace_ms=1000)
        assert a.key_for(10_000, clock_ms=61_000) == 0  # at the deadline: still open
        assert a.key_for(10_000, clock_ms=61_001) is None

    def test_exactly_one_of_size_and_duration(self):
        with pytest.raises(ValueError, match="exactly one"):
            WindowAssigner(size=1, duration_ms=1, grace_ms=0)
