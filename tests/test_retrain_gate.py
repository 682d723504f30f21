"""The promotion gate (pure): higher or lower is better, margins, ties, undefined scores."""

from __future__ import annotations

import math

import pytest

from retrain.gate import HIGHER_IS_BETTER, compare


class TestHigherIsBetter:
    @pytest.mark.parametrize("metric", ["accuracy", "f1_macro", "roc_auc"])
    def test_a_better_challenger_passes(self, metric: str) -> None:
        result = compare(metric, champion_score=0.80, challenger_score=0.90, margin=0.05)
        assert result.passed
        assert result.reason == (
            f"challenger {metric} 0.9000 exceeds champion 0.8000 + margin 0.0500"
        )

    def test_a_gain_within_the_margin_fails(self) -> None:
        result = compare("accuracy", champion_score=0.80, challenger_score=0.84, margin=0.05)
        assert not result.passed
        assert "does not exceed" in result.reason

    def test_a_tie_never_promotes(self) -> None:
        assert not compare("accuracy", 0.9, 0.9, margin=0.0).passed

    def test_a_worse_challenger_fails(self) -> None:
        assert not compare("roc_auc", 0.9, 0.6, margin=0.0).passed


class TestLowerIsBetter:
    @pytest.mark.parametrize("metric", ["mae", "rmse"])
    def test_a_smaller_error_passes(self, metric: str) -> None:
        result = compare(metric, champion_score=2.0, challenger_score=1.5, margin=0.25)
        assert result.passed
        assert (
            result.reason == f"challenger {metric} 1.5000 is below champion 2.0000 - margin 0.2500"
        )

    def test_an_improvement_within_the_margin_fails(self) -> None:
        assert not compare("mae", champion_score=2.0, challenger_score=1.9, margin=0.25).passed

    def test_a_larger_error_fails(self) -> None:
        assert not compare("rmse", champion_score=2.0, challenger_score=3.0, margin=0.0).passed


class TestUndefinedScores:
    def test_an_undefined_challenger_score_fails(self) -> None:
        result = compare("roc_auc", champion_score=0.7, challenger_score=math.nan, margin=0.0)
        assert not result.passed
        assert result.reason == "challenger roc_auc is undefined on the holdout"

    def test_an_undefined_champion_score_fails_rather_than_guess(self) -> None:
        result = compare("roc_auc", champion_score=math.nan, challenger_score=0.9, margin=0.0)
        assert not result.passed
        assert "cannot compare" in result.reason

    def test_undefined_scores_are_null_in_the_plain_form(self) -> None:
        data = compare("roc_auc", math.nan, 0.9, margin=0.0).to_dict()
        assert data["champion"] is None
        assert data["challenger"] == 0.9


class TestArguments:
    def test_an_unknown_metric_names_the_allowed_ones(self) -> None:
        with pytest.raises(ValueError, match="accuracy, f1_macro, roc_auc, mae, rmse"):
            compare("precision", 0.5, 0.6, margin=0.0)

    @pytest.mark.parametrize("margin", [-0.1, math.nan, math.inf])
    def test_a_bad_margin_is_refused(self, margin: float) -> None:
        with pytest.raises(ValueError, match="margin"):
            compare("accuracy", 0.5, 0.6, margin=margin)

    def test_every_metric_has_a_direction(self) -> None:
        assert set(HIGHER_IS_BETTER) == {"accuracy", "f1_macro", "roc_auc", "mae", "rmse"}


def test_the_version_tag_says_passed_or_failed_and_why() -> None:
    assert compare("accuracy", 0.8, 0.9, margin=0.0).tag().startswith("passed: challenger")
    assert compare("accuracy", 0.9, 0.8, margin=0.0).tag().startswith("failed: challenger")
