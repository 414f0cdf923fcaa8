"""The true return a sim-to-real comparison reads (expected clicks under the synthetic world's true
preferences) against an exhaustive sum over every click outcome on a tiny world."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rlrec.data import load_movielens
from rlrec.envs.slate import MovieLensSlateVectorEnv
from rlrec.evaluation.slates import expected_clicks_per_step

TINY = "synthetic:n_users=12,n_movies=30,n_ratings=120,seed=3"


def _exhaustive(chances: np.ndarray, click_model: str) -> float:
    """Expected clicks of one slate, summing over all 2^K (attractive, examined) outcomes."""
    size = len(chances)
    examined = 1.0 / np.arange(1, size + 1) if click_model == "pbm" else np.ones(size)
    total = 0.0
    for outcome in itertools.product((0, 1), repeat=size):  # which movies attract
        p = float(np.prod([c if o else 1 - c for c, o in zip(chances, outcome, strict=True)]))
        if click_model == "cascade":
            clicks = 1.0 if any(outcome) else 0.0  # the first attractive one, then the user leaves
        else:
            clicks = float(np.dot(outcome, examined))  # E[examined] per attractive movie
        total += p * clicks
    return total


@pytest.mark.parametrize("click_model", ["hits", "pbm", "cascade"])
def test_true_expected_clicks_equal_the_exhaustive_sum(click_model: str) -> None:
    data = load_movielens(TINY)
    truth = data.truth
    assert truth is not None
    kwargs = {"slate_size": 4, "feedback": "simulated", "click_model": click_model, "hidden_fraction": 0.5}
    n_envs, seed = 5, 7
    # The sessions expected_clicks_per_step will start (same seed): read them from an env of its own.
    env = MovieLensSlateVectorEnv(data, num_envs=n_envs, autoreset_mode="same_step", **kwargs)
    env.reset(seed=seed)
    episodes = env.episodes
    slates = np.argsort(-np.where(episodes.mask, np.arange(30)[None, :] % 7, -1), axis=1)[:, :4]
    expected = 0.0
    for i in range(n_envs):
        preference = truth.preferences(np.array([episodes.users[i]]))[0]
        chances = np.clip((preference[slates[i]] - 3.0) / 2.0, 0.0, 1.0)
        expected += _exhaustive(chances, click_model)
    measured = expected_clicks_per_step(
        lambda obs, eps: slates, data, {**kwargs, "max_episode_steps": 1}, n_envs=n_envs, n_steps=1, seed=seed
    )
    assert measured == pytest.approx(expected / n_envs, rel=1e-9)
