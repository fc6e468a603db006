"""Small statistics for benchmark results: estimates over seeds or checkpoints, t tests, learning curves.

Pure functions on plain sequences of numbers (or metrics rows), no I/O. What exists elsewhere is used, not
repeated: `standard_error` (the SE of a mean, `icrl.train.evaluate`, which scores evaluations with it), and
in `icrl.analysis.compare` `paired_difference` (run A minus run B trial by trial, from evaluation files) and
`summarize_across` (one estimate from several such comparisons).

- `mean_se`, `mean_sd`, `t_interval`: a mean with its standard error, spread or Student-t interval.
- `verdict`: does a quantity measured once per seed (or checkpoint) hold above zero? The rule the recorded
  results use: the mean is above 0 by more than 2 standard errors; the Student-t test beside it.
- `paired_differences`, `paired_t_test`, `welch_t_test`: two arms over seeds, paired or not.
- `student_t_cdf`, `student_t_quantile`: the t distribution itself (no SciPy needed).
- `first_reaching`: the first metrics row whose value reaches a threshold (e.g. env steps to solve).
- `line_fit`, `bin_means`: is a learning curve still rising; a curve as means over bins.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from icrl.train.evaluate import standard_error


@dataclass(frozen=True)
class Estimate:
    """A mean over `n` values with its standard error (sample standard deviation / sqrt(n))."""

    mean: float
    se: float
    n: int


@dataclass(frozen=True)
class Verdict:
    """Whether a mean over `n` values is above zero: `holds` by the 2-SE rule (mean > k * se, k = 2 by
    default), `holds_t` by the one-sided Student-t test at the same level as a two-sided 95% interval
    (mean > t(0.975, n - 1) * se, e.g. 4.30 SE over 3 seeds, 2.78 over 5)."""

    mean: float
    se: float
    n: int
    holds: bool
    holds_t: bool


@dataclass(frozen=True)
class TTest:
    """A two-sample t test: `difference` = mean(a) - mean(b), its standard error, the t statistic, the
    degrees of freedom (not an integer for Welch's test) and the two-sided p-value."""

    difference: float
    se: float
    statistic: float
    dof: float
    p_value: float


@dataclass(frozen=True)
class LineFit:
    """An ordinary least-squares line y = intercept + slope * x, with the slope's standard error."""

    slope: float
    slope_se: float
    intercept: float


def _floats(values: Iterable[float], least: int, what: str = "values") -> list[float]:
    out = [float(v) for v in values]
    if len(out) < least:
        raise ValueError(f"need at least {least} {what}, got {len(out)}")
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"{what} must be finite numbers")
    return out


def mean_se(values: Iterable[float]) -> Estimate:
    """The mean of `values` and its standard error (`icrl.train.evaluate.standard_error`); needs n >= 2."""
    xs = _floats(values, 2)
    return Estimate(mean=math.fsum(xs) / len(xs), se=standard_error(xs), n=len(xs))


def mean_sd(values: Iterable[float], ddof: int = 1) -> tuple[float, float]:
    """The mean and the standard deviation of `values`: sample SD with `ddof=1`, the population SD with
    `ddof=0` (what `benchmarks/popgym_cpu.py` reports over seeds); needs n > ddof."""
    xs = _floats(values, ddof + 1)
    mean = math.fsum(xs) / len(xs)
    return mean, math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - ddof))


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the regularized incomplete beta function (modified Lentz's method)."""
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        for aa in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def _regularized_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), the regularized incomplete beta function, for 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_continued_fraction(a, b, x) / a
    return 1.0 - front * _beta_continued_fraction(b, a, 1.0 - x) / b


def student_t_cdf(t: float, dof: float) -> float:
    """P(T <= t) for Student's t distribution with `dof` > 0 degrees of freedom (any real dof)."""
    if not dof > 0:
        raise ValueError(f"degrees of freedom must be > 0, got {dof}")
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    tail = 0.5 * _regularized_beta(dof / 2.0, 0.5, dof / (dof + t * t))  # P(T > |t|)
    return 1.0 - tail if t > 0 else tail


def student_t_quantile(p: float, dof: float) -> float:
    """The t with P(T <= t) = p, 0 < p < 1: e.g. `student_t_quantile(0.975, 2)` = 4.303, the critical
    value of a two-sided 95% test over 3 values. Found by bisection on `student_t_cdf` to ~1e-12."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if p < 0.5:
        return -student_t_quantile(1.0 - p, dof)
    lo, hi = 0.0, 1.0
    while student_t_cdf(hi, dof) < p:
        lo, hi = hi, 2.0 * hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if student_t_cdf(mid, dof) < p else (lo, mid)
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def t_interval(values: Iterable[float], confidence: float = 0.95) -> tuple[float, float]:
    """The two-sided Student-t confidence interval of the mean of `values` (n - 1 degrees of freedom)."""
    est = mean_se(values)
    half = student_t_quantile(0.5 + confidence / 2.0, est.n - 1) * est.se
    return est.mean - half, est.mean + half


def verdict(values: Iterable[float], k: float = 2.0, confidence: float = 0.95) -> Verdict:
    """Is the mean of `values` (one per seed, or per checkpoint) above zero? `holds`: mean - k * SE > 0;
    `holds_t`: mean - t((1 + confidence) / 2, n - 1) * SE > 0. With no spread at all (SE 0) both hold
    exactly when the mean is positive."""
    est = mean_se(values)
    critical = student_t_quantile(0.5 + confidence / 2.0, est.n - 1)
    return Verdict(
        mean=est.mean,
        se=est.se,
        n=est.n,
        holds=est.mean - k * est.se > 0,
        holds_t=est.mean - critical * est.se > 0,
    )


def paired_differences(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """a[i] - b[i] for two arms measured on the same units (seeds, trials, checkpoints), in order."""
    if len(a) != len(b):
        raise ValueError(f"paired values need the same length, got {len(a)} and {len(b)}")
    return [float(x) - float(y) for x, y in zip(a, b, strict=True)]


def _t_test(difference: float, se: float, dof: float) -> TTest:
    if se == 0.0:
        raise ValueError("the values have no spread (standard error 0): the t statistic is undefined")
    statistic = difference / se
    p_value = 2.0 * (1.0 - student_t_cdf(abs(statistic), dof))
    return TTest(difference=difference, se=se, statistic=statistic, dof=dof, p_value=p_value)


def paired_t_test(a: Sequence[float], b: Sequence[float]) -> TTest:
    """The paired t test of a against b (e.g. two arms of the same training seeds): the mean of the
    differences a[i] - b[i] over its standard error, n - 1 degrees of freedom, two-sided p-value."""
    est = mean_se(paired_differences(a, b))
    return _t_test(est.mean, est.se, est.n - 1)


def welch_t_test(a: Sequence[float], b: Sequence[float]) -> TTest:
    """Welch's unequal-variance t test of mean(a) - mean(b) for independent samples (e.g. arms trained
    on different seeds); Welch-Satterthwaite degrees of freedom; each sample needs at least 2 values."""
    xa, xb = _floats(a, 2, "values in a"), _floats(b, 2, "values in b")
    (mean_a, sd_a), (mean_b, sd_b) = mean_sd(xa), mean_sd(xb)
    va, vb = sd_a**2 / len(xa), sd_b**2 / len(xb)
    if va + vb == 0.0:
        raise ValueError("the values have no spread (standard error 0): the t statistic is undefined")
    dof = (va + vb) ** 2 / (va**2 / (len(xa) - 1) + vb**2 / (len(xb) - 1))
    return _t_test(mean_a - mean_b, math.sqrt(va + vb), dof)


def first_reaching(rows: Iterable[Mapping[str, Any]], key: str, threshold: float) -> Mapping[str, Any] | None:
    """The first row (e.g. of a run's metrics.jsonl, in order) whose `key` is present, not None and
    >= `threshold`; None if no row reaches it. Its `env_steps`, `updates` and `wall_time_s` say when a
    learning curve first got there."""
    for row in rows:
        value = row.get(key)
        if value is not None and value >= threshold:
            return row
    return None


def line_fit(x: Sequence[float], y: Sequence[float]) -> LineFit:
    """Least-squares line through the points (x[i], y[i]) with the usual standard error of the slope,
    sqrt(residual variance / sum((x - mean x)^2)), the residual variance over n - 2; needs n >= 3 and
    two distinct x."""
    xs, ys = _floats(x, 3, "points"), _floats(y, 3, "points")
    if len(xs) != len(ys):
        raise ValueError(f"x and y need the same length, got {len(xs)} and {len(ys)}")
    mx, my = math.fsum(xs) / len(xs), math.fsum(ys) / len(ys)
    sxx = math.fsum((xi - mx) ** 2 for xi in xs)
    if sxx == 0.0:
        raise ValueError("a line needs at least two distinct x values")
    slope = math.fsum((xi - mx) * (yi - my) for xi, yi in zip(xs, ys, strict=True)) / sxx
    intercept = my - slope * mx
    residuals = math.fsum((yi - intercept - slope * xi) ** 2 for xi, yi in zip(xs, ys, strict=True))
    return LineFit(slope=slope, slope_se=math.sqrt(residuals / (len(xs) - 2) / sxx), intercept=intercept)


def bin_means(x: Sequence[float], y: Sequence[float], edges: Sequence[float]) -> list[float | None]:
    """The mean of the y whose x falls in each bin (edges[i], edges[i + 1]] (a learning curve per bin of
    env steps or updates); None for a bin with no point."""
    if len(x) != len(y):
        raise ValueError(f"x and y need the same length, got {len(x)} and {len(y)}")
    bins = list(zip(edges[:-1], edges[1:], strict=True))
    if not bins or any(hi <= lo for lo, hi in bins):
        raise ValueError("edges must be at least two increasing values")
    out: list[float | None] = []
    for lo, hi in bins:
        inside = [float(yi) for xi, yi in zip(x, y, strict=True) if lo < xi <= hi]
        out.append(math.fsum(inside) / len(inside) if inside else None)
    return out
