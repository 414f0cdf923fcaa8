"""Policies that never pick a movie the observation already shows (SB3's ``policy`` argument).

In ``rlrec/MovieLensSession-v0`` with ``show_misses=True`` an observation is non-zero exactly on
the movies that may not be recommended any more: those visible at reset, the hits found and the
misses tried. Masking those movies when acting is then the env's own ``action_masks()``, read from
the observation: what MaskablePPO does for PPO, available to the value-based learners (DQN and
QR-DQN have no masking in SB3) without any env access. Without it a greedy agent keeps
recommending the same miss for the rest of a session, since a miss changes nothing it sees.

Only acting is masked. The loss is SB3's own: with ``gamma=0`` (the session recipes) the target is
the reward and no maximum over next actions is taken.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Literal

import gymnasium as gym
import numpy as np
import torch
from sb3_contrib.qrdqn.policies import QRDQNPolicy
from stable_baselines3.dqn.policies import DQNPolicy
from torch import nn

from rlrec.nn.torch_layers import SparseInputExtractor

__all__ = ["InitName", "QNetwork", "UnseenDQNPolicy", "UnseenQRDQNPolicy", "mask_seen"]

InitName = Literal["linear", "embedding"]


def mask_seen(scores: torch.Tensor, observation: torch.Tensor) -> torch.Tensor:
    """``scores`` with ``-inf`` where ``observation`` is non-zero (a row with nothing left keeps all)."""
    seen = observation.reshape(scores.shape) != 0
    seen &= ~seen.all(dim=1, keepdim=True)
    return scores.masked_fill(seen, -torch.inf)


class UnseenDQNPolicy(DQNPolicy):
    """SB3's ``DQNPolicy`` (``MlpPolicy``) whose greedy action skips movies the observation shows.

    Use it as ``DQN(UnseenDQNPolicy, env, ...)`` or, in a zoo YAML, ``policy: rlrec.nn.UnseenDQNPolicy``.
    The observation must have one entry per action (rlrec's envs do).
    """

    def _predict(self, observation: torch.Tensor, deterministic: bool = True) -> torch.Tensor:  # type: ignore[override]
        q_values = self.q_net(observation)
        return mask_seen(q_values, observation).argmax(dim=1).reshape(-1)


class UnseenQRDQNPolicy(QRDQNPolicy):
    """sb3-contrib's ``QRDQNPolicy`` with the greedy action of :class:`UnseenDQNPolicy`."""

    def _predict(self, observation: torch.Tensor, deterministic: bool = True) -> torch.Tensor:  # type: ignore[override]
        q_values = self.quantile_net(observation).mean(dim=1)
        return mask_seen(q_values, observation).argmax(dim=1).reshape(-1)


class QNetwork(nn.Module):
    """``obs -> Q(obs, ·)``: a :class:`SparseInputExtractor` of ``net_arch[0]`` units (ReLU,
    optional dropout), ``Linear + ReLU`` for the other ``net_arch`` entries, a linear head.

    The default ``net_arch=[64]`` is the seed notebook's network, Linear(obs, 64) -> ReLU ->
    Linear(64, n). ``init="linear"`` draws the first layer like ``nn.Linear`` does for dense inputs
    (std ``1/sqrt(3 obs_dim)``); ``"embedding"`` draws it ``N(0, 1/width)`` and zeroes the head's
    biases, for unit-norm sparse inputs (``input_normalization="sqrt_count"``), whose hidden units
    would otherwise start ~``sqrt(obs_dim / width)`` times smaller.
    """

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        n_actions: int,
        net_arch: Sequence[int],
        input_normalization: str | None = None,
        dropout: float = 0.0,
        init: InitName = "linear",
    ) -> None:
        super().__init__()
        obs_dim = int(np.prod(observation_space.shape))
        layers: list[nn.Module] = []
        if net_arch:
            std = None if init == "embedding" else 1.0 / math.sqrt(3.0 * obs_dim)
            flat = gym.spaces.Box(-np.inf, np.inf, shape=(obs_dim,), dtype=np.float32)
            self.features: nn.Module = SparseInputExtractor(
                flat, int(net_arch[0]), input_normalization, dropout, init_std=std
            )
        else:
            self.features = nn.Flatten()
        for width_in, width_out in itertools.pairwise(net_arch):
            layers += [nn.Linear(width_in, width_out), nn.ReLU()] + ([nn.Dropout(dropout)] if dropout else [])
        self.hidden = nn.Sequential(*layers)
        self.head = nn.Linear(int(net_arch[-1]) if net_arch else obs_dim, n_actions)
        if init == "embedding":
            nn.init.zeros_(self.head.bias)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.hidden(self.features(obs)))

    def q_of(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``Q(obs_i, actions_i)``, equal to ``forward(obs).gather(1, actions)`` without the other
        ``n_actions - 1`` outputs."""
        features = self.hidden(self.features(obs))
        return (features * self.head.weight[actions]).sum(dim=1) + self.head.bias[actions]
