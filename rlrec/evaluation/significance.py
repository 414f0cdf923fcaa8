"""Paired significance of a difference in per-user NDCG: is one model better than another, or a tie?

Both models are ranked for the same users under the same split, so their per-user scores pair
up. :func:`paired_difference` gives the mean difference, a paired bootstrap confidence interval
(SciPy's ``bootstrap(paired=True)``, percentile method) and the Wilcoxon signed-rank p-value
(SciPy's ``wilcoxon``). A difference whose interval holds 0 is called a tie: for an interval
centred on it, the difference is smaller than the interval's half-width.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["PairedDifference", "paired_difference"]


@dataclass(frozen=True)
class PairedDifference:
    """``mean(a - b)`` over paired users, its ``confidence`` interval, and the Wilcoxon p-value.

    :param difference: mean per-user difference ``a - b``.
    :param low: lower end of the bootstrap interval.
    :param high: upper end.
    :param p_value: two-sided Wilcoxon signed-rank p-value (1.0 when every difference is 0).
    :param n_users: number of paired users.
    """

    difference: float
    low: float
    high: float
    p_value: float
    n_users: int

    @property
    def tie(self) -> bool:
        """The interval holds 0: the difference is within the interval's half-width of nothing."""
        return self.low <= 0.0 <= self.high

    def describe(self) -> str:
        """``+0.0123 [+0.0040, +0.0201], p=0.003`` and ``(tie)`` when it is one."""
        text = f"{self.difference:+.4f} [{self.low:+.4f}, {self.high:+.4f}], p={self.p_value:.2g}"
        return f"{text} (tie)" if self.tie else text


def paired_difference(
    a: np.ndarray, b: np.ndarray, confidence: float = 0.95, n_resamples: int = 9_999, seed: int = 0
) -> PairedDifference:
    """Compare per-user scores ``a`` and ``b`` of the same users, in the same order.

    :param confidence: of the bootstrap interval; default 0.95.
    :param n_resamples: bootstrap resamples; default 9,999 (SciPy's).
    :param seed: of the resampling.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(
            f"paired_difference: two 1-D arrays of the same length >= 2, got {a.shape}, {b.shape}"
        )
    differences = a - b
    if not differences.any():
        return PairedDifference(0.0, 0.0, 0.0, 1.0, len(a))
    interval = stats.bootstrap(
        (a, b), lambda x, y, axis: np.mean(x - y, axis=axis), paired=True, vectorized=True,
        confidence_level=confidence, n_resamples=n_resamples, method="percentile",
        random_state=np.random.default_rng(seed),
    ).confidence_interval  # fmt: skip
    p_value = float(stats.wilcoxon(a, b).pvalue)
    return PairedDifference(
        float(differences.mean()), float(interval.low), float(interval.high), p_value, len(a)
    )
