"""Paired differences against values worked out by hand, and the benchmark's report of them."""

from __future__ import annotations

import numpy as np
import pytest

from rlrec.evaluation.significance import paired_difference


def test_a_constant_gain_is_exact_and_significant() -> None:
    b = np.linspace(0.0, 0.9, 10)
    result = paired_difference(b + 0.1, b)
    assert result.difference == pytest.approx(0.1)
    # Every resample of a constant difference has mean 0.1: the interval has no width.
    assert result.low == pytest.approx(0.1) and result.high == pytest.approx(0.1)
    # Ten positive differences: the exact two-sided signed-rank p-value is 2 / 2**10.
    assert result.p_value == pytest.approx(2 / 2**10)
    assert not result.tie


def test_equal_scores_are_a_tie_and_noise_is_one_too() -> None:
    same = paired_difference(np.arange(5.0), np.arange(5.0))
    assert (same.difference, same.low, same.high, same.p_value, same.tie) == (0.0, 0.0, 0.0, 1.0, True)
    rng = np.random.default_rng(0)
    a = rng.random(400)
    noisy = paired_difference(a, a + rng.normal(0.0, 0.1, 400))
    assert noisy.low < 0.0 < noisy.high and noisy.tie


def test_the_interval_is_the_bootstrap_of_the_mean_difference() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.random(300), rng.random(300) * 0.8
    result = paired_difference(a, b, n_resamples=4_000, seed=3)
    # An independent bootstrap by hand: resample users, average their differences.
    picks = np.random.default_rng(7).integers(0, 300, size=(4_000, 300))
    means = (a - b)[picks].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    assert result.low == pytest.approx(low, abs=0.004) and result.high == pytest.approx(high, abs=0.004)
    assert result.difference == pytest.approx(float(np.mean(a - b)))


def test_refuses_unpaired_input() -> None:
    with pytest.raises(ValueError, match="same length"):
        paired_difference(np.zeros(3), np.zeros(4))
