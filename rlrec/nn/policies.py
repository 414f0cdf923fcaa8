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
from stable_baselines3.common.distributions import CategoricalDistribution, Distribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.dqn.policies import DQNPolicy
from torch import nn

from rlrec.nn.torch_layers import SparseInputExtractor

__all__ = [
    "InitName",
    "QNetwork",
    "SlateDistribution",
    "SlatePolicy",
    "UnseenDQNPolicy",
    "UnseenQRDQNPolicy",
    "mask_seen",
]

InitName = Literal["linear", "embedding"]


def mask_seen(scores: torch.Tensor, observation: torch.Tensor) -> torch.Tensor:
    """``scores`` with ``-inf`` on the movies ``observation`` shows (a row with nothing left keeps all).

    A catalogue-wide observation shows a movie where its entry is non-zero; a sequence observation
    (``observation="sequence"``, ``(batch, 2, L)``) shows the movies of its row 0 (``index + 1``,
    0 the padding).
    """
    if observation.dim() == 3 and observation.shape[1] == 2 and scores.shape[1] != 2 * observation.shape[2]:
        movies = observation[:, 0].long()
        seen = torch.zeros((len(scores), scores.shape[1] + 1), dtype=torch.bool, device=scores.device)
        seen = seen.scatter_(1, movies, True)[:, 1:]
    else:
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

    ``features_extractor`` replaces the first layer with any SB3 features extractor (e.g.
    :class:`~rlrec.nn.GRUSequenceExtractor` over ``observation="sequence"``): observations are
    then read in the space's shape, and every ``net_arch`` entry is a ``Linear + ReLU`` after it.
    """

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        n_actions: int,
        net_arch: Sequence[int],
        input_normalization: str | None = None,
        dropout: float = 0.0,
        init: InitName = "linear",
        features_extractor: BaseFeaturesExtractor | None = None,
    ) -> None:
        super().__init__()
        obs_dim = int(np.prod(observation_space.shape))
        self.input_shape: tuple[int, ...] = (obs_dim,)
        layers: list[nn.Module] = []
        self.features: nn.Module
        if features_extractor is not None:
            self.input_shape = tuple(observation_space.shape or (obs_dim,))
            self.features = features_extractor
            net_arch = [features_extractor.features_dim, *net_arch]
        elif net_arch:
            std = None if init == "embedding" else 1.0 / math.sqrt(3.0 * obs_dim)
            flat = gym.spaces.Box(-np.inf, np.inf, shape=(obs_dim,), dtype=np.float32)
            self.features = SparseInputExtractor(
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

    def state_features(self, obs: torch.Tensor) -> torch.Tensor:
        """What the head reads: the features after the hidden layers, ``(B, width)``."""
        return self.hidden(self.features(obs.reshape(len(obs), *self.input_shape)))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.state_features(obs))

    def q_of(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``Q(obs_i, actions_i)``, equal to ``forward(obs).gather(1, actions)`` without the other
        ``n_actions - 1`` outputs."""
        features = self.state_features(obs)
        return (features * self.head.weight[actions]).sum(dim=1) + self.head.bias[actions]

    def q_of_slates(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``Q(obs_b, actions_b_k)``, ``(B, K)``: one feature pass per row, ``K`` head rows each."""
        features = self.state_features(obs)
        return torch.einsum("bh,bkh->bk", features, self.head.weight[actions]) + self.head.bias[actions]


class SlateDistribution(Distribution):
    """K distinct movies drawn without replacement from one softmax over the catalogue (Plackett-Luce).

    One score per movie for every slot, where SB3's ``MultiDiscrete`` distribution would give each
    of the K slots its own head of ``n_movies`` logits: K times fewer parameters, slates without
    repeats, and the scores are the ranking the evaluation reads. ``log_prob`` of a slate
    ``(a_1, ..., a_K)`` is ``sum_k [logit(a_k) - logsumexp(logits of the movies not drawn yet)]``;
    ``sample`` is the Gumbel top-K trick (exact for Plackett-Luce); ``mode`` the K best scores.
    ``entropy`` is the first draw's (Plackett-Luce has no closed form), what an entropy bonus needs.
    """

    def __init__(self, n_movies: int, slate_size: int) -> None:
        super().__init__()
        self.n_movies, self.slate_size = int(n_movies), int(slate_size)
        self.logits = torch.zeros(0)

    def proba_distribution_net(self, latent_dim: int) -> nn.Module:
        return nn.Linear(latent_dim, self.n_movies)

    def proba_distribution(self, action_logits: torch.Tensor) -> SlateDistribution:  # type: ignore[override]
        self.logits = action_logits
        self.distribution = torch.distributions.Categorical(logits=action_logits)
        return self

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        slates = actions.long().reshape(-1, self.slate_size)
        drawn = torch.zeros_like(self.logits, dtype=torch.bool)
        total = torch.zeros(len(slates), device=self.logits.device)
        for slot in range(self.slate_size):
            movie = slates[:, slot : slot + 1]
            remaining = torch.logsumexp(self.logits.masked_fill(drawn, -torch.inf), dim=1)
            total = total + self.logits.gather(1, movie).squeeze(1) - remaining
            drawn = drawn.scatter(1, movie, True)
        return total

    def entropy(self) -> torch.Tensor:
        return torch.distributions.Categorical(logits=self.logits).entropy()

    def sample(self) -> torch.Tensor:
        uniform = torch.rand_like(self.logits).clamp_(1e-12, 1.0 - 1e-7)
        return (self.logits - torch.log(-torch.log(uniform))).topk(self.slate_size, dim=1).indices

    def mode(self) -> torch.Tensor:
        return self.logits.topk(self.slate_size, dim=1).indices

    def actions_from_params(self, action_logits: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        self.proba_distribution(action_logits)
        return self.get_actions(deterministic=deterministic)

    def log_prob_from_params(self, action_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        actions = self.actions_from_params(action_logits)
        return actions, self.log_prob(actions)


class SlatePolicy(ActorCriticPolicy):
    """SB3's ``ActorCriticPolicy`` (PPO, A2C) for slate actions, ``MultiDiscrete([n_movies] * K)``.

    The actor scores every movie once and draws the slate from :class:`SlateDistribution`; movies
    the observation shows (visible, clicked, or tried with ``show_misses``) are never drawn, as
    :func:`mask_seen` does for the value policies. Use it as ``PPO(SlatePolicy, env, ...)`` or, in a
    zoo YAML, ``policy: rlrec.nn.SlatePolicy``.
    """

    def __init__(
        self, observation_space: gym.spaces.Space, action_space: gym.spaces.Space, *args, **kwargs
    ) -> None:  # type: ignore[no-untyped-def]
        if (
            not isinstance(action_space, gym.spaces.MultiDiscrete)
            or len(set(action_space.nvec.tolist())) != 1
        ):
            raise ValueError(f"SlatePolicy needs MultiDiscrete([n_movies] * K) actions, got {action_space}")
        self.slate_size, self.n_movies = len(action_space.nvec), int(action_space.nvec[0])
        self._observation: torch.Tensor | None = None
        super().__init__(observation_space, action_space, *args, **kwargs)

    def _build(self, lr_schedule: Schedule) -> None:
        # SB3 builds the actor head from the distribution: a Categorical's gives one logit per
        # movie, exactly the slate distribution's; then the slate distribution takes its place.
        self.action_dist = CategoricalDistribution(self.n_movies)
        super()._build(lr_schedule)
        self.action_dist = SlateDistribution(self.n_movies, self.slate_size)

    def _get_action_dist_from_latent(self, latent_pi: torch.Tensor) -> Distribution:
        logits = self.action_net(latent_pi)
        if self._observation is not None:
            logits = mask_seen(logits, self._observation)
        return self.action_dist.proba_distribution(action_logits=logits)  # type: ignore[call-arg]

    def forward(
        self, obs: torch.Tensor, deterministic: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        self._observation = obs
        return super().forward(obs, deterministic)

    def evaluate_actions(  # type: ignore[override]
        self, obs: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        self._observation = obs
        return super().evaluate_actions(obs, actions)

    def get_distribution(self, obs: torch.Tensor) -> Distribution:  # type: ignore[override]
        self._observation = obs
        return super().get_distribution(obs)
