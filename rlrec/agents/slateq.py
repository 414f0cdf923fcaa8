"""SlateQ (Ie et al., IJCAI 2019): DQN whose action is a slate and whose value is a sum over its movies.

A slate's value decomposes over the movies it shows (SlateQ's additive decomposition):
``Q(s, A) = sum_{i in A} Qbar(s, i)``, so one network scores every movie, the greedy slate is
the ``slate_size`` best scores among the allowed movies, and each shown movie is one labelled
pair ``(s, i) -> r_i`` from ``info["slot_rewards"]``: a step of 64 sessions with slates of 10
teaches 640 pairs where a single-movie step teaches 64. With ``gamma > 0`` each movie's target
adds its share of the next greedy slate's value, ``gamma * mean_{j in A*(s')} Qbar_target(s', j)``.

SlateQ replaces what differs from :class:`~rlrec.agents.dqn.DQNAgent`: acting over slates, the
labels (one per slot), ``Q`` of the shown movies and the target's share of the next slate. The
loop, the target sync, the network (a :class:`~rlrec.nn.QNetwork` over a
:class:`~rlrec.nn.SparseInputExtractor`), the optimizer, the schedules, SB3's interface and the
file format are DQN's. SlateQ learns from each fresh batch of slates (no replay, ``FreshBatch``):
with ``gamma = 0`` (the shipped recipe) a label never goes stale and the freshest are the
policy's own. Env: ``rlrec/MovieLensSlate-v0`` (``MultiDiscrete`` slates), single or
vector; evaluation ranks the catalogue by ``Qbar``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from rlrec.agents.base import EnvRunner
from rlrec.agents.dqn import DQNAgent, DQNConfig, ReplayMemory, saved_observation_space
from rlrec.nn import FreshBatch, TargetValues

__all__ = ["SlateQAgent", "SlateQConfig"]


@dataclass
class SlateQConfig(DQNConfig):
    """:class:`DQNConfig` for slates. ``buffer_size`` must be 0 (fresh batches) and ``batch_size``
    is the batch the env hands over; the other fields mean what they mean for DQN."""

    buffer_size: int = 0
    learning_starts: int = 0
    gamma: float = 0.0
    train_freq: int = 1
    use_masking: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.buffer_size != 0:
            raise ValueError(f"buffer_size: SlateQ learns from each fresh batch (0), got {self.buffer_size}")


class SlateQAgent(DQNAgent):
    """SlateQ over rlrec's slate env; SB3's interface (``learn``, ``predict``, ``save`` / ``load``).

    :param env: ``rlrec/MovieLensSlate-v0`` or any env with a ``MultiDiscrete([n] * K)`` action
        space of distinct slots and per-slot rewards in ``info["slot_rewards"]``; single or vector.
    :param hyperparams: the fields of :class:`SlateQConfig`; other arguments as :class:`DQNAgent`.
    """

    config_class: ClassVar[type] = SlateQConfig
    algo_name: ClassVar[str] = "slateq"

    def _check_spaces(self, obs: gym.spaces.Space, action: gym.spaces.Space) -> tuple[Any, Any]:
        if not isinstance(action, gym.spaces.MultiDiscrete) or len(set(action.nvec.tolist())) != 1:
            raise ValueError(f"env: SlateQ needs MultiDiscrete([n_movies] * K) actions, got {action}")
        if not isinstance(obs, gym.spaces.Box):
            raise ValueError(f"env: SlateQ needs a Box observation space, got {obs}")
        self.slate_size = len(action.nvec)
        return obs, action

    @staticmethod
    def _n_movies(action_space: Any) -> int:
        return int(action_space.nvec[0])

    def _action_space_json(self) -> list[int]:
        return [self.n_actions] * self.slate_size

    @classmethod
    def _spaces_from_json(cls, meta: dict[str, Any]) -> tuple[gym.spaces.Space, gym.spaces.Space]:
        return saved_observation_space(meta), gym.spaces.MultiDiscrete(
            np.asarray(meta["action_space"], dtype=np.int64)
        )

    # ------------------------------------------------------------------------- acting
    def _allowed(self, masks: np.ndarray | None, n_rows: int) -> np.ndarray:
        """Movies each row may show: sb3-contrib's MultiDiscrete mask holds one copy per slot."""
        if masks is None:
            return np.ones((n_rows, self.n_actions), dtype=bool)
        return np.asarray(masks, dtype=bool).reshape(n_rows, -1)[:, : self.n_actions]

    def _greedy_actions(self, obs: np.ndarray, masks: np.ndarray | None) -> np.ndarray:
        q = np.where(self._allowed(masks, len(obs)), self.q_values(obs.reshape(len(obs), -1)), -np.inf)
        return _top(q, self.slate_size)

    def _random_actions(self, n: int, masks: np.ndarray | None) -> np.ndarray:
        noise = np.where(self._allowed(masks, n), self.rng.random((n, self.n_actions)), -1.0)
        return _top(noise, self.slate_size)

    def _epsilon_greedy(self, obs: np.ndarray, epsilon: float, masks: np.ndarray | None) -> np.ndarray:
        """The greedy slate with each slot replaced, with probability ε, by a random allowed movie
        not in the slate already (so slates stay distinct)."""
        slates = self._greedy_actions(obs, masks)
        explore = self.rng.random(slates.shape) < epsilon
        if explore.any():
            allowed = self._allowed(masks, len(obs)).copy()
            allowed[np.arange(len(obs))[:, None], slates] = False
            others = self._random_actions(len(obs), allowed)
            slates = np.where(explore, others, slates)
        return slates

    # ---------------------------------------------------- acting on tensors (torch-backend env)
    def _allowed_tensor(self, masks: torch.Tensor | None, n_rows: int) -> torch.Tensor:
        if masks is None:
            return torch.ones((n_rows, self.n_actions), dtype=torch.bool, device=self.device)
        return masks.to(self.device).bool().reshape(n_rows, -1)[:, : self.n_actions]

    def _greedy_tensor_actions(self, obs: torch.Tensor, masks: torch.Tensor | None) -> torch.Tensor:
        q = self._q_tensor(obs).masked_fill(~self._allowed_tensor(masks, len(obs)), -torch.inf)
        return _top_tensor(q, self.slate_size)

    def _random_tensor_actions(self, n: int, masks: torch.Tensor | None) -> torch.Tensor:
        noise = torch.rand((n, self.n_actions), generator=self._tensor_generator(), device=self.device)
        return _top_tensor(noise.masked_fill(~self._allowed_tensor(masks, n), -1.0), self.slate_size)

    def _epsilon_greedy_tensor(
        self, obs: torch.Tensor, epsilon: float, masks: torch.Tensor | None
    ) -> torch.Tensor:
        """:meth:`_epsilon_greedy` on tensors (always drawing the replacements: no host sync)."""
        slates = self._greedy_tensor_actions(obs, masks)
        explore = torch.rand(slates.shape, generator=self._tensor_generator(), device=self.device) < epsilon
        allowed = self._allowed_tensor(masks, len(obs)).clone().scatter_(1, slates, False)
        return torch.where(explore, self._random_tensor_actions(len(obs), allowed), slates)

    # ------------------------------------------------------------------------ training
    def q_taken(self, batch: ReplayBufferSamples) -> torch.Tensor:
        """``Qbar(s, i)`` of every shown movie, flat ``(B * K,)`` (the network's ``q_of_slates``)."""
        return self.q_net.q_of_slates(batch.observations, batch.actions.long()).reshape(-1)

    def _make_replay_buffer(self, runner: EnvRunner) -> ReplayMemory:
        return FreshBatch(self.device)

    def _make_target_values(self, runner: EnvRunner) -> TargetValues:
        return SlateTargetValues(self.q_net_target, self.slate_size)

    def _labels(self, step: Any) -> Any:
        """Every shown movie is one labelled pair: the slot rewards, ``(n_envs, K)``."""
        return step.info_array("slot_rewards")


class SlateTargetValues(TargetValues):
    """A slate's share of the next greedy slate's value: ``mean_{j in A*(s')} Qbar_target(s', j)``."""

    def __init__(self, q_net_target: torch.nn.Module, slate_size: int) -> None:
        super().__init__(q_net_target)
        self.slate_size = slate_size

    def __call__(self, batch: ReplayBufferSamples) -> torch.Tensor:
        with torch.no_grad():
            next_q = self.q_net_target(batch.next_observations)
            return next_q.topk(self.slate_size, dim=1).values.mean(dim=1)


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Each row's ``k`` best columns, best first (ties: lower index), int64 ``(rows, k)``."""
    best = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.lexsort((best, -np.take_along_axis(scores, best, axis=1)), axis=1)
    return np.take_along_axis(best, order, axis=1).astype(np.int64)


def _top_tensor(scores: torch.Tensor, k: int) -> torch.Tensor:
    """:func:`_top` on a tensor: each row's ``k`` best columns, best first, ties to the lower index."""
    return torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
