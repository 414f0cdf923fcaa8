"""One score per movie for each user, from any learner: what evaluation ranks.

* ``QLearningAgent``: the Q-table rows of the users' states;
* ``DQNAgent``: its Q-values;
* SB3 ``DQN``: ``model.q_net``; sb3-contrib ``QRDQN``: the mean over quantiles of
  ``model.quantile_net`` (the expected return, what QR-DQN acts on);
* SB3 ``PPO`` / ``A2C`` and sb3-contrib ``MaskablePPO``: the action logits of the policy
  (``policy.get_distribution(obs).distribution.logits``, unmasked), a monotone image of the
  action probabilities.

Batched by ``SCORE_CHUNK`` rows under ``torch.no_grad``, returned on the CPU as float32.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rlrec.agents.dqn import DQNAgent
from rlrec.agents.tabular_q import QLearningAgent

__all__ = ["SCORE_CHUNK", "score_movies"]

#: Observations per forward pass: bounds the memory of ``(chunk, n_movies)`` intermediates.
SCORE_CHUNK = 1024


def score_movies(model: Any, observations: np.ndarray, states: np.ndarray | None = None) -> np.ndarray:
    """Scores ``(B, n_movies)`` float32 of every movie for each observation (higher = better).

    :param model: a ``QLearningAgent``, ``DQNAgent``, SB3 ``DQN`` / ``PPO`` / ``A2C`` or
        sb3-contrib ``QRDQN`` / ``MaskablePPO``.
    :param observations: ``(B, *obs_shape)`` observations (``env.unwrapped.observations(states)``).
    :param states: the compact states of those observations (user indices for MovieLens). Used
        by ``QLearningAgent`` to read its table directly; without them it maps observations to
        states through their hashes. Other models ignore them.
    :raises TypeError: for a model of another kind.
    """
    if isinstance(model, QLearningAgent):
        if states is None:
            states = model.observations_to_states(np.asarray(observations))
        return model.q_table[np.asarray(states, dtype=np.int64)].astype(np.float32, copy=True)
    if isinstance(model, DQNAgent):
        return model.q_values(np.asarray(observations).reshape(-1, model.obs_dim))
    return _score_sb3(model, np.asarray(observations))


def _score_sb3(model: Any, observations: np.ndarray) -> np.ndarray:
    policy = getattr(model, "policy", None)
    if policy is None:
        raise TypeError(f"score_movies: cannot score a {type(model).__name__}")
    if hasattr(model, "quantile_net"):  # sb3-contrib QRDQN: (B, n_quantiles, n_actions)
        score = lambda obs: model.quantile_net(obs).mean(dim=1)  # noqa: E731
    elif hasattr(model, "q_net"):  # SB3 DQN
        score = model.q_net
    elif hasattr(policy, "movie_scores"):  # rlrec.nn catalogue policies: the head, unmasked
        score = policy.movie_scores
    elif hasattr(policy, "get_distribution"):  # PPO, A2C, MaskablePPO
        score = lambda obs: policy.get_distribution(obs).distribution.logits  # noqa: E731
    else:
        raise TypeError(f"score_movies: {type(model).__name__} has no Q-network nor action distribution")

    obs_shape = tuple(policy.observation_space.shape)
    batch = observations.reshape(-1, *obs_shape)
    chunks = []
    was_training = policy.training
    policy.set_training_mode(False)
    try:
        with torch.no_grad():
            for start in range(0, len(batch), SCORE_CHUNK):
                tensor, _ = policy.obs_to_tensor(batch[start : start + SCORE_CHUNK])
                chunks.append(score(tensor).float().cpu().numpy())
    finally:
        policy.set_training_mode(was_training)
    if not chunks:
        return np.zeros((0, int(policy.action_space.n)), dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32, copy=False)
