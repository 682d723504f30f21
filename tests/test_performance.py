"""Performance sketch: metrics equal sklearn's, merges are exact, estimates are close."""

from __future__ import annotations

import doctest
import math

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    roc_auc_score,
)

from monitor.engine import calibration, performance
from monitor.engine.performance import Calibrator, PerformanceState, class_key

FLOAT_FIELDS = ("log_loss_sum", "abs_error_sum", "sq_error_sum", "confidence_sum")


def binary_problem(seed: int, n: int = 2000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calibrated binary problem: p ~ Beta(2, 2), label ~ Bernoulli(p), predicted p > 0.5."""
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 2, size=n)
    labels = (rng.uniform(size=n) < p).astype(int)
    return p, labels, (p > 0.5).astype(int)


def assert_same_state(a: PerformanceState, b: PerformanceState) -> None:
    """Equal counts exactly; float sums up to summation order."""
    da, db = a.to_dict(), b.to_dict()
    for name in FLOAT_FIELDS:
        assert da.pop(name) == pytest.approx(db.pop(name), rel=1e-9, abs=1e-9)
    assert da == db


class TestDocstrings:
    @pytest.mark.parametrize("module", [performance, calibration])
    def test_every_docstring_example_runs(self, module):
        result = doctest.testmod(module)
        assert result.failed == 0
        assert result.attempted > 0


class TestClassKey:
    @pytest.mark.parametrize(
        ("value", "key"),
        [
            (True, "true"),
            (False, "false"),
            (np.bool_(True), "true"),
            (1, "1"),
            (1.0, "1"),
            (np.int64(-3), "-3"),
            (np.float32(2.0), "2"),
            (2.5, "2.5"),
            (0.1, "0.1"),
            ("1", "1"),
            ("1.0", "1.0"),
            ("cat", "cat"),
        ],
    )
    def test_maps_each_kind_of_value_to_its_canonical_name(self, value, key):
        assert class_key(value) == key

    def test_label_prediction_and_probability_key_of_one_class_meet(self):
        assert class_key(1) == class_key(1.0) == class_key("1")

    def test_a_value_that_is_no_class_is_refused(self):
        with pytest.raises(TypeError, match="bool, number or string"):
            class_key(None)


class TestClassificationMetrics:
    @pytest.mark.parametrize("seed", range(5))
    def test_binary_metrics_equal_sklearn(self, seed):
        p, labels, predictions = binary_problem(seed)
        state = PerformanceState("classification", classes=("0", "1"))
        state.add(predictions, labels, p)
        metrics = state.metrics()
        assert metrics["accuracy"] == pytest.approx(accuracy_score(labels, predictions))
        assert metrics["f1_macro"] == pytest.approx(f1_score(labels, predictions, average="macro"))
        assert metrics["log_loss"] == pytest.approx(log_loss(labels, p), rel=1e-10)
        assert metrics["n_labels"] == len(labels)

    @pytest.mark.parametrize("seed", range(5))
    @pytest.mark.parametrize("prob_bins", [20, 50, 200])
    def test_roc_auc_is_within_the_documented_histogram_error_of_sklearn(self, seed, prob_bins):
        p, labels, predictions = binary_problem(seed)
        state = PerformanceState("classification", classes=("0", "1"), prob_bins=prob_bins)
        state.add(predictions, labels, p)
        error = abs(state.metrics()["roc_auc"] - roc_auc_score(labels, p))
        assert error <= state.roc_auc_error_bound() + 1e-12

    @pytest.mark.parametrize("seed", range(5))
    def test_the_auc_error_bound_is_about_one_over_twice_the_bins(self, seed):
        p, labels, predictions = binary_problem(seed)
        state = PerformanceState("classification", classes=("0", "1"))
        state.add(predictions, labels, p)
        assert state.roc_auc_error_bound() < 1 / 200

    def test_roc_auc_is_exact_when_no_bin_holds_both_classes(self):
        state = PerformanceState("classification", classes=("0", "1"))
        state.add([0, 0, 1, 1], [0, 1, 0, 1], [0.1, 0.3, 0.6, 0.9])
        assert state.metrics()["roc_auc"] == roc_auc_score([0, 1, 0, 1], [0.1, 0.3, 0.6, 0.9])
        assert state.roc_auc_error_bound() == 0.0

    @pytest.mark.parametrize("seed", range(5))
    def test_multiclass_metrics_with_probability_dicts_equal_sklearn(self, seed):
        rng = np.random.default_rng(seed)
        proba = rng.dirichlet([1, 1, 1, 1], size=500)
        labels = np.array([rng.choice(4, p=row) for row in proba])
        predictions = proba.argmax(axis=1).astype(float)  # 1.0 meets label 1 and key "1"
        rows = [{str(k): float(v) for k, v in enumerate(row)} for row in proba]
        state = PerformanceState("classification")
        state.add(predictions, labels, rows)
        metrics = state.metrics()
        assert metrics["accuracy"] == pytest.approx(accuracy_score(labels, predictions))
        assert metrics["f1_macro"] == pytest.approx(f1_score(labels, predictions, average="macro"))
        assert metrics["log_loss"] == pytest.approx(log_loss(labels, proba), rel=1e-10)
        assert metrics["roc_auc"] is None

    def test_f1_macro_counts_a_class_only_predicted_as_sklearn_does(self):
        labels, predictions = ["a", "a", "b", "b"], ["a", "c", "b", "b"]
        state = PerformanceState("classification")
        state.add(predictions, labels)
        assert state.metrics()["f1_macro"] == pytest.approx(
            f1_score(labels, predictions, average="macro")
        )

    def test_rows_without_probabilities_skip_log_loss_and_auc_only(self):
        state = PerformanceState("classification", classes=("0", "1"))
        state.add([1, 0, 1], [1, 0, 0], [0.8, None, 0.4])
        metrics = state.metrics()
        assert metrics["n_labels"] == 3
        assert metrics["log_loss"] == pytest.approx(log_loss([1, 0], [0.8, 0.4]))
        assert state.to_dict()["n_log_loss"] == 2

    def test_without_probabilities_log_loss_and_roc_auc_are_none(self):
        state = PerformanceState("classification")
        state.add([1, 0], [1, 1])
        assert state.metrics() == {
            "accuracy": 0.5,
            "f1_macro": pytest.approx(f1_score([1, 1], [1, 0], average="macro")),
            "roc_auc": None,
            "log_loss": None,
            "n_labels": 2,
        }

    def test_metrics_are_none_before_any_label(self):
        assert PerformanceState("classification").metrics() is None

    def test_the_positive_class_of_zero_one_labels_is_inferred_as_one(self):
        state = PerformanceState("classification")
        state.add([True, False], [True, True], [0.9, 0.2])
        assert state.positive_class == "true"

    def test_a_float_probability_without_a_knowable_positive_class_is_refused(self):
        state = PerformanceState("classification")
        with pytest.raises(ValueError, match="pass positive_class"):
            state.add(["cat"], ["dog"], [0.3])

    def test_lengths_that_differ_are_refused(self):
        with pytest.raises(ValueError, match="differ in length"):
            PerformanceState("classification").add([1, 0], [1])

    def test_an_unknown_task_is_refused_naming_the_allowed_ones(self):
        with pytest.raises(ValueError, match="classification"):
            PerformanceState("ranking")  # type: ignore[arg-type]


class TestRegressionMetrics:
    @pytest.mark.parametrize("seed", range(5))
    def test_mae_and_rmse_equal_sklearn(self, seed):
        rng = np.random.default_rng(seed)
        labels = rng.normal(10, 3, size=1000)
        predictions = labels + rng.normal(0.5, 1, size=1000)
        state = PerformanceState("regression")
        state.add(predictions, labels)
        assert state.metrics() == {
            "mae": pytest.approx(mean_absolute_error(labels, predictions)),
            "rmse": pytest.approx(math.sqrt(mean_squared_error(labels, predictions))),
            "n_labels": 1000,
        }

    def test_rows_with_a_missing_value_are_skipped(self):
        state = PerformanceState("regression")
        state.add([1.0, np.nan, 3.0], [2.0, 2.0, np.nan])
        assert state.metrics() == {"mae": 1.0, "rmse": 1.0, "n_labels": 1}

    def test_regression_has_no_estimate(self):
        state = PerformanceState("regression")
        state.add_unlabelled([0.3])
        assert state.estimated() is None


rows = st.lists(
    st.tuples(
        st.sampled_from([0, 1]),
        st.sampled_from([0, 1, 1.0, True]),
        st.one_of(st.none(), st.floats(0, 1), st.fixed_dictionaries({"1": st.floats(0, 1)})),
        st.booleans(),
    ),
    max_size=40,
)


def state_of(batch: list, calibrator: Calibrator | None = None) -> PerformanceState:
    """Labelled rows (label, prediction, probability, labelled?) into a binary state."""
    state = PerformanceState(
        "classification", classes=("0", "1", "true"), positive_class="1", calibrator=calibrator
    )
    labelled = [row for row in batch if row[3]]
    if labelled:
        labels, predictions, probabilities, _ = zip(*labelled, strict=True)
        state.add(predictions, labels, probabilities)
    unlabelled = [row[2] for row in batch if not row[3]]
    if unlabelled:
        state.add_unlabelled(unlabelled)
    return state


class TestMergeAndPersistence:
    @settings(max_examples=100, deadline=None)
    @given(a=rows, b=rows, c=rows)
    def test_merge_is_associative(self, a, b, c):
        x, y, z = state_of(a), state_of(b), state_of(c)
        assert_same_state(x.merge(y).merge(z), x.merge(y.merge(z)))

    @settings(max_examples=100, deadline=None)
    @given(a=rows, b=rows)
    def test_merge_is_commutative(self, a, b):
        x, y = state_of(a), state_of(b)
        assert_same_state(x.merge(y), y.merge(x))

    @settings(max_examples=100, deadline=None)
    @given(batch=rows, cut=st.integers(0, 40))
    def test_split_then_merge_equals_one_pass(self, batch, cut):
        assert_same_state(state_of(batch[:cut]).merge(state_of(batch[cut:])), state_of(batch))

    @settings(max_examples=100, deadline=None)
    @given(batch=rows)
    def test_to_dict_from_dict_round_trips_through_json(self, batch):
        calibrator = Calibrator([0.1, 0.9], [0.2, 0.7])
        state = state_of(batch, calibrator)
        restored = PerformanceState.from_dict(orjson.loads(orjson.dumps(state.to_dict())))
        assert restored.to_dict() == state.to_dict()
        assert restored.metrics() == state.metrics()
        assert restored.estimated() == state.estimated()

    def test_a_regression_state_round_trips_and_merges(self):
        a, b = PerformanceState("regression"), PerformanceState("regression")
        a.add([1.0, 2.0], [1.5, 2.0])
        b.add([4.0], [1.0])
        merged = PerformanceState.from_dict(orjson.loads(orjson.dumps(a.merge(b).to_dict())))
        assert merged.metrics() == {
            "mae": pytest.approx(3.5 / 3),
            "rmse": pytest.approx(math.sqrt(9.25 / 3)),
            "n_labels": 3,
        }

    def test_states_of_different_configuration_do_not_merge(self):
        with pytest.raises(ValueError, match="prob_bins"):
            PerformanceState("classification").merge(
                PerformanceState("classification", prob_bins=10)
            )

    def test_states_of_different_positive_class_do_not_merge(self):
        with pytest.raises(ValueError, match="positive_class"):
            PerformanceState("classification", positive_class="a").merge(
                PerformanceState("classification", positive_class="b")
            )

    def test_a_dict_that_is_no_state_is_refused(self):
        with pytest.raises(ValueError, match="not a performance state"):
            PerformanceState.from_dict({"task": "classification"})


class TestEstimatedAccuracy:
    TOLERANCE = 0.02  # ≈ 5 standard errors of an accuracy over 5000 rows

    @pytest.mark.parametrize("seed", range(5))
    def test_is_close_to_the_real_accuracy_of_a_calibrated_model(self, seed):
        p, labels, predictions = binary_problem(seed, n=5000)
        state = PerformanceState("classification", classes=("0", "1"))
        state.add_unlabelled(p)
        estimate = state.estimated()
        assert estimate["estimated"] is True
        assert estimate["n"] == 5000
        assert estimate["accuracy"] == pytest.approx(
            accuracy_score(labels, predictions), abs=self.TOLERANCE
        )

    @pytest.mark.parametrize("seed", range(5))
    def test_a_calibrator_fitted_on_the_reference_corrects_an_overconfident_model(self, seed):
        def overconfident(p: np.ndarray) -> np.ndarray:
            return 1 / (1 + np.exp(-3 * np.log(p / (1 - p))))

        p_ref, labels_ref, _ = binary_problem(seed, n=5000)
        p_cur, labels_cur, predictions = binary_problem(seed + 100, n=5000)
        calibrator = Calibrator.fit(overconfident(p_ref), labels_ref)
        real = accuracy_score(labels_cur, predictions)
        raw = PerformanceState("classification", classes=("0", "1"))
        raw.add_unlabelled(overconfident(p_cur))
        fixed = PerformanceState("classification", classes=("0", "1"), calibrator=calibrator)
        fixed.add_unlabelled(overconfident(p_cur))
        assert raw.estimated()["accuracy"] - real > 0.05
        assert fixed.estimated()["accuracy"] == pytest.approx(real, abs=self.TOLERANCE)

    def test_given_predictions_the_confidence_is_that_of_the_predicted_class(self):
        state = PerformanceState("classification", classes=("0", "1"))
        state.add_unlabelled([0.9, 0.9], predictions=[1, 0])
        assert state.estimated()["accuracy"] == pytest.approx(0.5)

    def test_a_multiclass_dict_uses_the_probability_of_the_top_class(self):
        state = PerformanceState("classification")
        state.add_unlabelled([{"a": 0.7, "b": 0.2, "c": 0.1}, None])
        assert state.estimated() == {"accuracy": pytest.approx(0.7), "estimated": True, "n": 1}

    def test_no_unlabelled_rows_give_none(self):
        assert PerformanceState("classification").estimated() is None


class TestCalibrator:
    def test_equals_sklearn_isotonic_regression_with_clipping(self):
        rng = np.random.default_rng(0)
        p = rng.uniform(0.1, 0.9, size=500)
        y = (rng.uniform(size=500) < p**2).astype(int)
        iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(p, y)
        grid = np.linspace(0, 1, 101)
        np.testing.assert_allclose(Calibrator.fit(p, y).apply(grid), iso.predict(grid))

    def test_is_the_identity_when_not_fitted(self):
        grid = np.linspace(0, 1, 5)
        assert not Calibrator().fitted
        np.testing.assert_array_equal(Calibrator().apply(grid), grid)

    def test_round_trips_through_json(self):
        calibrator = Calibrator.fit([0.1, 0.4, 0.35, 0.8], [0, 1, 0, 1])
        assert Calibrator.from_dict(orjson.loads(orjson.dumps(calibrator.to_dict()))) == (
            calibrator
        )

    def test_thresholds_that_do_not_increase_are_refused(self):
        with pytest.raises(ValueError, match="increasing"):
            Calibrator([0.5, 0.2], [0.1, 0.2])
