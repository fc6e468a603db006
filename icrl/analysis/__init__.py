"""Analysis of runs, apart from training: nothing here is imported by `icrl.train`.

- `stats`: statistics over seeds, checkpoints and trials (t intervals and tests, verdicts, curves).
- `compare`: evaluation files A minus B, trial by trial on the same tasks (`icrl compare`).
- `select`: the best kept checkpoint on validation tasks, copied to `checkpoints/best` (`icrl select`).
- `average`: one checkpoint whose weights are the mean of several (`icrl average`).
- `plots`: learning and adaptation curves as PNG (`icrl plot`; imports matplotlib when called).

The package exports the statistics; the other modules are imported by name.
"""

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
