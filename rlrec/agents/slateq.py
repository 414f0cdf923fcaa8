"""SlateQ (Ie et al., IJCAI 2019): DQN whose action is a slate and whose value is a sum over its movies.

A slate's value decomposes over the movies it shows (SlateQ's additive decomposition):
``Q(s, A) = sum_{i in A} Qbar(s, i)``, so one network scores every movie, the greedy slate is
the ``slate_size`` best scores among the allowed movies, and each shown movie is one labelled
pair ``(s, i) -> r_i`` from ``info["slot_rewards"]``: a step of 64 sessions with slates of 10
teaches 640 pairs where a single-movie step teaches 64. With ``gamma > 0`` each movie's target
adds its share of the next greedy slate's value, ``gamma * mean_{j in A*(s')} Qbar_target(s', j)``.

Everything else is :class:`~rlrec.agents.dqn.DQNAgent`'s: the network (a
:class:`~rlrec.nn.QNetwork` over a :class:`~rlrec.nn.SparseInputExtractor`), the optimizer, the
schedules, SB3's interface and the file format. SlateQ learns from each fresh batch of slates
(no replay): with ``gamma = 0`` (the shipped recipe) a label never goes stale and the freshest
are the policy's own. Env: ``rlrec/MovieLensSlate-v0`` (``MultiDiscrete`` slates), single or
vector; evaluation ranks the catalogue by ``Qbar``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.utils import polyak_update

from rlrec.agents.base import MaybeCallback
from rlrec.agents.dqn import DQNAgent, DQNConfig

__all__ = ["SlateQAgent", "SlateQConfig"]


@dataclass
class SlateQConfig(DQNConfig):
    """:class:`DQNConfig` for slates. ``buffer_size`` must be 0 (fresh batches) and ``batch_size``
    is the batch the env hands over; the other fields mean what they mean for DQN."""

    buffer_size: int = 0
    learning_starts: int = 0
    gamma: float = 0.0
    train_freq: int = 1

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
        obs = gym.spaces.Box(-np.inf, np.inf, shape=tuple(meta["observation_shape"]), dtype=np.float32)
        return obs, gym.spaces.MultiDiscrete(np.asarray(meta["action_space"], dtype=np.int64))

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

    # ------------------------------------------------------------------------ training
    def _slate_step(self, obs: np.ndarray, slates: np.ndarray, slot_rewards: np.ndarray,
                    next_obs: np.ndarray, terminated: np.ndarray) -> None:  # fmt: skip
        """One Huber step of every shown movie's ``Qbar(s, i)`` towards its target."""
        device = self.device
        targets = torch.as_tensor(slot_rewards, dtype=torch.float32, device=device)
        if self.config.gamma > 0.0:
            with torch.no_grad():
                next_q = self.q_net_target(torch.as_tensor(next_obs, device=device))
                share = next_q.topk(self.slate_size, dim=1).values.mean(dim=1)
                alive = 1.0 - torch.as_tensor(terminated, dtype=torch.float32, device=device)
                targets = targets + (self.config.gamma * alive * share)[:, None]
        self.q_net.train(True)  # dropout on for this forward only
        features = self.q_net.hidden(self.q_net.features(torch.as_tensor(obs, device=device)))
        movies = torch.as_tensor(slates, dtype=torch.long, device=device)
        # q_of for K movies per row: one feature pass per session, K head rows each.
        head = self.q_net.head
        q = torch.einsum("bh,bkh->bk", features, head.weight[movies]) + head.bias[movies]
        self.q_net.train(False)
        self._minimize(q.reshape(-1), targets.reshape(-1))

    # --------------------------------------------------------------------------- learn
    def learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int | None = 4,
        tb_log_name: str = "slateq",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SlateQAgent:
        """Collect ``total_timesteps`` env steps (one slate per session per step), learning from each."""
        cfg = self.config
        runner = self._runner_for_learning(reset_num_timesteps, use_masking=True)
        total_timesteps, callback = self._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        target_every = max(cfg.target_update_interval // runner.n_envs, 1)
        callback.on_training_start(locals(), globals())

        while self.num_timesteps < total_timesteps:
            # 1. act: the greedy slate of the allowed movies, slots explored at rate ε
            epsilon = self._update_exploration_rate()
            masks, obs = runner.action_masks(), runner.obs
            if self.num_timesteps < cfg.learning_starts:
                slates = self._random_actions(runner.n_envs, masks)
            else:
                slates = self._epsilon_greedy(obs, epsilon, masks)

            # 2. step: every shown movie gets its own reward
            step = runner.step(slates)
            self.num_timesteps += runner.n_envs
            self._n_calls += 1
            new_obs, rewards, infos = runner.obs, step.rewards, step.infos
            dones = step.terminated | step.truncated
            callback.update_locals(locals())
            if not callback.on_step():
                break
            self._record_episodes(step.episodes, log_interval)

            # 3. learn from this batch of slates, then sync the target
            keep = step.valid
            learning = self.num_timesteps > cfg.learning_starts and self._n_calls % cfg.train_freq == 0
            if learning and keep.any():
                slot_rewards = np.stack([np.asarray(info["slot_rewards"], np.float32) for info in infos])
                self._update_learning_rate()
                for _ in range(max(cfg.gradient_steps, 1)):
                    self._slate_step(obs[keep], slates[keep], slot_rewards[keep], step.next_obs[keep],
                                     step.terminated[keep])  # fmt: skip
            if self._n_calls % target_every == 0:
                polyak_update(self.q_net.parameters(), self.q_net_target.parameters(), cfg.tau)

        self.dump_logs()
        callback.on_training_end()
        return self


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Each row's ``k`` best columns, best first (ties: lower index), int64 ``(rows, k)``."""
    best = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.lexsort((best, -np.take_along_axis(scores, best, axis=1)), axis=1)
    return np.take_along_axis(best, order, axis=1).astype(np.int64)
