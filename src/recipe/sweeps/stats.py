"""Is a difference between two configurations larger than the seed noise? Welch's t-test, said in words."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

ALPHA = 0.05  # the significance level of the sentences


@dataclass
class Summary:
    """n, mean and sample standard deviation (``nan`` below two values) of a list of numbers."""

    n: int
    mean: float
    std: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        if not values:
            return cls(0, math.nan, math.nan)
        return cls(len(values), statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else math.nan)


def significance(name: str, values: Sequence[float], best_name: str, best_values: Sequence[float]) -> str:
    """One sentence comparing ``values`` with ``best_values``: the difference of the means, the half-width of its
    95% confidence interval, and whether Welch's t-test (unequal variances) finds it significant at ``ALPHA``.

    ``sgd vs adamw: -0.0040 ± 0.0060 over 3 vs 3 runs (p=0.43): not significant, within the seed noise``
    """
    diff = statistics.fmean(values) - statistics.fmean(best_values)
    head = f"{name} vs {best_name}: {diff:+.4g}"
    runs = f"{len(values)} vs {len(best_values)} runs"
    if min(len(values), len(best_values)) < 2:
        return f"{head} over {runs}: not tested (the t-test needs at least 2 seeds of each)"
    if statistics.variance(values) == 0 and statistics.variance(best_values) == 0:
        return f"{head} over {runs}: every seed gave the same value, no noise to test against"
    result = stats.ttest_ind(values, best_values, equal_var=False)
    interval = result.confidence_interval(1 - ALPHA)
    half_width = (interval.high - interval.low) / 2
    verdict = f"significant at {ALPHA:.0%}" if result.pvalue < ALPHA else "not significant, within the seed noise"
    return f"{head} ± {half_width:.2g} over {runs} (p={result.pvalue:.2g}): {verdict}"
