"""Analysis of finished runs: statistics over seeds, checkpoints and trials (`icrl.analysis.stats`)."""

from icrl.analysis.stats import (
    Estimate,
    LineFit,
    TTest,
    Verdict,
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

__all__ = [
    "Estimate",
    "LineFit",
    "TTest",
    "Verdict",
    "bin_means",
    "first_reaching",
    "line_fit",
    "mean_sd",
    "mean_se",
    "paired_differences",
    "paired_t_test",
    "student_t_cdf",
    "student_t_quantile",
    "t_interval",
    "verdict",
    "welch_t_test",
]
