"""Slates judged by their expected clicks: the slate env's user model in closed form.

``expected_clicks_per_step(policy, data, env_kwargs)`` rolls ``rlrec/MovieLensSlate-v0`` with a
slate policy and averages, over every step, the expected number of clicks of the slate it showed
(:meth:`rlrec.envs.slate.SlateEpisodes.expected_clicks`: exact under the user model, no click
noise), so two policies are compared on the same sessions (the same seed) without sampling error
in the clicks. :func:`popularity_slates` is the reference: the most rated movies the session may
still show.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium
import numpy as np

from rlrec.envs import SLATE_ID, register_envs

__all__ = ["SlatePolicyFn", "expected_clicks_per_step", "model_slates", "popularity_slates"]

#: ``policy(observations, episodes) -> (n_envs, slate_size)`` movie indices.
SlatePolicyFn = Callable[[np.ndarray, Any], np.ndarray]


def popularity_slates(counts: np.ndarray, slate_size: int) -> SlatePolicyFn:
    """The ``slate_size`` movies with the most ratings (``counts``) among those each session allows."""
    counts = np.asarray(counts, dtype=np.float64)

    def policy(observations: np.ndarray, episodes: Any) -> np.ndarray:
        scores = np.where(episodes.mask, counts, -np.inf)
        return np.argsort(-scores, axis=1, kind="stable")[:, :slate_size]

    return policy


def model_slates(model: Any) -> SlatePolicyFn:
    """A trained model's deterministic slates (SB3's ``predict``; ``SlateQAgent`` too)."""

    def policy(observations: np.ndarray, episodes: Any) -> np.ndarray:
        return np.asarray(model.predict(observations, deterministic=True)[0])

    return policy


def expected_clicks_per_step(
    policy: SlatePolicyFn,
    data: Any,
    env_kwargs: Mapping[str, Any] | None = None,
    n_envs: int = 64,
    n_steps: int = 20,
    seed: int = 0,
) -> float:
    """Mean expected clicks of ``policy``'s slates over ``n_envs x n_steps`` steps.

    :param data: the dataset the sessions are drawn from (the TRAIN part when the policy was
        trained on it).
    :param env_kwargs: ``MovieLensSlate-v0`` arguments (``max_episode_steps`` included).
    :param seed: the sessions' seed: the same seed gives every policy the same sessions to start.
    """
    register_envs()

    env = gymnasium.make_vec(
        SLATE_ID, num_envs=n_envs, vectorization_mode="vector_entry_point", autoreset_mode="same_step",
        data=data, **dict(env_kwargs or {}),
    )  # fmt: skip
    episodes = env.unwrapped.episodes  # type: ignore[attr-defined]
    observations, _ = env.reset(seed=seed)
    total = 0.0
    for _ in range(n_steps):
        slates = np.asarray(policy(np.array(observations), episodes)).reshape(n_envs, -1)
        total += sum(episodes.expected_clicks(i, slates[i]) for i in range(n_envs))
        observations, *_ = env.step(slates.astype(np.int64))
    env.close()
    return total / (n_envs * n_steps)
