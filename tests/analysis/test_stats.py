"""icrl.analysis.stats on cases worked out by hand (closed forms where the t distribution has them)."""

from __future__ import annotations

import math

import pytest

from icrl.analysis.stats import (
    bin_means,
    first_reaching,
    line_fit,
    mean_sd,
    mean_se,
    paired_differences,
    paired_t_test,
    student_t_cdf,
    student_t_quantile,
    t_interval,
    verdict,
    welch_t_test,
)

# 1, 2, 3, 4: mean 2.5, squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5, sample SD sqrt(5 / 3),
# SE sqrt(5 / 3) / 2; population SD sqrt(5 / 4).
FOUR = [1.0, 2.0, 3.0, 4.0]
SE_FOUR = math.sqrt(5 / 3) / 2


def test_mean_se_of_four_values():
    est = mean_se(FOUR)
    assert est.n == 4
    assert est.mean == pytest.approx(2.5)
    assert est.se == pytest.approx(SE_FOUR)  # 0.6455


def test_mean_se_needs_two_finite_values():
    with pytest.raises(ValueError, match="at least 2"):
        mean_se([1.0])
    with pytest.raises(ValueError, match="finite"):
        mean_se([1.0, float("nan")])


def test_mean_sd_sample_and_population():
    assert mean_sd(FOUR) == pytest.approx((2.5, math.sqrt(5 / 3)))
    assert mean_sd(FOUR, ddof=0) == pytest.approx((2.5, math.sqrt(5 / 4)))
    assert mean_sd([7.0], ddof=0) == (7.0, 0.0)  # one seed: no spread, as popgym_cpu.py prints it


def test_t_cdf_closed_forms():
    # 1 degree of freedom is the Cauchy distribution: P(T <= t) = 1/2 + atan(t) / pi.
    assert student_t_cdf(1.0, 1) == pytest.approx(0.75, abs=1e-12)
    assert student_t_cdf(-1.0, 1) == pytest.approx(0.25, abs=1e-12)
    # 2 degrees of freedom: P(T <= t) = 1/2 + t / (2 sqrt(2 + t^2)); at t = 2: 1/2 + 1 / sqrt(6).
    assert student_t_cdf(2.0, 2) == pytest.approx(0.5 + 1 / math.sqrt(6), abs=1e-12)
    assert student_t_cdf(0.0, 7) == pytest.approx(0.5, abs=1e-12)
    assert student_t_cdf(math.inf, 3) == 1.0 and student_t_cdf(-math.inf, 3) == 0.0


def test_t_quantiles_closed_forms_and_table():
    # dof 1: t = tan(pi (p - 1/2)); dof 2: t = (2p - 1) / sqrt(2 p (1 - p)).
    assert student_t_quantile(0.975, 1) == pytest.approx(math.tan(math.pi * 0.475), rel=1e-9)  # 12.706
    assert student_t_quantile(0.975, 2) == pytest.approx(0.95 / math.sqrt(2 * 0.975 * 0.025), rel=1e-9)
    # The critical values the recorded verdicts quote: 4.30 SE over 3 values, 2.78 over 5, 2.57 over 6.
    assert student_t_quantile(0.975, 2) == pytest.approx(4.303, abs=5e-4)
    assert student_t_quantile(0.975, 4) == pytest.approx(2.776, abs=5e-4)
    assert student_t_quantile(0.975, 5) == pytest.approx(2.571, abs=5e-4)
    assert student_t_quantile(0.025, 2) == pytest.approx(-student_t_quantile(0.975, 2))
    assert student_t_quantile(0.5, 9) == pytest.approx(0.0, abs=1e-9)


def test_t_quantile_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        student_t_quantile(1.0, 3)
    with pytest.raises(ValueError, match="degrees of freedom"):
        student_t_cdf(1.0, 0)


def test_t_interval_of_four_values():
    # 2.5 -/+ t(0.975, 3) * SE, t(0.975, 3) = 3.18245.
    low, high = t_interval(FOUR)
    assert low == pytest.approx(2.5 - 3.182446 * SE_FOUR, abs=1e-5)
    assert high == pytest.approx(2.5 + 3.182446 * SE_FOUR, abs=1e-5)


def test_verdict_of_three_seeds():
    # The relabelling verdict's per-seed differences: mean 0.8367, SE 0.0533: above 2 SE and above 4.30 SE.
    row = verdict([0.89, 0.89, 0.73])
    assert (row.mean, row.se, row.n) == pytest.approx((0.836667, 0.053333, 3), abs=1e-6)
    assert row.holds and row.holds_t


def test_verdict_two_se_without_t():
    # 0.5, 1.5, 2.5: mean 1.5, SE 1 / sqrt(3) = 0.577: 2.6 SE above zero, short of t(0.975, 2) = 4.30.
    row = verdict([0.5, 1.5, 2.5])
    assert row.holds and not row.holds_t
    assert not verdict([0.5, 1.5, 2.5], k=3.0).holds
    assert not verdict([-1.0, 0.5, 0.8]).holds  # mean 0.1, SE 0.56


def test_verdict_without_spread():
    row = verdict([2.0, 2.0])
    assert row.se == 0.0 and row.holds and row.holds_t
    assert not verdict([0.0, 0.0]).holds


def test_paired_differences_keep_order_and_check_length():
    assert paired_differences([3, 5, 4], [1, 2, 3]) == [2.0, 3.0, 1.0]
    with pytest.raises(ValueError, match="same length"):
        paired_differences([1, 2], [1])


def test_paired_t_test_by_hand():
    # Differences 2, 3, 1: mean 2, SD 1, SE 1/sqrt(3), t = 2 sqrt(3) = 3.4641 on 2 degrees of freedom;
    # two-sided p = 1 - t / sqrt(2 + t^2) = 1 - sqrt(12 / 14) = 0.07418.
    test = paired_t_test([3, 5, 4], [1, 2, 3])
    assert test.difference == pytest.approx(2.0)
    assert test.se == pytest.approx(1 / math.sqrt(3))
    assert test.statistic == pytest.approx(2 * math.sqrt(3))
    assert test.dof == 2
    assert test.p_value == pytest.approx(1 - math.sqrt(12 / 14), abs=1e-12)


def test_paired_t_test_without_spread_is_an_error():
    with pytest.raises(ValueError, match="no spread"):
        paired_t_test([2, 3, 4], [1, 2, 3])


def test_welch_t_test_by_hand():
    # a: mean 2, variance 1; b: mean 7, variance 20/3. SE^2 = 1/3 + 5/3 = 2, t = -5 / sqrt(2) = -3.5355;
    # Welch-Satterthwaite: 2^2 / ((1/3)^2 / 2 + (5/3)^2 / 3) = 4 / (1/18 + 25/27) = 4.07547.
    test = welch_t_test([1, 2, 3], [4, 6, 8, 10])
    assert test.difference == pytest.approx(-5.0)
    assert test.se == pytest.approx(math.sqrt(2))
    assert test.statistic == pytest.approx(-5 / math.sqrt(2))
    assert test.dof == pytest.approx(4 / (1 / 18 + 25 / 27))
    assert 0.01 < test.p_value < 0.05  # |t| 3.54 is between t(0.975) = 2.76 and t(0.995) = 4.54 at 4.08 dof


def test_welch_t_test_with_exact_two_degrees_of_freedom():
    # b has no spread: dof = (1/3)^2 / ((1/3)^2 / 2) = 2 and t = 2 / (1/sqrt(3)) = 3.4641, as in the paired
    # case above, so the p-value has the same closed form.
    test = welch_t_test([1, 2, 3], [0, 0, 0])
    assert test.dof == pytest.approx(2.0)
    assert test.p_value == pytest.approx(1 - math.sqrt(12 / 14), abs=1e-9)


def test_welch_t_test_needs_two_values_per_arm_and_some_spread():
    with pytest.raises(ValueError, match="values in b"):
        welch_t_test([1, 2, 3], [4])
    with pytest.raises(ValueError, match="no spread"):
        welch_t_test([1, 1], [2, 2])


def test_first_reaching_skips_rows_without_the_metric():
    rows = [
        {"env_steps": 100, "eval/return": 0.2},
        {"env_steps": 150},  # a training row: no evaluation
        {"env_steps": 200, "eval/return": None},
        {"env_steps": 300, "eval/return": 0.96},
        {"env_steps": 400, "eval/return": 0.99},
    ]
    assert first_reaching(rows, "eval/return", 0.95)["env_steps"] == 300
    assert first_reaching(rows, "eval/return", 0.96)["env_steps"] == 300  # >=, not >
    assert first_reaching(rows, "eval/return", 0.995) is None
    assert first_reaching(iter(rows), "eval/return", 0.1)["env_steps"] == 100  # any iterable


def test_line_fit_by_hand():
    # x 0..3, y 1, 3, 2, 5: Sxx = 5, Sxy = 5.5, slope 1.1, intercept 1.1; residuals -0.1, 0.8, -1.3, 0.6
    # (sum of squares 2.7), residual variance 2.7 / 2, slope SE sqrt(1.35 / 5) = 0.5196.
    fit = line_fit([0, 1, 2, 3], [1, 3, 2, 5])
    assert fit.slope == pytest.approx(1.1)
    assert fit.intercept == pytest.approx(1.1)
    assert fit.slope_se == pytest.approx(math.sqrt(0.27))


def test_line_fit_of_an_exact_line_and_bad_input():
    fit = line_fit([1, 2, 3, 4], [5, 3, 1, -1])
    assert (fit.slope, fit.intercept, fit.slope_se) == pytest.approx((-2.0, 7.0, 0.0))
    with pytest.raises(ValueError, match="distinct"):
        line_fit([1, 1, 1], [1, 2, 3])
    with pytest.raises(ValueError, match="at least 3"):
        line_fit([1, 2], [1, 2])


def test_bin_means_half_open_bins():
    x, y = [1, 2, 3, 4, 5], [10, 20, 30, 40, 50]
    # (0, 2] holds x 1 and 2, (2, 4] x 3 and 4, (4, 6] x 5, (6, 8] nothing.
    assert bin_means(x, y, [0, 2, 4, 6, 8]) == [15.0, 35.0, 50.0, None]
    assert bin_means(x, y, [1, 5]) == [35.0]  # x = 1 is outside (1, 5]
    with pytest.raises(ValueError, match="increasing"):
        bin_means(x, y, [0, 0, 1])
