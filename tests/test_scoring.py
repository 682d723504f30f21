"""Scoring a window: decisions that do not cry wolf, agreement with Evidently, health, alerts."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.config import DriftSettings, FeatureSpec
from monitor.engine.batch import Batch, to_batch
from monitor.engine.decisions import Measurement, decide, resolve_method
from monitor.engine.health import health
from monitor.engine.profile import ReferenceProfile
from monitor.engine.scoring import score_window
from monitor.engine.window_state import WindowState
from monitor.errors import ConfigError


def _numeric_profile(rng: np.random.Generator, n_features: int, n_rows: int) -> ReferenceProfile:
    frame = pd.DataFrame({f"f{i}": rng.normal(size=n_rows) for i in range(n_features)})
    return ReferenceProfile.build(frame, task="regression", features=None)


def _window(profile: ReferenceProfile, values: np.ndarray) -> WindowState:
    state = WindowState(profile)
    n = values.shape[1]
    state.update(Batch(values, np.zeros((0, n), np.int64), np.zeros(values.shape[0], np.int64), n))
    return state


def _flagged(result: dict[str, Any]) -> set[str]:
    return {name for name, f in result["features"].items() if f["drift"]}


def _concept_events(
    rng: np.random.Generator, n: int, flipped: bool
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Features, the model's probability (of x0 only) and labels; flipped: the concept
    changed (the label now goes against x0) while the features did not."""
    x = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(5)})
    probability = 1.0 / (1.0 + np.exp(-3.0 * x["x0"].to_numpy()))
    truth = (x["x0"].to_numpy() + rng.normal(0, 0.3, n)) > 0
    return x, probability, (~truth if flipped else truth).astype(int)


class TestBehaviourAcrossSeeds:
    def test_a_stable_stream_of_30_features_rarely_flags_drift(self):
        drift = DriftSettings()
        windows = detected = any_feature = 0
        for seed in range(10):
            rng = np.random.default_rng(seed)
            profile = _numeric_profile(rng, 30, 10_000)
            for _ in range(20):
                result = score_window(profile, _window(profile, rng.normal(size=(30, 1000))), drift)
                windows += 1
                detected += result["drift_detected"]
                any_feature += bool(_flagged(result))
        assert detected <= 0.01 * windows
        assert any_feature <= 0.05 * windows  # BH keeps even one false flag rare

    def test_a_half_sd_shift_in_3_of_20_features_is_flagged_within_2_windows(self):
        drift = DriftSettings()
        for seed in range(10):
            rng = np.random.default_rng(100 + seed)
            profile = _numeric_profile(rng, 20, 10_000)
            before = score_window(profile, _window(profile, rng.normal(size=(20, 1000))), drift)
            assert not before["drift_detected"]
            flagged_by = []
            for window in (1, 2):
                values = rng.normal(size=(20, 1000))
                values[:3] += 0.5
                result = score_window(profile, _window(profile, values), drift)
                if {"f0", "f1", "f2"} <= _flagged(result) and result["drift_detected"]:
                    flagged_by.append(window)
            assert flagged_by, f"seed {seed}: not flagged within 2 windows"

    def test_at_a_drift_share_of_half_3_of_20_flag_features_but_not_the_window(self):
        rng = np.random.default_rng(7)
        profile = _numeric_profile(rng, 20, 10_000)
        values = rng.normal(size=(20, 1000))
        values[:3] += 0.5
        result = score_window(profile, _window(profile, values), DriftSettings(drift_share=0.5))
        assert _flagged(result) == {"f0", "f1", "f2"}
        assert result["drift_share"] == pytest.approx(0.15)
        assert not result["drift_detected"]
        assert result["alerts"] == []
        assert result["health_score"] < 90

    def test_a_tiny_shift_in_windows_of_50000_is_not_flagged(self):
        floor_off = DriftSettings(min_effect={"ks": 0.0})
        significant = 0
        for seed in range(4):
            rng = np.random.default_rng(200 + seed)
            profile = _numeric_profile(rng, 5, 100_000)
            values = rng.normal(size=(5, 50_000))
            values[0] += 0.03
            state = _window(profile, values)
            assert not score_window(profile, state, DriftSettings())["features"]["f0"]["drift"]
            significant += score_window(profile, state, floor_off)["features"]["f0"]["drift"]
        assert significant >= 3  # the test alone would alarm: the effect floor keeps it quiet

    def test_a_concept_change_shows_as_a_performance_drop_once_labels_arrive(self):
        for seed in range(3):
            rng = np.random.default_rng(300 + seed)
            x, probability, labels = _concept_events(rng, 5000, flipped=False)
            frame = x.assign(p=probability, yhat=(probability >= 0.5).astype(int), y=labels)
            profile = ReferenceProfile.build(
                frame,
                task="classification",
                features=None,
                target="y",
                prediction="yhat",
                probability="p",
            )
            x, probability, labels = _concept_events(rng, 1000, flipped=True)
            predictions = (probability >= 0.5).astype(int)
            state = WindowState(profile)
            state.update(to_batch(x.to_dict("records"), profile), predictions, probability)
            unlabelled = score_window(profile, state, DriftSettings())
            assert unlabelled["performance"] is None
            assert unlabelled["estimated_performance"]["estimated"] is True
            assert "performance" not in unlabelled["alerts"]
            assert not unlabelled["drift_detected"]

            state.add_labels(predictions[:500], labels[:500], probability[:500])
            half = score_window(profile, state, DriftSettings())
            assert half["performance"]["label_completeness"] == pytest.approx(0.5)
            assert "performance" in half["alerts"]
            state.add_labels(predictions[500:], labels[500:], probability[500:])
            full = score_window(profile, state, DriftSettings())
            assert full["performance"]["label_completeness"] == pytest.approx(1.0)
            assert full["performance"]["accuracy"] < 0.3
            assert full["alerts"] == ["performance"]
            assert full["health_score"] <= 50.0 < unlabelled["health_score"]


# -- agreement with Evidently on the same data, method and threshold ---------------------

NUMERIC = ["same", "shift", "scale", "same2"]
CATEGORICAL = ["csame", "cdrift"]


def _agreement_frames(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)

    def frame(n: int, drift: bool) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "same": rng.normal(0, 1, n),
                "shift": rng.normal(0.6 if drift else 0.0, 1, n),
                "scale": rng.normal(0, 2 if drift else 1, n),
                "same2": rng.normal(5, 2, n),
                "csame": rng.choice(list("xyz"), n, p=[0.5, 0.3, 0.2]),
                "cdrift": rng.choice(
                    list("xyz"), n, p=[0.3, 0.3, 0.4] if drift else [0.5, 0.3, 0.2]
                ),
            }
        )

    return frame(4000, drift=False), frame(2000, drift=True)


def _ours(
    ref: pd.DataFrame, cur: pd.DataFrame, method: str, threshold: float, columns: list[str]
) -> dict[str, Any]:
    specs = [
        FeatureSpec(c, "numeric" if c in NUMERIC else "categorical", method=method)  # type: ignore[arg-type]
        for c in columns
    ]
    # samples as large as the data: the exact methods then see what Evidently sees
    profile = ReferenceProfile.build(
        ref[columns], task="regression", features=specs, sample_size=len(ref)
    )
    state = WindowState(profile, sample_size=len(cur))
    state.update(Batch.from_columns(profile, {c: cur[c].to_numpy() for c in columns}))
    drift = DriftSettings(thresholds={method: threshold}, min_effect={"ks": 0.0, "chisquare": 0.0})
    return score_window(profile, state, drift, specs)["features"]


def _evidently(
    ref: pd.DataFrame, cur: pd.DataFrame, method: str, threshold: float, columns: list[str]
) -> dict[str, tuple[bool, float]]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    definition = DataDefinition(
        numerical_columns=[c for c in columns if c in NUMERIC],
        categorical_columns=[c for c in columns if c in CATEGORICAL],
    )
    report = Report(
        [ValueDrift(column=c, method=method, threshold=threshold) for c in columns],
        include_tests=True,
    )
    snapshot = report.run(
        Dataset.from_pandas(cur[columns], data_definition=definition),
        Dataset.from_pandas(ref[columns], data_definition=definition),
    ).dict()
    values = {m["config"]["column"]: float(m["value"]) for m in snapshot["metrics"]}
    drifted = {
        t["metric_config"]["params"]["column"]: t["status"] == "FAIL" for t in snapshot["tests"]
    }
    return {c: (drifted[c], values[c]) for c in columns}


_METHODS = {
    "ks": (0.05, NUMERIC),
    "wasserstein": (0.1, NUMERIC),
    "psi": (0.1, NUMERIC + CATEGORICAL),
    "jensenshannon": (0.1, NUMERIC + CATEGORICAL),
    "chisquare": (0.05, CATEGORICAL),
}


class TestEvidentlyAgreement:
    @pytest.mark.parametrize("seed", [0, 1, 2])
    @pytest.mark.parametrize("method", sorted(_METHODS))
    def test_per_feature_decisions_agree(self, method, seed):
        threshold, columns = _METHODS[method]
        ref, cur = _agreement_frames(seed)
        ours = _ours(ref, cur, method, threshold, columns)
        theirs = _evidently(ref, cur, method, threshold, columns)
        assert {c: ours[c]["drift"] for c in columns} == {c: theirs[c][0] for c in columns}
        assert {c for c in columns if ours[c]["drift"]} == {"shift", "scale", "cdrift"} & set(
            columns
        )

    @pytest.mark.parametrize("method", ["ks", "wasserstein"])
    def test_exact_methods_give_evidentlys_values(self, method):
        threshold, columns = _METHODS[method]
        ref, cur = _agreement_frames(3)
        ours = _ours(ref, cur, method, threshold, columns)
        theirs = _evidently(ref, cur, method, threshold, columns)
        key = "p_value" if method == "ks" else "score"
        for c in columns:
            assert ours[c][key] == pytest.approx(theirs[c][1], rel=1e-9)


# -- decisions -----------------------------------------------------------------------------


def _specs(n: int) -> list[FeatureSpec]:
    return [FeatureSpec(f"f{i}", "numeric") for i in range(n)]


class TestDecisions:
    def test_p_values_are_corrected_across_features_with_benjamini_hochberg(self):
        measurements = [Measurement("ks_binned", 0.2, 0.01, 0.2)] + [
            Measurement("ks_binned", 0.01, 0.5, 0.01)
        ] * 19
        lines = decide(_specs(20), measurements, DriftSettings())
        assert not lines[0]["drift"]
        assert lines[0]["threshold"] == pytest.approx(0.05 / 20)

    def test_the_reported_threshold_is_the_bh_cutoff(self):
        measurements = [Measurement("ks_binned", 0.2, 0.01, 0.2)] * 5 + [
            Measurement("ks_binned", 0.01, 0.5, 0.01)
        ] * 15
        lines = decide(_specs(20), measurements, DriftSettings())
        assert [line["drift"] for line in lines] == [True] * 5 + [False] * 15
        assert lines[0]["threshold"] == pytest.approx(5 * 0.05 / 20)

    def test_an_explicit_p_value_threshold_tests_the_feature_alone(self):
        measurements = [Measurement("ks_binned", 0.2, 0.01, 0.2)] + [
            Measurement("ks_binned", 0.01, 0.5, 0.01)
        ] * 19
        lines = decide(_specs(20), measurements, DriftSettings(thresholds={"ks": 0.05}))
        assert lines[0]["drift"]
        assert lines[0]["threshold"] == 0.05

    def test_a_significant_but_tiny_effect_does_not_drift(self):
        tiny, large = (
            Measurement("ks_binned", 0.01, 1e-12, 0.01),
            Measurement("ks_binned", 0.1, 1e-12, 0.1),
        )
        lines = decide(_specs(2), [tiny, large], DriftSettings())
        assert [line["drift"] for line in lines] == [False, True]
        assert lines[0]["min_effect"] == 0.05

    def test_distance_methods_drift_at_or_above_their_threshold(self):
        specs = [
            FeatureSpec("a", "numeric", "psi"),
            FeatureSpec("b", "numeric", "psi", threshold=0.3),
        ]
        lines = decide(specs, [Measurement("psi", 0.1), Measurement("psi", 0.25)], DriftSettings())
        assert [line["drift"] for line in lines] == [True, False]
        assert [line["threshold"] for line in lines] == [0.1, 0.3]

    def test_auto_picks_a_test_by_kind_and_refuses_numeric_methods_on_categories(self):
        drift = DriftSettings()
        assert resolve_method(FeatureSpec("a", "numeric"), drift) == "ks_binned"
        assert resolve_method(FeatureSpec("a", "categorical"), drift) == "chisquare"
        assert (
            resolve_method(FeatureSpec("a", "categorical"), DriftSettings(method="ks"))
            == "chisquare"
        )
        with pytest.raises(ConfigError, match=r"'a'.*numeric feature"):
            resolve_method(FeatureSpec("a", "categorical", "wasserstein"), drift)

    def test_a_critical_feature_makes_the_window_drift_alone(self):
        rng = np.random.default_rng(11)
        profile = _numeric_profile(rng, 10, 5000)
        values = rng.normal(size=(10, 1000))
        values[4] += 1.0
        specs = [FeatureSpec(f"f{i}", "numeric", critical=i == 4) for i in range(10)]
        result = score_window(profile, _window(profile, values), DriftSettings(), specs)
        assert result["drift_share"] == pytest.approx(0.1)
        assert result["drift_detected"]
        assert "drift" in result["alerts"]

    def test_a_window_without_values_scores_none_and_stays_json(self):
        rng = np.random.default_rng(12)
        frame = pd.DataFrame({"x": rng.normal(size=500), "c": rng.choice(["a", "b"], 500)})
        profile = ReferenceProfile.build(frame, task="regression", features=None)
        result = score_window(profile, WindowState(profile), DriftSettings())
        assert result["features"]["x"]["score"] is None
        assert not result["features"]["x"]["drift"]
        assert result["health_score"] == 100.0
        assert result["alerts"] == []
        json.dumps(result, allow_nan=False)


# -- health, data quality, prediction drift ---------------------------------------------------


class TestHealthAndQuality:
    def test_health_is_in_range_and_falls_as_drift_grows(self):
        rng = np.random.default_rng(21)
        profile = _numeric_profile(rng, 20, 10_000)
        base = rng.normal(size=(20, 1000))
        scores = []
        for shift in (0.0, 0.1, 0.3, 0.6, 1.0, 2.0):
            values = base.copy()
            values[:10] += shift
            scores.append(
                score_window(profile, _window(profile, values), DriftSettings())["health_score"]
            )
        assert all(0.0 <= s <= 100.0 for s in scores)
        assert scores == sorted(scores, reverse=True)
        assert scores[0] >= 95.0
        assert scores[-1] <= 50.0

    @given(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.floats(0, 1))
    def test_the_health_formula_is_bounded_and_monotone(self, drift, performance, quality, more):
        score = health(drift, performance, quality)["score"]
        assert 0.0 <= score <= 100.0
        assert health(max(drift, more), performance, quality)["score"] <= score

    def _mixed(self) -> ReferenceProfile:
        rng = np.random.default_rng(22)
        frame = pd.DataFrame({"x": rng.normal(size=2000), "c": rng.choice(["a", "b", "c"], 2000)})
        return ReferenceProfile.build(frame, task="regression", features=None)

    def _rows(self, n: int, **overrides: Any) -> list[dict[str, Any]]:
        rng = np.random.default_rng(23)
        rows = [
            {"x": float(v), "c": str(c)}
            for v, c in zip(rng.normal(size=n), rng.choice(["a", "b", "c"], n), strict=True)
        ]
        for i in range(0, n, overrides.pop("every", n + 1)):
            rows[i].update(overrides)
        return rows

    @pytest.mark.parametrize(
        ("override", "rate"),
        [
            ({"x": None}, "missing_rate"),
            ({"x": "text"}, "type_error_rate"),
            ({"c": "new"}, "unseen_rate"),
            ({"x": 99.0}, "out_of_range_rate"),
        ],
    )
    def test_a_surge_of_bad_values_raises_a_data_quality_alert(self, override, rate):
        profile = self._mixed()
        state = WindowState(profile)
        state.update(to_batch(self._rows(1000, every=4, **override), profile))
        result = score_window(profile, state, DriftSettings())
        name = next(iter(override))
        assert result["data_quality"]["features"][name][rate] == pytest.approx(0.25, abs=0.005)
        assert result["data_quality"]["features"][name]["alert"]
        assert "data_quality" in result["alerts"]
        assert result["health_score"] < 50.0

    def test_a_few_missing_values_are_not_an_alert(self):
        profile = self._mixed()
        state = WindowState(profile)
        state.update(to_batch(self._rows(1000, every=200, x=None), profile))
        result = score_window(profile, state, DriftSettings())
        assert result["data_quality"]["features"]["x"]["missing_rate"] == pytest.approx(0.005)
        assert result["alerts"] == []

    def test_prediction_and_probability_drift_are_reported(self):
        rng = np.random.default_rng(24)
        p = rng.random(3000)
        frame = pd.DataFrame(
            {
                "x": rng.normal(size=3000),
                "p": p,
                "yhat": (p >= 0.5).astype(int),
                "y": rng.integers(0, 2, 3000),
            }
        )
        profile = ReferenceProfile.build(
            frame,
            task="classification",
            features=None,
            target="y",
            prediction="yhat",
            probability="p",
        )
        state = WindowState(profile)
        skewed = rng.random(1000) ** 0.3
        state.update(
            to_batch([{"x": float(v)} for v in rng.normal(size=1000)], profile),
            (skewed >= 0.5).astype(int),
            skewed,
        )
        result = score_window(profile, state, DriftSettings())
        assert result["prediction_drift"]["drift"]
        assert result["prediction_drift"]["method"] == "chisquare"
        assert result["prediction_drift"]["probability"]["drift"]
        assert not result["drift_detected"]

    def test_too_few_labels_never_raise_a_performance_alert(self):
        rng = np.random.default_rng(25)
        p = rng.random(2000)
        frame = pd.DataFrame(
            {
                "x": rng.normal(size=2000),
                "yhat": (p >= 0.5).astype(int),
                "y": (p >= 0.5).astype(int),
            }
        )
        profile = ReferenceProfile.build(
            frame, task="classification", features=None, target="y", prediction="yhat"
        )
        state = WindowState(profile)
        state.update(to_batch([{"x": 0.0}] * 100, profile), [1] * 100)
        state.add_labels([1] * 10, [0] * 10)
        result = score_window(profile, state, DriftSettings())
        assert result["performance"]["accuracy"] == 0.0
        assert "performance" not in result["alerts"]
