"""The bounded join buffer: bounds by count and by age, every eviction reported."""

from __future__ import annotations

from monitor.ingest.join import BoundedMap, JoinBuffer


class TestBoundedMap:
    def test_the_oldest_entry_goes_when_the_map_is_full(self):
        evicted: list[str] = []
        m: BoundedMap[int] = BoundedMap("x", 2, 10_000, lambda kind, k, v: evicted.append(k))
        for i, key in enumerate("abc"):
            m.put(key, i, i)
        assert evicted == ["a"]
        assert "a" not in m
        assert len(m) == 2

    def test_entries_older_than_the_age_bound_expire_in_arrival_order(self):
        evicted: list[str] = []
        m: BoundedMap[int] = BoundedMap("x", 100, 1000, lambda kind, k, v: evicted.append(k))
        m.put("old", 0, 0)
        m.put("new", 5000, 0)
        m.expire(clock_ms=5500)
        assert evicted == ["old"]
        assert m.get("new") == 0

    def test_pop_removes_without_reporting_an_eviction(self):
        evicted: list[str] = []
        m: BoundedMap[int] = BoundedMap("x", 1, 1000, lambda kind, k, v: evicted.append(k))
        m.put("a", 0, 7)
        assert m.pop("a") == 7
        assert m.pop("a") is None
        assert evicted == []


class TestJoinBuffer:
    def test_features_wait_for_their_prediction_and_are_taken_once(self):
        buf = JoinBuffer(max_pending=10, max_age_s=60, max_predictions=10,
                         on_evict=lambda *a: None)
        buf.hold("features", "e1", 0, {"x": 1})
        assert buf.take("features", "e1") == {"x": 1}
        assert buf.take("features", "e1") is None

    def test_evictions_name_the_stream_they_came_from(self):
        evicted: list[tuple[str, str]] = []
        buf = JoinBuffer(max_pending=1, max_age_s=1, max_predictions=1,
                         on_evict=lambda kind, key, value: evicted.append((kind, key)))
        buf.hold("labels", "a", 0, 1)
        buf.hold("labels", "b", 0, 1)
        buf.predictions.put("p", 0, None)
        buf.expire(clock_ms=10_000)
        assert evicted == [("labels", "a"), ("predictions", "p"), ("labels", "b")]
