"""Drift statistics: exact values against scipy/numpy, and behaviour across seeds."""

from __future__ import annotations

import doctest
import importlib
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from monitor import stats as driftstats
from monitor.stats import (
    KsResult,
    benjamini_hochberg,
    chi_square,
    chi_square_gof,
    jensen_shannon,
    ks_binned,
    ks_exact,
    psi,
    wasserstein_normed,
)

MODULES = ["_counts", "chisquare", "jensen_shannon", "ks", "multiple_testing", "psi", "wasserstein"]
SEEDS = range(200)
CATEGORY_PROBS = np.array([0.3, 0.25, 0.2, 0.15, 0.07, 0.03])


def seeded_counts(seed: int, k: int = 12, low: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(low, 500, k).astype(float), rng.integers(low, 100, k).astype(float)


def quantile_binned(ref: np.ndarray, cur: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts of both samples over the reference's quantile bins (as the profile bins)."""
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    k = edges.size + 1
    ref_counts = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=k)
    cur_counts = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=k)
    return ref_counts, cur_counts


def binomial_bounds(n: int, rate: float) -> tuple[float, float]:
    """Two-sided 99.9 % range of the number of alarms out of n at the given rate."""
    low, high = stats.binom.ppf([0.0005, 0.9995], n, rate)
    return low, high


class TestDocstrings:
    @pytest.mark.parametrize("module", MODULES)
    def test_every_docstring_example_runs(self, module):
        result = doctest.testmod(importlib.import_module(f"monitor.stats.{module}"))
        assert result.failed == 0
        assert result.attempted > 0

    def test_the_package_exports_every_statistic(self):
        assert set(driftstats.__all__) == {
            "KsResult",
            "benjamini_hochberg",
            "chi_square",
            "chi_square_gof",
            "jensen_shannon",
            "ks_binned",
            "ks_exact",
            "psi",
            "wasserstein_normed",
        }


class TestCountValidation:
    def test_bins_of_different_lengths_are_refused(self):
        with pytest.raises(ValueError, match="same bins"):
            psi([1, 2, 3], [1, 2])

    @pytest.mark.parametrize("bad", [[1, -1], [1, float("nan")], [1, float("inf")]])
    def test_negative_or_non_finite_counts_are_refused(self, bad):
        with pytest.raises(ValueError, match="finite and non-negative"):
            jensen_shannon([1, 1], bad)


class TestPsi:
    @pytest.mark.parametrize("seed", range(20))
    def test_equals_the_formula_on_proportions_when_no_bin_is_empty(self, seed):
        ref, cur = seeded_counts(seed)
        r, c = ref / ref.sum(), cur / cur.sum()
        assert psi(ref, cur) == pytest.approx(np.sum((c - r) * np.log(c / r)), rel=1e-12)

    def test_identical_distributions_give_zero(self):
        assert psi([10, 20, 30], [1, 2, 3]) == pytest.approx(0.0, abs=1e-15)

    def test_an_empty_bin_takes_eps_and_the_side_is_renormalised(self):
        r = np.array([0.5, 0.5, 1e-4]) / 1.0001
        c = np.array([0.25, 0.25, 0.5])
        assert psi([50, 50, 0], [25, 25, 50]) == pytest.approx(np.sum((c - r) * np.log(c / r)))

    def test_a_bin_empty_on_both_sides_contributes_nothing(self):
        assert psi([50, 50, 0], [80, 20, 0]) == pytest.approx(psi([50, 50], [80, 20]))

    def test_is_symmetric(self):
        ref, cur = seeded_counts(3, low=0)
        assert psi(ref, cur) == pytest.approx(psi(cur, ref))

    def test_an_empty_side_gives_nan(self):
        assert math.isnan(psi([0, 0], [1, 2]))

    def test_eps_outside_zero_one_is_refused(self):
        with pytest.raises(ValueError, match="eps"):
            psi([1, 1], [1, 1], eps=0)


class TestChiSquare:
    @pytest.mark.parametrize("seed", range(20))
    def test_equals_scipy_chi2_contingency_without_correction(self, seed):
        ref, cur = seeded_counts(seed)
        expected = stats.chi2_contingency(np.vstack([ref, cur]), correction=False)
        stat, p = chi_square(ref, cur)
        assert stat == pytest.approx(expected.statistic, rel=1e-10)
        assert p == pytest.approx(expected.pvalue, rel=1e-8)

    def test_approaches_scipy_chisquare_against_reference_proportions_for_a_large_reference(
        self,
    ):
        ref, cur = seeded_counts(7)
        big_ref = ref * 1e6
        expected = stats.chisquare(cur, f_exp=ref / ref.sum() * cur.sum())
        assert chi_square(big_ref, cur)[0] == pytest.approx(expected.statistic, rel=1e-4)

    def test_identical_proportions_give_zero_and_p_one(self):
        assert chi_square([100, 200, 300], [10, 20, 30]) == pytest.approx((0.0, 1.0))

    def test_a_category_absent_from_the_reference_adds_n_ref_c_over_n_cur(self):
        stat, p = chi_square([500, 500, 0], [50, 45, 5])
        base = (100 * 500 - 1000 * 50) ** 2 / 550 + (100 * 500 - 1000 * 45) ** 2 / 545
        assert stat == pytest.approx(base / (1000 * 100) + 1000 * 5 / 100)
        assert p < 1e-10

    def test_categories_empty_on_both_sides_do_not_count_as_degrees_of_freedom(self):
        assert chi_square([40, 60, 0, 0], [55, 45, 0, 0]) == pytest.approx(
            chi_square([40, 60], [55, 45])
        )

    def test_one_category_only_gives_zero_and_p_one(self):
        assert chi_square([0, 10], [0, 3]) == (0.0, 1.0)

    def test_an_empty_side_gives_nan(self):
        assert all(math.isnan(x) for x in chi_square([1, 2], [0, 0]))


class TestChiSquareGoodnessOfFit:
    @pytest.mark.parametrize("seed", range(20))
    def test_equals_scipy_chisquare_against_reference_proportions(self, seed):
        ref, cur = seeded_counts(seed)
        expected = stats.chisquare(cur, f_exp=ref / ref.sum() * cur.sum())
        stat, p = chi_square_gof(ref, cur)
        assert stat == pytest.approx(expected.statistic, rel=1e-10)
        assert p == pytest.approx(expected.pvalue, rel=1e-8)

    def test_an_unseen_category_gets_half_a_reference_observation(self):
        ref = np.array([500.0, 500.0, 0.5])
        expected = stats.chisquare([50, 45, 5], f_exp=ref / ref.sum() * 100)
        assert chi_square_gof([500, 500, 0], [50, 45, 5]) == pytest.approx(
            (expected.statistic, expected.pvalue)
        )

    def test_a_reference_the_size_of_the_window_over_alarms(self):
        """Why scoring uses the homogeneity test: reference noise counted as drift."""
        alarms = 0
        for seed in SEEDS:
            rng = np.random.default_rng(seed)
            ref, cur = rng.multinomial(1000, CATEGORY_PROBS), rng.multinomial(1000, CATEGORY_PROBS)
            alarms += chi_square_gof(ref, cur)[1] < 0.05
        assert alarms > binomial_bounds(len(SEEDS), 0.05)[1]


class TestJensenShannon:
    @pytest.mark.parametrize("seed", range(20))
    def test_equals_scipy_jensenshannon_base_2_on_proportions(self, seed):
        ref, cur = seeded_counts(seed, low=0)
        expected = jensenshannon(ref / ref.sum(), cur / cur.sum(), base=2)
        assert jensen_shannon(ref, cur) == pytest.approx(expected, rel=1e-12)

    def test_identical_distributions_give_zero(self):
        assert jensen_shannon([3, 6, 9], [1, 2, 3]) == 0.0

    def test_disjoint_supports_give_one(self):
        assert jensen_shannon([5, 5, 0, 0], [0, 0, 1, 9]) == pytest.approx(1.0)

    def test_an_empty_side_gives_nan(self):
        assert math.isnan(jensen_shannon([0, 0], [1, 1]))


class TestKsExact:
    @pytest.mark.parametrize("seed", range(10))
    def test_equals_scipy_ks_2samp_with_nans_dropped(self, seed):
        rng = np.random.default_rng(seed)
        ref, cur = rng.normal(size=300), rng.normal(0.2, 1.1, size=200)
        ref[::17] = np.nan
        expected = stats.ks_2samp(ref[~np.isnan(ref)], cur)
        assert ks_exact(ref, cur) == (expected.statistic, expected.pvalue)

    def test_an_empty_side_gives_nan(self):
        assert all(math.isnan(x) for x in ks_exact([np.nan], [1.0, 2.0]))


class TestKsBinned:
    @pytest.mark.parametrize("bins", [10, 20, 50])
    def test_the_exact_statistic_lies_within_bound_above_the_binned_one(self, bins):
        for seed in range(100):
            rng = np.random.default_rng(seed)
            ref = rng.normal(size=1000)
            cur = rng.normal(
                rng.uniform(-0.5, 0.5), rng.uniform(0.7, 1.5), size=rng.integers(50, 2000)
            )
            exact = stats.ks_2samp(ref, cur).statistic
            result = ks_binned(*quantile_binned(ref, cur, bins))
            assert result.statistic <= exact + 1e-12
            assert exact <= result.statistic + result.bound + 1e-12

    @pytest.mark.filterwarnings("ignore:ks_2samp. Exact calculation unsuccessful:RuntimeWarning")
    @settings(max_examples=300, deadline=None)
    @given(
        ref=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=200),
        cur=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=200),
        bins=st.integers(1, 50),
    )
    def test_the_bound_holds_on_any_data_and_binning(self, ref, cur, bins):
        ref_a, cur_a = np.array(ref), np.array(cur)
        result = ks_binned(*quantile_binned(ref_a, cur_a, bins))
        exact = stats.ks_2samp(ref_a, cur_a).statistic
        assert result.statistic <= exact + 1e-12
        assert exact <= result.statistic + result.bound + 1e-12

    def test_the_bound_never_exceeds_the_largest_single_bin_mass(self):
        for seed in range(50):
            ref, cur = seeded_counts(seed, low=0)
            largest = max((ref / ref.sum()).max(), (cur / cur.sum()).max())
            assert ks_binned(ref, cur).bound <= largest + 1e-12

    def test_the_p_value_is_the_asymptotic_kolmogorov_law_at_n_eff(self):
        ref, cur = seeded_counts(1)
        result = ks_binned(ref, cur)
        n, m = ref.sum(), cur.sum()
        expected = stats.kstwobign.sf(result.statistic * math.sqrt(n * m / (n + m)))
        assert result.p_value == pytest.approx(expected, rel=1e-10)

    def test_n_ref_effective_replaces_the_reference_total_in_the_p_value_only(self):
        ref, cur = seeded_counts(2)
        scaled = ks_binned(ref / ref.sum(), cur, n_ref_effective=ref.sum())
        assert scaled == pytest.approx(ks_binned(ref, cur))

    def test_identical_distributions_give_zero_and_p_one(self):
        result = ks_binned([10, 20, 30], [10, 20, 30])
        assert (result.statistic, result.p_value) == (0.0, 1.0)
        assert isinstance(result, KsResult)

    def test_an_empty_side_gives_nan(self):
        assert all(math.isnan(x) for x in ks_binned([0, 0], [1, 1]))


class TestWassersteinNormed:
    @pytest.mark.parametrize("seed", range(10))
    def test_equals_scipy_wasserstein_over_the_reference_std(self, seed):
        rng = np.random.default_rng(seed)
        ref, cur = rng.normal(3, 2, size=400), rng.normal(3.5, 2, size=300)
        cur[::11] = np.nan
        kept = cur[~np.isnan(cur)]
        expected = stats.wasserstein_distance(ref, kept) / np.std(ref)
        assert wasserstein_normed(ref, cur) == pytest.approx(expected, rel=1e-12)

    def test_a_constant_reference_divides_by_the_floor(self):
        assert wasserstein_normed([2.0, 2.0], [2.0, 2.5]) == pytest.approx(0.25 / 0.001)

    def test_identical_constants_give_zero(self):
        assert wasserstein_normed([2.0, 2.0], [2.0]) == 0.0

    def test_an_empty_side_gives_nan(self):
        assert math.isnan(wasserstein_normed([], [1.0]))


class TestBenjaminiHochberg:
    @pytest.mark.parametrize("seed", range(20))
    @pytest.mark.parametrize("fdr", [0.01, 0.05, 0.2])
    def test_equals_scipy_false_discovery_control_thresholded(self, seed, fdr):
        rng = np.random.default_rng(seed)
        p = np.concatenate([rng.uniform(size=15), rng.uniform(0, 0.01, size=5)])
        expected = stats.false_discovery_control(p, method="bh") <= fdr
        np.testing.assert_array_equal(benjamini_hochberg(p, fdr), expected)

    def test_nan_is_never_rejected_and_not_counted(self):
        p = np.array([0.001, np.nan, 0.02, np.nan, 0.04])
        known = ~np.isnan(p)
        expected = stats.false_discovery_control(p[known]) <= 0.05
        result = benjamini_hochberg(p, 0.05)
        assert not result[~known].any()
        np.testing.assert_array_equal(result[known], expected)

    def test_all_nan_rejects_nothing(self):
        assert benjamini_hochberg([np.nan, np.nan], 0.05).tolist() == [False, False]

    @pytest.mark.parametrize("fdr", [0.0, 1.0, -0.1])
    def test_fdr_outside_zero_one_is_refused(self, fdr):
        with pytest.raises(ValueError, match="fdr"):
            benjamini_hochberg([0.1], fdr)

    def test_p_values_outside_zero_one_are_refused(self):
        with pytest.raises(ValueError, match="p-values"):
            benjamini_hochberg([0.1, 1.5], 0.05)


class TestNoDriftBehaviour:
    """n = 1000 per side, 200 seeds: alarms at p < 0.05 stay within binomial bounds."""

    def p_values(self, test) -> np.ndarray:
        return np.array([test(np.random.default_rng(seed)) for seed in SEEDS])

    def test_chi_square_alarms_at_the_nominal_rate_with_uniform_p_values(self):
        p = self.p_values(
            lambda rng: chi_square(
                rng.multinomial(1000, CATEGORY_PROBS), rng.multinomial(1000, CATEGORY_PROBS)
            )[1]
        )
        low, high = binomial_bounds(len(SEEDS), 0.05)
        assert low <= (p < 0.05).sum() <= high
        assert stats.kstest(p, "uniform").pvalue > 0.001

    def test_ks_exact_alarms_at_the_nominal_rate_with_uniform_p_values(self):
        p = self.p_values(lambda rng: ks_exact(rng.normal(size=1000), rng.normal(size=1000))[1])
        low, high = binomial_bounds(len(SEEDS), 0.05)
        assert low <= (p < 0.05).sum() <= high
        assert stats.kstest(p, "uniform").pvalue > 0.001

    @pytest.mark.parametrize("bins", [10, 20, 50])
    def test_ks_binned_alarms_no_more_than_the_nominal_rate(self, bins):
        """Conservative by construction: its statistic is a lower bound of the exact one."""
        p = self.p_values(
            lambda rng: (
                ks_binned(
                    *quantile_binned(rng.normal(size=1000), rng.normal(size=1000), bins)
                ).p_value
            )
        )
        assert (p < 0.05).sum() <= binomial_bounds(len(SEEDS), 0.05)[1]

    def test_a_shift_of_half_a_standard_deviation_is_detected_by_every_test(self):
        for seed in range(20):
            rng = np.random.default_rng(seed)
            ref, cur = rng.normal(size=1000), rng.normal(0.5, 1, size=1000)
            assert ks_exact(ref, cur)[1] < 0.05
            ref_counts, cur_counts = quantile_binned(ref, cur, 10)
            assert ks_binned(ref_counts, cur_counts).p_value < 0.05
            assert chi_square(ref_counts, cur_counts)[1] < 0.05
            assert psi(ref_counts, cur_counts) > 0.1
            assert wasserstein_normed(ref, cur) > 0.1
