"""The reference profile: what it keeps of the reference, how it is saved, loaded and cached."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, mean_absolute_error

from monitor.config import (
    DriftSettings,
    FeatureSpec,
    ModelConfig,
    ReferenceSource,
    WindowSpec,
)
from monitor.engine import profile as profile_module
from monitor.engine.profile import (
    FORMAT_VERSION,
    ReferenceProfile,
    cached_profile,
    load_reference,
)
from monitor.errors import ReferenceDataError


def _frame(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(10.0, 2.0, n)
    x[rng.random(n) < 0.1] = np.nan
    y = (rng.random(n) < 0.4).astype(int)
    p = np.clip(0.4 + 0.3 * (y - 0.4) + rng.normal(0, 0.15, n), 0.0, 1.0)
    return pd.DataFrame(
        {
            "x": x,
            "k": rng.integers(0, 5, n),
            "color": rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2]),
            "flag": rng.random(n) < 0.5,
            "target": y,
            "prediction": (p >= 0.5).astype(int),
            "probability": p,
        }
    )


def _classifier_profile(frame: pd.DataFrame, **kwargs: object) -> ReferenceProfile:
    return ReferenceProfile.build(
        frame,
        task="classification",
        features=None,
        target="target",
        prediction="prediction",
        probability="probability",
        **kwargs,  # type: ignore[arg-type]
    )


def _model(
    path: Path, features: tuple[FeatureSpec, ...] | None = None, **drift: object
) -> ModelConfig:
    return ModelConfig(
        name="wine",
        task="classification",
        reference=ReferenceSource(
            path=path, target="target", prediction="prediction", probability="probability"
        ),
        window=WindowSpec(size=100),
        features=features,
        drift=DriftSettings(**drift),  # type: ignore[arg-type]
    )


class TestFeatureInference:
    def test_numeric_dtypes_are_numeric_and_the_rest_categorical(self):
        profile = _classifier_profile(_frame())
        kinds = {f.name: f.kind for f in profile.features}
        assert kinds == {
            "x": "numeric",
            "k": "numeric",
            "color": "categorical",
            "flag": "categorical",
        }

    def test_target_prediction_and_probability_are_never_features(self):
        names = [f.name for f in _classifier_profile(_frame()).features]
        assert not {"target", "prediction", "probability"} & set(names)

    def test_configured_features_are_kept_in_their_order_and_kind(self):
        specs = (FeatureSpec("color", "categorical"), FeatureSpec("k", "categorical"))
        profile = ReferenceProfile.build(_frame(), task="classification", features=specs)
        assert [(f.name, f.kind) for f in profile.features] == [
            ("color", "categorical"),
            ("k", "categorical"),
        ]
        assert profile.categorical[1].categories == ("0", "1", "2", "3", "4")


class TestNumericProfile:
    def test_bins_are_reference_quantiles_with_empty_under_and_overflow(self):
        frame = _frame()
        column = _classifier_profile(frame, bins=10).numeric[0]
        values = frame["x"].dropna().to_numpy()
        assert column.edges[0] == values.min()
        assert column.edges[-1] > values.max()
        np.testing.assert_allclose(column.edges[1:-1], np.quantile(values, np.arange(1, 10) / 10))
        assert column.counts[0] == 0
        assert column.counts[-1] == 0
        assert column.counts.sum() == values.size
        assert np.all(np.abs(column.counts[1:-1] - values.size / 10) <= 2)

    def test_moments_and_missing_rate_match_numpy(self):
        frame = _frame()
        column = _classifier_profile(frame).numeric[0]
        values = frame["x"].dropna().to_numpy()
        assert column.mean == pytest.approx(values.mean())
        assert column.std == pytest.approx(values.std())
        assert (column.minimum, column.maximum) == (values.min(), values.max())
        assert column.missing_rate == pytest.approx(frame["x"].isna().mean())

    def test_a_discrete_feature_gets_one_bin_per_distinct_value(self):
        column = _classifier_profile(_frame()).numeric[1]  # k in 0..4
        assert column.edges[:-1].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]

    def test_the_sample_is_bounded_seeded_and_drawn_from_the_data(self):
        frame = _frame()
        one = _classifier_profile(frame, sample_size=100, seed=1).numeric[0].sample
        again = _classifier_profile(frame, sample_size=100, seed=1).numeric[0].sample
        other = _classifier_profile(frame, sample_size=100, seed=2).numeric[0].sample
        assert one.size == 100
        np.testing.assert_array_equal(one, again)
        assert not np.array_equal(one, other)
        assert set(one) <= set(frame["x"].dropna())

    def test_a_small_reference_is_sampled_whole(self):
        frame = _frame(n=300)
        column = _classifier_profile(frame, sample_size=1000).numeric[0]
        np.testing.assert_array_equal(column.sample, np.sort(frame["x"].dropna()))

    def test_a_numeric_feature_holding_text_is_an_error_naming_it(self):
        frame = _frame().astype({"x": object})
        frame.loc[3, "x"] = "n/a"
        with pytest.raises(ReferenceDataError, match=r"'x'.*'n/a'"):
            ReferenceProfile.build(
                frame, task="classification", features=[FeatureSpec("x", "numeric")]
            )


class TestCategoricalProfile:
    def test_categories_are_sorted_keys_with_an_empty_unseen_bucket(self):
        frame = _frame()
        column = _classifier_profile(frame).categorical[0]
        assert column.categories == ("blue", "green", "red")
        counts = frame["color"].value_counts()
        assert column.counts.tolist() == [counts["blue"], counts["green"], counts["red"], 0]

    def test_numbers_are_keyed_like_event_values(self):
        frame = pd.DataFrame({"c": [1.0, 2.0, np.nan, 1.0], "b": [True, False, True, True]})
        profile = ReferenceProfile.build(
            frame,
            task="regression",
            features=[FeatureSpec("c", "categorical"), FeatureSpec("b", "categorical")],
        )
        assert profile.categorical[0].categories == ("1", "2")
        assert profile.categorical[0].n_missing == 1
        assert profile.categorical[1].categories == ("false", "true")


class TestOutputs:
    def test_classes_positive_class_and_prediction_counts(self):
        frame = _frame()
        profile = _classifier_profile(frame)
        assert profile.classes == ("0", "1")
        assert profile.positive_class == "1"
        counts = frame["prediction"].value_counts()
        assert profile.prediction is not None
        assert profile.prediction.counts.tolist() == [counts.get(0, 0), counts.get(1, 0), 0]

    def test_reference_performance_is_the_models_on_the_reference(self):
        frame = _frame()
        profile = _classifier_profile(frame)
        assert profile.performance is not None
        expected = accuracy_score(frame["target"], frame["prediction"])
        assert profile.performance["accuracy"] == pytest.approx(expected)
        assert profile.performance["n_labels"] == len(frame)

    def test_the_probability_is_profiled_and_a_calibrator_fitted(self):
        profile = _classifier_profile(_frame())
        assert profile.probability is not None
        assert profile.probability.counts.sum() == len(_frame())
        assert profile.calibrator is not None
        assert profile.calibrator.fitted

    def test_regression_profiles_the_prediction_as_numeric_and_its_mae(self):
        rng = np.random.default_rng(3)
        y = rng.normal(size=500)
        frame = pd.DataFrame(
            {"x": rng.normal(size=500), "y": y, "yhat": y + rng.normal(0, 0.3, 500)}
        )
        profile = ReferenceProfile.build(
            frame, task="regression", features=None, target="y", prediction="yhat"
        )
        assert [f.name for f in profile.features] == ["x"]
        assert profile.prediction is not None
        assert profile.prediction.counts.sum() == 500
        assert profile.performance is not None
        assert profile.performance["mae"] == pytest.approx(mean_absolute_error(y, frame["yhat"]))

    def test_a_classifier_known_only_by_its_probability_predicts_positive_at_one_half(self):
        frame = _frame().drop(columns="prediction")
        profile = ReferenceProfile.build(
            frame, task="classification", features=None, target="target", probability="probability"
        )
        expected = accuracy_score(frame["target"], (frame["probability"] >= 0.5).astype(int))
        assert profile.performance is not None
        assert profile.performance["accuracy"] == pytest.approx(expected)


class TestPersistence:
    def test_to_dict_round_trips_through_json(self):
        profile = _classifier_profile(_frame())
        data = orjson.loads(orjson.dumps(profile.to_dict()))
        assert data["format_version"] == FORMAT_VERSION
        assert ReferenceProfile.from_dict(data).to_dict() == profile.to_dict()

    def test_save_and_load_round_trip(self, tmp_path):
        profile = _classifier_profile(_frame())
        profile.save(tmp_path / "p.json")
        loaded = ReferenceProfile.load(tmp_path / "p.json")
        assert loaded.to_dict() == profile.to_dict()
        np.testing.assert_array_equal(loaded.numeric[0].sample, profile.numeric[0].sample)

    def test_another_format_version_is_refused_with_advice(self, tmp_path):
        data = _classifier_profile(_frame()).to_dict() | {"format_version": 99}
        (tmp_path / "p.json").write_bytes(orjson.dumps(data))
        with pytest.raises(ReferenceDataError, match=r"format_version 99.*rebuilt"):
            ReferenceProfile.load(tmp_path / "p.json")

    def test_a_corrupt_file_is_a_reference_error(self, tmp_path):
        (tmp_path / "p.json").write_text("{not json")
        with pytest.raises(ReferenceDataError, match=r"p\.json"):
            ReferenceProfile.load(tmp_path / "p.json")


class TestLoadReference:
    @pytest.mark.parametrize("suffix", [".csv", ".parquet"])
    def test_csv_and_parquet_are_read_by_suffix(self, tmp_path, suffix):
        frame = _frame(n=50)
        path = tmp_path / f"ref{suffix}"
        frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
        loaded = load_reference(_model(path).reference, _model(path))
        assert loaded.shape == frame.shape

    def test_a_missing_file_is_named(self, tmp_path):
        model = _model(tmp_path / "nope.csv")
        with pytest.raises(ReferenceDataError, match=r"nope\.csv does not exist"):
            load_reference(model.reference, model)

    def test_missing_columns_the_config_names_are_listed(self, tmp_path):
        path = tmp_path / "ref.csv"
        _frame(n=20).drop(columns=["probability"]).to_csv(path, index=False)
        model = _model(path, features=(FeatureSpec("alcohol", "numeric"),))
        with pytest.raises(
            ReferenceDataError, match=r"lacks the columns \['alcohol', 'probability'\]"
        ):
            load_reference(model.reference, model)

    def test_an_empty_file_is_refused(self, tmp_path):
        path = tmp_path / "ref.csv"
        _frame(n=20).iloc[:0].to_csv(path, index=False)
        with pytest.raises(ReferenceDataError, match="no rows"):
            load_reference(_model(path).reference, _model(path))

    def test_an_unknown_suffix_is_refused(self, tmp_path):
        path = tmp_path / "ref.xlsx"
        path.write_text("x")
        with pytest.raises(ReferenceDataError, match="unknown suffix"):
            load_reference(_model(path).reference, _model(path))


class TestCachedProfile:
    def test_it_builds_once_then_loads_the_saved_file(self, tmp_path, monkeypatch):
        path = tmp_path / "ref.csv"
        _frame(n=300).to_csv(path, index=False)
        first = cached_profile(_model(path), tmp_path / "cache")
        assert len(list((tmp_path / "cache").iterdir())) == 1

        def no_rebuild(*args: object, **kwargs: object) -> None:
            raise AssertionError("the reference was read again")

        monkeypatch.setattr(profile_module, "load_reference", no_rebuild)
        again = cached_profile(_model(path), tmp_path / "cache")
        assert again.to_dict() == first.to_dict()

    def test_a_changed_reference_or_setting_builds_a_new_profile(self, tmp_path):
        path = tmp_path / "ref.csv"
        _frame(n=300).to_csv(path, index=False)
        cache = tmp_path / "cache"
        cached_profile(_model(path), cache)
        cached_profile(_model(path, bins=5), cache)
        _frame(n=300, seed=1).to_csv(path, index=False)
        changed = cached_profile(_model(path), cache)
        assert len(list(cache.iterdir())) == 3
        assert changed.n_rows == 300

    def test_a_truncated_cache_file_is_rebuilt(self, tmp_path):
        path = tmp_path / "ref.csv"
        _frame(n=300).to_csv(path, index=False)
        cache = tmp_path / "cache"
        cached_profile(_model(path), cache)
        saved = next(cache.iterdir())
        saved.write_bytes(saved.read_bytes()[:50])
        assert cached_profile(_model(path), cache).n_rows == 300
