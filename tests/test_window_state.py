"""Window state: columnar batches, vectorised updates, bounded memory, exact merges."""

from __future__ import annotations

import functools
import itertools
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import FeatureSpec
from monitor.engine.batch import Batch, key_priorities, to_batch
from monitor.engine.profile import ReferenceProfile
from monitor.engine.row_sample import RowSample
from monitor.engine.sample_rows import UNSEEN, sample_rows
from monitor.engine.window_state import WindowState
from tests.services.window_lines import assert_same

_RNG = np.random.default_rng(0)
_N = 400
_REFERENCE = pd.DataFrame(
    {
        "x": _RNG.normal(0.0, 1.0, _N),
        "z": _RNG.normal(100.0, 10.0, _N),
        "c": _RNG.choice(["a", "b", "c"], _N),
        "n": _RNG.integers(1, 4, _N),
        "target": _RNG.integers(0, 2, _N),
        "prediction": _RNG.integers(0, 2, _N),
        "probability": _RNG.random(_N),
    }
)
PROFILE = ReferenceProfile.build(
    _REFERENCE,
    task="classification",
    features=[
        FeatureSpec("x", "numeric"),
        FeatureSpec("z", "numeric"),
        FeatureSpec("c", "categorical"),
        FeatureSpec("n", "categorical"),
    ],
    target="target",
    prediction="prediction",
    probability="probability",
)
SAMPLE_SIZE = 8


def _state(seed: int = 0) -> WindowState:
    return WindowState(PROFILE, sample_size=SAMPLE_SIZE, seed=seed)


def _assert_same(left: Any, right: Any) -> None:
    """Equal dicts, with floats compared to rounding (moment sums merge up to rounding)."""
    assert_same(left, right, abs_tol=1e-9)


# -- events as hypothesis draws them ----------------------------------------------------

_numeric_value = st.one_of(
    st.floats(-1e3, 1e3, allow_nan=False),
    st.integers(-100, 100),
    st.none(),
    st.just("oops"),
    st.just(True),
)
_category = st.one_of(st.sampled_from(["a", "b", "c", "unknown"]), st.integers(0, 4), st.none())
_row = st.fixed_dictionaries(
    {},
    optional={"x": _numeric_value, "z": _numeric_value, "c": _category, "n": _category},
)
_event = st.tuples(
    _row, st.sampled_from([0, 1]), st.floats(0.0, 1.0), st.sampled_from([0, 1, None])
)
_events = st.lists(_event, min_size=0, max_size=40)


def _fill(state: WindowState, events: list[tuple[Any, ...]], start: int) -> WindowState:
    rows = [e[0] for e in events]
    keys = [f"event-{start + i}" for i in range(len(events))]
    state.update(to_batch(rows, PROFILE, keys=keys), [e[1] for e in events], [e[2] for e in events])
    labelled = [e for e in events if e[3] is not None]
    if labelled:
        state.add_labels(
            [e[1] for e in labelled], [e[3] for e in labelled], [e[2] for e in labelled]
        )
    return state


def _parts(events: list[tuple[Any, ...]], cuts: list[int]) -> list[WindowState]:
    bounds = [0, *sorted(min(c, len(events)) for c in cuts), len(events)]
    return [_fill(_state(), events[a:b], a) for a, b in itertools.pairwise(bounds)]


_settings = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class TestMergeProperties:
    @_settings
    @given(_events, st.lists(st.integers(0, 40), min_size=1, max_size=1))
    def test_merge_is_commutative(self, events, cuts):
        a, b = _parts(events, cuts)
        _assert_same(a.merge(b).to_dict(), b.merge(a).to_dict())

    @_settings
    @given(_events, st.lists(st.integers(0, 40), min_size=2, max_size=2))
    def test_merge_is_associative(self, events, cuts):
        a, b, c = _parts(events, cuts)
        _assert_same(a.merge(b.merge(c)).to_dict(), a.merge(b).merge(c).to_dict())

    @_settings
    @given(_events, st.lists(st.integers(0, 40), min_size=0, max_size=4))
    def test_merged_partitions_equal_one_pass(self, events, cuts):
        parts = _parts(events, cuts)
        merged = functools.reduce(WindowState.merge, parts)
        _assert_same(merged.to_dict(), _fill(_state(), events, 0).to_dict())

    @_settings
    @given(_events, _events)
    def test_to_dict_round_trips_through_json_and_keeps_counting(self, first, second):
        state = _fill(_state(), first, 0)
        restored = WindowState.from_dict(orjson.loads(orjson.dumps(state.to_dict())), PROFILE)
        assert restored.to_dict() == state.to_dict()
        _fill(state, second, len(first))
        _fill(restored, second, len(first))
        assert restored.to_dict() == state.to_dict()

    @_settings
    @given(_events, st.lists(st.integers(0, 40), min_size=2, max_size=2))
    def test_without_keys_merge_is_still_associative_and_commutative(self, events, cuts):
        bounds = [0, *sorted(min(c, len(events)) for c in cuts), len(events)]
        states = []
        for lo, hi in itertools.pairwise(bounds):
            state = _state()
            rows, predictions = [e[0] for e in events[lo:hi]], [e[1] for e in events[lo:hi]]
            state.update(to_batch(rows, PROFILE), predictions)  # counter priorities
            states.append(state)
        a, b, c = states
        _assert_same(a.merge(b).to_dict(), b.merge(a).to_dict())
        _assert_same(a.merge(b.merge(c)).to_dict(), a.merge(b).merge(c).to_dict())


class TestToBatch:
    def test_numbers_become_floats_and_absent_or_null_values_nan(self):
        batch = to_batch([{"x": 1, "z": 2.5}, {"x": None}], PROFILE)
        assert batch.numeric.tolist()[0][0] == 1.0
        assert batch.numeric[1, 0] == 2.5
        assert np.isnan(batch.numeric[0, 1])
        assert np.isnan(batch.numeric[1, 1])
        assert batch.type_errors.tolist() == [0, 0, 0, 0]

    def test_a_string_or_boolean_in_a_numeric_feature_is_a_type_error_and_missing(self):
        batch = to_batch([{"x": "1.5"}, {"x": True}, {"x": 3.0}], PROFILE)
        assert np.isnan(batch.numeric[0, :2]).all()
        assert batch.numeric[0, 2] == 3.0
        assert batch.type_errors.tolist() == [2, 0, 0, 0]

    def test_categorical_numbers_meet_the_references_keys(self):
        codes = to_batch([{"n": 1}, {"n": 2.0}, {"n": "3"}, {"n": 7}, {}], PROFILE).categorical[1]
        assert PROFILE.categorical[1].categories == ("1", "2", "3")
        assert codes.tolist() == [0, 1, 2, 3, 4]  # 3 = unseen, 4 = missing

    def test_a_non_scalar_category_is_a_type_error(self):
        batch = to_batch([{"c": {"nested": 1}}, {"c": "a"}], PROFILE)
        assert batch.categorical[0].tolist() == [4, 0]
        assert batch.type_errors.tolist() == [0, 0, 1, 0]

    def test_columns_give_the_same_batch_as_rows(self):
        rows: list[dict[str, object]] = [
            {"x": 0.5, "z": None, "c": "b", "n": 2},
            {"x": "bad", "z": 101.0, "c": "q"},
        ]
        columns: dict[str, Any] = {
            "x": np.array([0.5, "bad"], dtype=object),
            "z": np.array([np.nan, 101.0]),
            "c": ["b", "q"],
            "n": [2, None],
        }
        one, two = to_batch(rows, PROFILE), Batch.from_columns(PROFILE, columns)
        np.testing.assert_array_equal(one.numeric, two.numeric)
        np.testing.assert_array_equal(one.categorical, two.categorical)
        np.testing.assert_array_equal(one.type_errors, two.type_errors)

    def test_key_priorities_are_a_seeded_function_of_the_key(self):
        ab = key_priorities(["a", "b"], seed=3)
        assert key_priorities(["b"], seed=3)[0] == ab[1]
        assert key_priorities(["a"], seed=4)[0] != ab[0]
        assert np.all((ab >= 0.0) & (ab < 1.0))


class TestUpdate:
    def _values(self, n: int, seed: int = 1) -> np.ndarray:
        rng = np.random.default_rng(seed)
        values = np.vstack([rng.normal(0.3, 1.2, n), rng.normal(95.0, 12.0, n)])
        values[rng.random(values.shape) < 0.05] = np.nan
        return values

    def _batch(self, values: np.ndarray) -> Batch:
        n = values.shape[1]
        categorical = np.zeros((2, n), dtype=np.int64)
        return Batch(values, categorical, np.zeros(4, dtype=np.int64), n)

    def test_bin_counts_match_a_search_in_the_reference_edges(self):
        values = self._values(5000)
        state = _state()
        state.update(self._batch(values))
        for j, column in enumerate(PROFILE.numeric):
            present = values[j][~np.isnan(values[j])]
            expected = np.bincount(
                np.searchsorted(column.edges, present, side="right"), minlength=column.counts.size
            )
            np.testing.assert_array_equal(state.features.counts[j, : column.counts.size], expected)
            assert state.features.n_missing[j] == np.isnan(values[j]).sum()

    def test_moments_min_and_max_match_numpy(self):
        values = self._values(5000)
        state = _state()
        state.update(self._batch(values))
        sketch = state.features
        n = sketch.n_values()
        mean = sketch.centers + sketch.shifted_sum / n
        var = sketch.shifted_sumsq / n - (sketch.shifted_sum / n) ** 2
        np.testing.assert_allclose(mean, np.nanmean(values, axis=1), rtol=1e-12)
        np.testing.assert_allclose(var, np.nanvar(values, axis=1), rtol=1e-9)
        np.testing.assert_array_equal(sketch.minimum, np.nanmin(values, axis=1))
        np.testing.assert_array_equal(sketch.maximum, np.nanmax(values, axis=1))

    def test_batches_of_any_size_give_the_counts_of_one_batch(self):
        values = self._values(3000)
        whole, pieces = _state(), _state()
        whole.update(self._batch(values))
        for lo in range(0, 3000, 700):
            pieces.update(self._batch(values[:, lo : lo + 700]))
        np.testing.assert_array_equal(whole.features.counts, pieces.features.counts)
        np.testing.assert_allclose(whole.features.shifted_sumsq, pieces.features.shifted_sumsq)

    def test_the_sample_is_the_rows_of_smallest_priority(self):
        rng = np.random.default_rng(5)
        values = rng.normal(size=(2, 5000))
        priorities = rng.random(5000)
        sample = RowSample(n_columns=2, size=50)
        for lo in range(0, 5000, 333):
            sample.offer(values[:, lo : lo + 333], priorities[lo : lo + 333])
        rows, kept = sample.rows()
        order = np.argsort(priorities)[:50]
        np.testing.assert_array_equal(kept, priorities[order])
        np.testing.assert_array_equal(rows, values[:, order])

    def test_a_saved_sample_loads_bit_exact_and_the_older_form_still_loads(self):
        rng = np.random.default_rng(11)
        values = rng.normal(size=(3, 40))
        values[1, ::7] = np.nan
        sample = RowSample(n_columns=3, size=25)
        sample.offer(values, rng.random(40))
        saved = orjson.loads(orjson.dumps(sample.to_dict()))
        loaded = RowSample(n_columns=3, size=25).load_dict(saved)
        np.testing.assert_array_equal(loaded.rows()[0], sample.rows()[0])  # NaN == NaN here
        np.testing.assert_array_equal(loaded.rows()[1], sample.rows()[1])
        rows, priorities = sample.rows()
        older = {"columns": [[None if np.isnan(v) else v for v in column]
                             for column in rows.tolist()], "priorities": priorities.tolist()}
        np.testing.assert_array_equal(RowSample(3, 25).load_dict(older).rows()[0], rows)
        with pytest.raises(ValueError, match="do not match"):
            RowSample(n_columns=2, size=25).load_dict(saved)

    def test_rows_of_equal_priority_are_kept_by_value_whatever_the_order(self):
        values = np.array([[3.0, 1.0, np.nan, 2.0, 0.5]])
        priorities = np.array([0.2, 0.2, 0.2, 0.1, 0.9])
        kept = []
        for order in ([0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [2, 0, 4, 1, 3]):
            sample = RowSample(n_columns=1, size=3)
            for i in order:  # one row at a time: compacted at every third row
                sample.offer(values[:, [i]], priorities[[i]])
            kept.append(sample.rows()[0].tolist())
        assert kept == [[[2.0, 1.0, 3.0]]] * 3  # priority 0.1, then ties by value

    def test_memory_is_bounded_by_configuration_not_traffic(self):
        small, large = WindowState(PROFILE, 100), WindowState(PROFILE, 100)
        small.update(self._batch(self._values(1_000)))
        for seed in range(20):
            large.update(self._batch(self._values(10_000, seed)))
        assert large.features.rows.rows()[1].size == 100
        assert len(orjson.dumps(large.to_dict())) < 1.2 * len(orjson.dumps(small.to_dict()))

    def test_outputs_are_counted_and_feed_the_performance_estimate(self):
        state = _state()
        state.update(
            to_batch([{}] * 4, PROFILE), [1, 0, 1, 2], [0.9, {"0": 0.8, "1": 0.2}, 0.6, None]
        )
        assert state.prediction_counts is not None
        assert state.probability_values is not None
        assert state.prediction_counts.column(0).tolist() == [1, 2, 1, 0]  # 2 is unseen
        assert state.probability_values.counts.sum() == 3
        estimate = state.performance.estimated()
        assert estimate is not None
        assert estimate["n"] == 3
        assert estimate["estimated"] is True

    def test_feature_rows_and_predictions_are_counted_apart(self):
        state = _state()
        state.update(to_batch([], PROFILE), [0, 1, 1])
        state.update(to_batch([{"x": 1.0}], PROFILE))
        assert (state.n_predictions, state.n_rows) == (3, 1)

    def test_merging_states_of_different_sample_sizes_is_refused(self):
        with pytest.raises(ValueError, match="sample_size"):
            WindowState(PROFILE, 10).merge(WindowState(PROFILE, 20))


class TestSampleRows:
    """The retained rows a report shows: ``monitor.engine.sample_rows`` over a state."""

    @_settings
    @given(_events, st.lists(st.integers(0, 40), min_size=0, max_size=3))
    def test_merged_partitions_keep_the_rows_of_one_pass(self, events, cuts):
        parts = _parts(events, cuts)
        merged = functools.reduce(WindowState.merge, parts)

        assert sample_rows(merged).rows == sample_rows(_fill(_state(), events, 0)).rows

    @_settings
    @given(_events)
    def test_rows_are_real_rows_with_categories_decoded(self, events):
        rows = sample_rows(_fill(_state(), events, 0)).rows

        assert len(rows) == min(SAMPLE_SIZE, len(events))
        categories = {*PROFILE.categorical[0].categories, *PROFILE.categorical[1].categories}
        for row in rows:
            assert all(v is None or isinstance(v, float) for v in row[:2])
            assert all(v is None or v == UNSEEN or v in categories for v in row[2:])
        sent = {(_category_key(e[0].get("c"), 0), _category_key(e[0].get("n"), 1)) for e in events}
        assert {(row[2], row[3]) for row in rows} <= sent

    def test_a_state_saved_before_the_categorical_sample_loads_without_categories(self):
        state = _fill(_state(), [({"x": 1.0, "c": "a"}, 1, 0.5, None)], 0)
        saved = state.to_dict()
        del saved["category_sample"]

        restored = WindowState.from_dict(saved, PROFILE)

        assert sample_rows(restored).rows == [[1.0, None, None, None]]


def _category_key(value: Any, j: int) -> str | None:
    """A raw value of categorical feature ``j`` as the sample shows it."""
    if value is None:
        return None
    key = str(value)
    return key if key in PROFILE.categorical[j].categories else UNSEEN
