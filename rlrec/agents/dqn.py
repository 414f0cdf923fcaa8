"""DQN (Mnih et al. 2015) written out top to bottom: CleanRL's layout, SB3's names and defaults.

The file reads in the order of the algorithm: the Q-network, the agent's configuration, acting
(ε-greedy), the TD target, one gradient step, the loop, saving. What makes it fast on rlrec's
catalogue-sized observations are rlrec's SB3 components, built once before the loop and the same
objects SB3's own ``DQN`` takes through its extension points (``rlrec.nn``):

* the first layer is :class:`~rlrec.nn.SparseInputExtractor` (it reads the non-zero entries of an
  observation only: a session's ~30 visible movies, not 10,329 columns);
* the replay is :class:`~rlrec.nn.CompactReplayBuffer` (an observation kept as its fill value and
  the entries that differ: ~0.5 KB per MovieLens profile, ~0.1 KB per session step, not 2 x 41 KB);
* ``optimizer="sparse_adam"`` is :class:`~rlrec.nn.RowSparseAdam` (Adam on the rows a batch
  touched).

One trick is the learner's own, in :meth:`QNetwork.q_of`: the loss needs ``Q(s, a)`` of the
stored action only, so the head multiplies the features by that action's row instead of computing
all ``n_actions`` outputs (and its gradient lands on those rows only). With ``gamma=0`` the target
is the reward and the target network is never evaluated.

Learning rate: Adam at SB3's 1e-4, not the seed notebook's 0.1: Adam's step is about ``lr`` per
weight whatever the gradient, so 0.1 moves every weight by 0.1 per update and the Q-values diverge.
``buffer_size=0`` learns from each fresh batch of ``n_envs`` transitions (the session recipe:
with ``gamma=0`` a transition's target never goes stale, and the freshest ones are the policy's).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import VectorEnv
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.utils import LinearSchedule, get_device, polyak_update
from torch import nn
from torch.nn import functional as F

from rlrec.agents.base import BaseLearner, EnvRunner, MaybeCallback
from rlrec.nn import CompactReplayBuffer, RowSparseAdam, SparseInputExtractor
from rlrec.utils.io import atomic_open, save_json

__all__ = ["DQNAgent", "QNetwork", "learning_rate_schedule"]

OptimizerName = Literal["adam", "sparse_adam"]
InitName = Literal["linear", "embedding"]
#: Rows per forward pass when scoring many observations.
_CHUNK = 1024


# ---------------------------------------------------------------------------- Q-network
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


def learning_rate_schedule(learning_rate: float | str | Callable[[float], float]) -> Callable[[float], float]:
    """SB3's ``lr_schedule`` (``progress_remaining`` -> step size) from a number, the zoo's
    ``"lin_<x>"`` (linear from ``x`` to 0) or a callable."""
    if isinstance(learning_rate, str):
        kind, _, initial = learning_rate.partition("_")
        if kind != "lin":
            raise ValueError(f"learning_rate must be a number or 'lin_<number>', got {learning_rate!r}")
        return LinearSchedule(float(initial), 0.0, 1.0)
    if callable(learning_rate):
        return learning_rate
    return lambda _: float(learning_rate)


def _learning_rate_json(learning_rate: float | str | Callable[[float], float]) -> float | str:
    if isinstance(learning_rate, LinearSchedule) and learning_rate.end == 0.0:
        return f"lin_{learning_rate.start:g}"
    if callable(learning_rate):
        raise ValueError("learning_rate: only a number, 'lin_<x>' or LinearSchedule(x, 0, 1) can be saved")
    return learning_rate


# ------------------------------------------------------------------------------- agent
class DQNAgent(BaseLearner):
    """Deep Q-learning with SB3's ``DQN`` hyperparameter names and defaults.

    :param env: a Gymnasium env with a flat ``Box`` observation and a ``Discrete`` action space,
        single or ``VectorEnv`` (autoreset ``SAME_STEP`` or ``NEXT_STEP``: the rows a vector env
        spends on resetting are not stored); None for a model that only predicts (see ``load``).
    :param learning_rate: Adam's step size (SB3's 1e-4), the zoo's ``"lin_<x>"`` or an SB3
        schedule (only ``LinearSchedule(x, 0, 1)`` can be saved).
    :param buffer_size: replay capacity in transitions (100,000; SB3 uses 1M). 0: no replay, one
        gradient step per env step on the ``n_envs`` transitions just collected.
    :param learning_starts: random actions and no training before this many steps (SB3's 100).
    :param batch_size: transitions per gradient step (SB3's 32).
    :param tau: target update coefficient: 1 copies (SB3's default), < 1 is Polyak averaging.
    :param gamma: discount (SB3's 0.99).
    :param train_freq: env ``step`` calls between trainings (SB3's 4).
    :param gradient_steps: gradient steps per training; -1: as many as transitions collected.
    :param target_update_interval: env steps between target updates (SB3's 10,000).
    :param exploration_fraction: see ``BaseLearner`` (SB3's 0.1).
    :param exploration_initial_eps: SB3's 1.0.
    :param exploration_final_eps: SB3's 0.05.
    :param max_grad_norm: gradient clipping (SB3's 10).
    :param net_arch: hidden layer widths (the seed's ``[64]``; SB3's DQN uses ``[64, 64]``).
    :param use_masking: act only on the actions ``action_masks()`` allows (the env's; SB3-contrib's
        interface). The target's maximum runs over every action, as in SB3's DQN.
    :param input_normalization: ``None`` or ``"sqrt_count"`` (see ``SparseInputExtractor``).
    :param dropout: dropout after every hidden ReLU, in the loss's forward only; default 0.
    :param init: ``"linear"`` (default) or ``"embedding"`` (see ``QNetwork``).
    :param optimizer: ``"adam"`` (default, fused where torch offers it) or ``"sparse_adam"``
        (:class:`~rlrec.nn.RowSparseAdam`: the same update on the rows a batch touched only).
    :param device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    :param tensorboard_log: see ``BaseLearner``.
    :param verbose: see ``BaseLearner``.
    :param seed: see ``BaseLearner``; same seed => same weights on the CPU.
    """

    def __init__(
        self,
        env: gym.Env | VectorEnv | None,
        learning_rate: float | str | Callable[[float], float] = 1e-4,
        buffer_size: int = 100_000,
        learning_starts: int = 100,
        batch_size: int = 32,
        tau: float = 1.0,
        gamma: float = 0.99,
        train_freq: int = 4,
        gradient_steps: int = 1,
        target_update_interval: int = 10_000,
        exploration_fraction: float = 0.1,
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.05,
        max_grad_norm: float = 10.0,
        net_arch: Sequence[int] = (64,),
        use_masking: bool = False,
        input_normalization: str | None = None,
        dropout: float = 0.0,
        init: InitName = "linear",
        optimizer: OptimizerName = "adam",
        device: str = "auto",
        tensorboard_log: str | None = None,
        verbose: int = 0,
        seed: int | None = None,
        _spaces: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(
            env,
            exploration_fraction=exploration_fraction,
            exploration_initial_eps=exploration_initial_eps,
            exploration_final_eps=exploration_final_eps,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            seed=seed,
        )
        if not 0.0 < tau <= 1.0:
            raise ValueError(f"tau must be in (0, 1], got {tau}")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}")
        if batch_size < 1 or train_freq < 1 or target_update_interval < 1:
            raise ValueError("batch_size, train_freq and target_update_interval must be >= 1")
        if buffer_size < 0:
            raise ValueError(f"buffer_size must be >= 0 (0: no replay), got {buffer_size}")
        if init not in ("linear", "embedding"):
            raise ValueError(f"init must be 'linear' or 'embedding', got {init!r}")
        if optimizer not in ("adam", "sparse_adam"):
            raise ValueError(f"optimizer must be 'adam' or 'sparse_adam', got {optimizer!r}")
        self.learning_rate, self.lr_schedule = learning_rate, learning_rate_schedule(learning_rate)
        self.buffer_size, self.learning_starts, self.batch_size = buffer_size, learning_starts, batch_size
        self.tau, self.gamma, self.train_freq, self.gradient_steps = tau, gamma, train_freq, gradient_steps
        self.target_update_interval, self.max_grad_norm = target_update_interval, max_grad_norm
        self.net_arch = [int(width) for width in net_arch]
        self.use_masking, self.input_normalization, self.dropout = use_masking, input_normalization, dropout
        self.init, self.optimizer_name = init, optimizer
        self.device = get_device(device)

        if env is not None:
            probe = EnvRunner(env)
            if not isinstance(probe.action_space, gym.spaces.Discrete):
                raise ValueError(f"env: DQN needs a Discrete action space, got {probe.action_space}")
            if not isinstance(probe.observation_space, gym.spaces.Box):
                raise ValueError(f"env: DQN needs a Box observation space, got {probe.observation_space}")
            self.obs_dim, self.n_actions = (
                int(np.prod(probe.observation_space.shape)),
                int(probe.action_space.n),
            )
        elif _spaces is not None:
            self.obs_dim, self.n_actions = int(_spaces[0]), int(_spaces[1])
        else:
            raise ValueError("DQNAgent needs an env (or is built by DQNAgent.load)")
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(self.obs_dim,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(self.n_actions)

        # BaseLearner seeded torch: the initial weights follow the seed.
        def network() -> QNetwork:
            net = QNetwork(
                self.observation_space, self.n_actions, self.net_arch, input_normalization, dropout, init
            )
            return net.to(self.device)

        self.q_net, self.q_net_target = network(), network()
        self.q_net_target.load_state_dict(self.q_net.state_dict())
        self.q_net_target.requires_grad_(False)
        self.q_net.eval()  # dropout acts in the loss's forward only (see _gradient_step)
        self.q_net_target.eval()
        lr = self.lr_schedule(1.0)
        self.optimizer: torch.optim.Optimizer = (
            RowSparseAdam(self.q_net.parameters(), lr=lr)
            if optimizer == "sparse_adam"
            else torch.optim.Adam(self.q_net.parameters(), lr=lr, fused=self.device.type in ("cpu", "cuda"))
        )
        self.replay_buffer: CompactReplayBuffer | None = None
        self._n_calls = 0
        self._n_updates = 0

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "algo": "dqn",
            "learning_rate": _learning_rate_json(self.learning_rate),
            "buffer_size": self.buffer_size,
            "learning_starts": self.learning_starts,
            "batch_size": self.batch_size,
            "tau": self.tau,
            "gamma": self.gamma,
            "train_freq": self.train_freq,
            "gradient_steps": self.gradient_steps,
            "target_update_interval": self.target_update_interval,
            "exploration_fraction": self.exploration_fraction,
            "exploration_initial_eps": self.exploration_initial_eps,
            "exploration_final_eps": self.exploration_final_eps,
            "max_grad_norm": self.max_grad_norm,
            "net_arch": json.dumps(self.net_arch),
            "use_masking": self.use_masking,
            "input_normalization": self.input_normalization,
            "dropout": self.dropout,
            "init": self.init,
            "optimizer": self.optimizer_name,
            "seed": self.seed,
        }

    # ------------------------------------------------------------------------- acting
    def _tensor(self, obs: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(
            np.asarray(obs, dtype=np.float32).reshape(len(obs), self.obs_dim), device=self.device
        )

    def q_values(self, observation: np.ndarray) -> np.ndarray:
        """Q-values ``(B, n_actions)`` float32 of a batch of observations (``(n_actions,)`` for one)."""
        obs = np.asarray(observation, dtype=np.float32)
        single = obs.ndim <= 1
        batch = obs.reshape(-1, self.obs_dim)
        with torch.no_grad():
            chunks = [
                self.q_net(self._tensor(batch[i : i + _CHUNK])).cpu().numpy()
                for i in range(0, len(batch), _CHUNK)
            ]
        out = np.concatenate(chunks) if chunks else np.zeros((0, self.n_actions), dtype=np.float32)
        return out[0] if single else out

    def _random_actions(self, n: int, masks: np.ndarray | None) -> np.ndarray:
        if masks is None:
            return self.rng.integers(0, self.n_actions, size=n)
        return np.array([self.rng.choice(np.flatnonzero(mask)) for mask in masks], dtype=np.int64)

    def _greedy_actions(self, obs: np.ndarray, masks: np.ndarray | None) -> np.ndarray:
        q = self.q_values(obs.reshape(len(obs), -1))
        return (q if masks is None else np.where(masks, q, -np.inf)).argmax(axis=1)

    def _epsilon_greedy(self, obs: np.ndarray, epsilon: float, masks: np.ndarray | None) -> np.ndarray:
        explore = self.rng.random(len(obs)) < epsilon
        actions = self._random_actions(len(obs), masks)
        if not explore.all():  # no forward pass when every sub-env explores
            actions = np.where(explore, actions, self._greedy_actions(obs, masks))
        return actions

    def predict(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
        action_masks: np.ndarray | None = None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """SB3's ``predict``: greedy actions, or ε-greedy at ``exploration_rate`` when not deterministic."""
        obs = np.asarray(observation)
        single = obs.ndim <= 1
        batch = obs.reshape(-1, self.obs_dim)
        masks = None if action_masks is None else np.asarray(action_masks, dtype=bool).reshape(len(batch), -1)
        if deterministic:
            actions = self._greedy_actions(batch, masks)
        else:
            actions = self._epsilon_greedy(batch, self.exploration_rate, masks)
        return (actions[0] if single else actions), None

    # ------------------------------------------------------------------------ training
    def td_targets(self, batch: ReplayBufferSamples) -> torch.Tensor:
        """``r + γ max_a' Q_target(s', a')``; no future after a terminal state (a truncated one
        keeps its bootstrap: ``dones`` holds terminations only)."""
        rewards = batch.rewards.reshape(-1)
        if self.gamma == 0.0:
            return rewards  # nothing to bootstrap: skip the target network's forward pass
        with torch.no_grad():
            next_values = self.q_net_target(batch.next_observations).max(dim=1).values
        return rewards + (1.0 - batch.dones.reshape(-1)) * self.gamma * next_values

    def _update_learning_rate(self) -> float:
        """SB3's ``_update_learning_rate``: the schedule at the current progress."""
        lr = float(self.lr_schedule(1.0 - self.num_timesteps / max(self._total_timesteps, 1)))
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def _gradient_step(self, batch: ReplayBufferSamples) -> None:
        """One Huber-loss step of ``Q(s, a)`` towards the TD target, clipped as SB3 clips."""
        targets = self.td_targets(batch)
        self.q_net.train(True)  # dropout on for this forward only
        q = self.q_net.q_of(batch.observations, batch.actions.reshape(-1).long())
        self.q_net.train(False)
        loss = F.smooth_l1_loss(q, targets)
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.q_net.parameters(), self.max_grad_norm)
        self.optimizer.step()
        self._n_updates += 1
        self._record_loss(float(loss.item()))

    def train(self, gradient_steps: int, batch_size: int) -> None:
        """``gradient_steps`` steps on uniformly sampled batches (or the fresh one, without replay)."""
        assert self.replay_buffer is not None
        self._update_learning_rate()
        for _ in range(gradient_steps):
            batch = (
                self.replay_buffer.latest()
                if self.buffer_size == 0
                else self.replay_buffer.sample(batch_size)
            )
            self._gradient_step(batch)

    def _record_train_extras(self) -> None:
        self.logger.record("train/n_updates", self._n_updates)
        self.logger.record("train/learning_rate", self.optimizer.param_groups[0]["lr"])

    # --------------------------------------------------------------------------- learn
    def learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int | None = 4,
        tb_log_name: str = "dqn",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> DQNAgent:
        """Collect ``total_timesteps`` env steps, training every ``train_freq`` steps (SB3's loop)."""
        runner = self._runner_for_learning(reset_num_timesteps, self.use_masking)
        if self.replay_buffer is None:
            capacity = self.buffer_size if self.buffer_size > 0 else runner.n_envs
            # An env that names its states (MovieLens-v0: the user) is replayed from state indices.
            self.replay_buffer = CompactReplayBuffer(
                capacity, self.observation_space, self.action_space, device=self.device, n_envs=1,
                observations_fn=runner.observations if runner.compact else None,
            )  # fmt: skip
        total_timesteps, callback = self._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        gradient_steps = self.gradient_steps if self.gradient_steps >= 0 else self.train_freq * runner.n_envs
        train_every = self.train_freq
        if self.buffer_size == 0:  # one step on each fresh batch: there is nothing else to sample
            gradient_steps, train_every = 1, 1
        target_every = max(self.target_update_interval // runner.n_envs, 1)
        callback.on_training_start(locals(), globals())

        while self.num_timesteps < total_timesteps:
            # 1. act: uniform at random before learning_starts, then ε-greedy
            epsilon = self._update_exploration_rate()
            masks = runner.action_masks() if self.use_masking else None
            obs, states = runner.obs, runner.states
            if self.num_timesteps < self.learning_starts:
                actions = self._random_actions(runner.n_envs, masks)
            else:
                actions = self._epsilon_greedy(obs, epsilon, masks)

            # 2. step and remember (terminations only are terminal; a truncated episode goes on)
            step = runner.step(actions)
            self.num_timesteps += runner.n_envs
            keep = step.valid
            next_states = step.next_states
            if states is not None and next_states is not None:
                states, next_states = states[keep], next_states[keep]
            self.replay_buffer.add_transitions(
                obs[keep], step.next_obs[keep], actions[keep], step.rewards[keep], step.terminated[keep],
                states, next_states,
            )  # fmt: skip
            self._n_calls += 1
            if self._n_calls % target_every == 0:
                polyak_update(self.q_net.parameters(), self.q_net_target.parameters(), self.tau)

            # The names SB3's collect_rollouts exposes to callbacks (StopTrainingOnMaxEpisodes reads dones).
            new_obs, rewards, dones, infos = (
                runner.obs,
                step.rewards,
                step.terminated | step.truncated,
                step.infos,
            )
            callback.update_locals(locals())
            if not callback.on_step():
                break
            self._record_episodes(step.episodes, log_interval)

            # 3. learn
            if self._n_calls % train_every == 0 and self.num_timesteps > self.learning_starts and keep.any():
                self.train(gradient_steps, self.batch_size)

        self.dump_logs()
        callback.on_training_end()
        return self

    # ------------------------------------------------------------------------ save/load
    def save(self, path: str | Path) -> Path:
        """Write the weights (torch ``state_dict``s, no pickle) and a JSON of hyperparameters.

        ``path`` (``.pt`` added when it has no suffix) holds the online and target networks, the
        optimizer state and the same JSON as a string; ``<path without suffix>.json`` is the
        human-readable copy. Both are written atomically. Returns the weights' path.
        """
        target = Path(path)
        if not target.suffix:
            target = target.with_suffix(".pt")
        meta = {
            "hyperparameters": self.hyperparameters(),
            "net_arch": self.net_arch,
            "obs_dim": self.obs_dim,
            "n_actions": self.n_actions,
            "num_timesteps": self.num_timesteps,
            "n_updates": self._n_updates,
        }
        checkpoint = {
            "q_net": self.q_net.state_dict(),
            "q_net_target": self.q_net_target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "meta_json": json.dumps(meta),
        }
        # Into an open file, not a path: torch names the archive's root after the file, and the
        # temporary's random name would make identical models differ byte for byte.
        with atomic_open(target, "wb") as handle:
            torch.save(checkpoint, handle)
        save_json(target.with_suffix(".json"), meta)
        return target

    @classmethod
    def load(cls, path: str | Path, env: gym.Env | VectorEnv | None = None, device: str = "auto") -> DQNAgent:
        """Load a model written by ``save`` (``torch.load(weights_only=True)``) onto ``device``."""
        target = Path(path)
        if not target.is_file() and not target.suffix and target.with_suffix(".pt").is_file():
            target = target.with_suffix(".pt")
        checkpoint = torch.load(target, map_location=get_device(device), weights_only=True)
        if not isinstance(checkpoint, dict) or "meta_json" not in checkpoint:
            raise ValueError(f"{target}: not a DQNAgent checkpoint (meta_json missing)")
        meta = json.loads(checkpoint["meta_json"])
        hp = {key: value for key, value in meta["hyperparameters"].items() if key not in ("algo", "net_arch")}
        agent = cls(
            env, net_arch=meta["net_arch"], device=device, _spaces=(meta["obs_dim"], meta["n_actions"]), **hp
        )
        if (agent.obs_dim, agent.n_actions) != (meta["obs_dim"], meta["n_actions"]):
            raise ValueError(
                f"{target}: saved for {meta['obs_dim']}-wide observations and {meta['n_actions']} actions, "
                f"the env has {agent.obs_dim} and {agent.n_actions}"
            )
        agent.q_net.load_state_dict(checkpoint["q_net"])
        agent.q_net_target.load_state_dict(checkpoint["q_net_target"])
        agent.optimizer.load_state_dict(checkpoint["optimizer"])
        agent.num_timesteps, agent._n_updates = int(meta["num_timesteps"]), int(meta["n_updates"])
        return agent
