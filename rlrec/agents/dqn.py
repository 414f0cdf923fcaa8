"""DQN (Mnih et al. 2015) read top to bottom: config, network, acting, the learning loop, saving.

CleanRL's layout with SB3's hyperparameter names and defaults. What makes it fast on rlrec's
catalogue-sized observations is built once, before the loop, from rlrec's SB3 components
(:mod:`rlrec.nn`), the same objects SB3's own ``DQN`` takes through its extension points:

* the network is :class:`~rlrec.nn.QNetwork`, whose first layer is a
  :class:`~rlrec.nn.SparseInputExtractor` (it reads the non-zero entries of an observation only)
  and whose ``q_of`` evaluates the head rows of the taken actions only; or, with
  ``network="item_item"``, :class:`~rlrec.nn.ItemItemQNetwork` (one weight per pair of movies,
  its gradient a sparse tensor of the pairs the batch touched);
* the replay is a :class:`~rlrec.nn.CompactReplayBuffer` (observations as their non-zeros, or as
  state indices for an env that names its states: ~0.1 KB per transition, not 2 x 41 KB);
* ``optimizer="sparse_adam"`` is :class:`~rlrec.nn.RowSparseAdam` (Adam on the touched rows);
* the bootstrap values are :class:`~rlrec.nn.StateTargetValues` for such an env with hard target
  updates: ``max_a' Q_target(s', a')`` computed once per state between syncs, then looked up;
* over a torch-backend env (``backend="torch"``) the runner is a
  :class:`~rlrec.agents.base.TensorEnvRunner` and the memory a :class:`~rlrec.nn.FreshBatch` /
  :class:`~rlrec.nn.TensorReplayBuffer`, and acting is done on tensors (``_tensor_acting``):
  observations, actions and batches stay on the device, the loop is the same.

Learning rate: Adam at SB3's 1e-4, not the seed notebook's 0.1: Adam's step is about ``lr`` per
weight whatever the gradient, so 0.1 moves every weight by 0.1 per update and the Q-values diverge.
``buffer_size=0`` learns from each fresh batch of ``n_envs`` transitions (the session recipe: with
``gamma=0`` a transition's target never goes stale, and the freshest are the policy's own).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import VectorEnv
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.utils import get_device, polyak_update
from torch.nn import functional as F
from typing_extensions import Self

from rlrec.agents.base import BaseLearner, EnvRunner, MaybeCallback, TensorEnvRunner
from rlrec.nn import (
    CompactReplayBuffer,
    FreshBatch,
    GRUSequenceExtractor,
    ItemItemQNetwork,
    QNetwork,
    RowSparseAdam,
    SelfAttentionSequenceExtractor,
    StateTargetValues,
    TargetValues,
    TensorReplayBuffer,
    clip_grad_norm,
)
from rlrec.utils.io import atomic_open, save_json
from rlrec.utils.schedules import Schedule, schedule_from, schedule_json

__all__ = ["DQNAgent", "DQNConfig", "ReplayMemory"]

#: Rows per forward pass when scoring many observations.
_CHUNK = 1024
#: ``DQNConfig.features_extractor`` names: extractors of a sequence observation.
EXTRACTORS = {"gru": GRUSequenceExtractor, "self_attention": SelfAttentionSequenceExtractor}
#: ``DQNConfig.network`` names.
NETWORKS = ("mlp", "item_item")


class ReplayMemory(Protocol):
    """What the loop asks of its memory: :class:`CompactReplayBuffer`'s interface."""

    def add_transitions(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        dones: np.ndarray,
        states: np.ndarray | None = None,
        next_states: np.ndarray | None = None,
    ) -> None: ...

    def latest(self) -> ReplayBufferSamples: ...

    def sample(self, batch_size: int) -> ReplayBufferSamples: ...


# ------------------------------------------------------------------------------ config
@dataclass
class DQNConfig:
    """DQN's hyperparameters, SB3 ``DQN``'s names and defaults unless said otherwise.

    :param learning_rate: Adam's step size (1e-4), or the zoo's ``"lin_<x>"`` (linear to 0).
    :param buffer_size: replay capacity (100,000; SB3: 1M). 0: no replay, one gradient step per
        env step on the ``n_envs`` transitions just collected.
    :param learning_starts: random actions and no training before this many steps (100).
    :param batch_size: transitions per gradient step (32).
    :param tau: target update coefficient: 1 copies (SB3's), < 1 is Polyak averaging.
    :param gamma: discount (0.99).
    :param train_freq: env ``step`` calls between trainings (4).
    :param gradient_steps: gradient steps per training (1); -1: as many as transitions collected.
    :param target_update_interval: env steps between target updates (10,000).
    :param exploration_fraction: share of the run over which ε decays linearly (0.1).
    :param exploration_initial_eps: ε at the start (1.0).
    :param exploration_final_eps: ε after the decay (0.05).
    :param max_grad_norm: gradient clipping (10).
    :param net_arch: hidden widths (the seed notebook's ``[64]``; SB3's DQN uses ``[64, 64]``).
    :param use_masking: act only on the actions ``action_masks()`` allows (sb3-contrib's
        interface). The target's maximum runs over every action, as in SB3's DQN.
    :param input_normalization: ``None`` or ``"sqrt_count"`` (see ``SparseInputExtractor``).
    :param dropout: dropout after every hidden ReLU, in the loss's forward only (0).
    :param init: ``"linear"`` or ``"embedding"`` (see ``QNetwork``).
    :param optimizer: ``"adam"`` (fused where torch has it) or ``"sparse_adam"`` (``RowSparseAdam``).
    :param weight_decay: the optimizer's L2 penalty on the weight matrices (biases never decay),
        coupled as ``torch.optim.Adam``'s (0: none, as SB3's DQN). With ``"sparse_adam"`` it decays
        the touched weights only (see ``RowSparseAdam``).
    :param decoupled_weight_decay: AdamW's decay instead (torch's flag of that name): every weight
        shrinks by ``lr * weight_decay`` of itself each gradient step, touched or not (False).
    :param features_extractor: ``None`` (the sparse first layer), or ``"gru"`` /
        ``"self_attention"`` (:class:`~rlrec.nn.GRUSequenceExtractor` /
        :class:`~rlrec.nn.SelfAttentionSequenceExtractor`, for ``observation="sequence"``); then
        ``net_arch`` lists the layers after it (``[]``: the head reads the extractor's features).
    :param features_extractor_kwargs: the extractor's arguments (e.g. ``features_dim``).
    :param network: ``"mlp"`` (default: :class:`~rlrec.nn.QNetwork`, ``net_arch`` and the options
        above) or ``"item_item"`` (:class:`~rlrec.nn.ItemItemQNetwork`, one weight per pair of
        movies, EASE's form; reads ``input_normalization`` only; pair it with
        ``optimizer="sparse_adam"``, which then updates the touched weights only).
    """

    learning_rate: float | str = 1e-4
    buffer_size: int = 100_000
    learning_starts: int = 100
    batch_size: int = 32
    tau: float = 1.0
    gamma: float = 0.99
    train_freq: int = 4
    gradient_steps: int = 1
    target_update_interval: int = 10_000
    exploration_fraction: float = 0.1
    exploration_initial_eps: float = 1.0
    exploration_final_eps: float = 0.05
    max_grad_norm: float = 10.0
    net_arch: list[int] = field(default_factory=lambda: [64])
    use_masking: bool = False
    input_normalization: str | None = None
    dropout: float = 0.0
    init: str = "linear"
    optimizer: str = "adam"
    weight_decay: float = 0.0
    decoupled_weight_decay: bool = False
    features_extractor: str | None = None
    features_extractor_kwargs: dict[str, Any] = field(default_factory=dict)
    network: str = "mlp"

    def __post_init__(self) -> None:
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"tau must be in (0, 1], got {self.tau}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        if min(self.batch_size, self.train_freq, self.target_update_interval) < 1 or self.buffer_size < 0:
            raise ValueError("batch_size, train_freq, target_update_interval >= 1 and buffer_size >= 0")
        if self.init not in ("linear", "embedding") or self.optimizer not in ("adam", "sparse_adam"):
            raise ValueError(f"init: 'linear' / 'embedding', optimizer: 'adam' / 'sparse_adam' ({self})")
        if not self.weight_decay >= 0.0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not isinstance(self.decoupled_weight_decay, bool):
            raise ValueError(
                f"decoupled_weight_decay must be true or false, got {self.decoupled_weight_decay!r}"
            )
        if self.features_extractor is not None and self.features_extractor not in EXTRACTORS:
            raise ValueError(
                f"features_extractor: one of {', '.join(sorted(EXTRACTORS))} or None, "
                f"got {self.features_extractor!r}"
            )
        if self.network not in NETWORKS:
            raise ValueError(f"network: one of {', '.join(NETWORKS)}, got {self.network!r}")
        if self.network == "item_item" and self.features_extractor is not None:
            raise ValueError("network='item_item' reads the catalogue observation: no features_extractor")
        self.net_arch = [int(width) for width in self.net_arch]
        self.features_extractor_kwargs = dict(self.features_extractor_kwargs or {})
        schedule_json(self.learning_rate)  # refuses what cannot be saved

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "learning_rate": schedule_json(self.learning_rate)}


# ------------------------------------------------------------------------------- agent
class DQNAgent(BaseLearner):
    """Deep Q-learning; SB3's interface (``learn``, ``predict``, ``save`` / ``load``, callbacks, logger).

    :param env: a Gymnasium env with a flat ``Box`` observation and a ``Discrete`` action space,
        single or ``VectorEnv`` (autoreset ``SAME_STEP`` or ``NEXT_STEP``: the rows a vector env
        spends on resetting are not stored); None for a model that only predicts (``spaces``).
    :param spaces: ``(observation_space, action_space)`` of a model without env (``load``).
    :param device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    :param tensorboard_log: see ``BaseLearner``.
    :param verbose: see ``BaseLearner``.
    :param seed: see ``BaseLearner``; same seed => same weights and actions on the CPU.
    :param hyperparams: the fields of :class:`DQNConfig`.
    """

    config_class: ClassVar[type] = DQNConfig
    algo_name: ClassVar[str] = "dqn"
    tensor_native: ClassVar[bool] = True

    def __init__(
        self,
        env: gym.Env | VectorEnv | None,
        *,
        spaces: tuple[gym.spaces.Space, gym.spaces.Space] | None = None,
        device: str = "auto",
        tensorboard_log: str | None = None,
        verbose: int = 0,
        seed: int | None = None,
        **hyperparams: Any,
    ) -> None:
        config = self.config_class(**hyperparams)
        super().__init__(
            env,
            exploration_fraction=config.exploration_fraction,
            exploration_initial_eps=config.exploration_initial_eps,
            exploration_final_eps=config.exploration_final_eps,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            seed=seed,
        )
        self.config = config
        if env is not None:
            probe = EnvRunner(env)
            spaces = (probe.observation_space, probe.action_space)
        if spaces is None:
            raise ValueError("DQNAgent needs an env, or spaces= (what load passes)")
        self.observation_space, self.action_space = self._check_spaces(*spaces)
        self.obs_dim = int(np.prod(self.observation_space.shape))
        self.n_actions = self._n_movies(self.action_space)
        self.device = get_device(device)
        self.lr_schedule: Schedule = schedule_from(config.learning_rate)

        # BaseLearner seeded torch: the initial weights follow the seed.
        self.q_net = self._network()
        self.q_net_target = self._network()
        self.q_net_target.load_state_dict(self.q_net.state_dict())
        self.q_net_target.requires_grad_(False)
        self.q_net.eval()  # dropout acts in the loss's forward only (see _gradient_step)
        self.q_net_target.eval()
        parameters, lr = self._parameter_groups(), self.lr_schedule(1.0)
        decay = {"weight_decay": config.weight_decay, "decoupled_weight_decay": config.decoupled_weight_decay}
        self.optimizer: torch.optim.Optimizer = (
            RowSparseAdam(parameters, lr=lr, **decay)
            if config.optimizer == "sparse_adam"
            else torch.optim.Adam(parameters, lr=lr, fused=self.device.type in ("cpu", "cuda"), **decay)
        )
        self.replay_buffer: ReplayMemory | None = None
        self._generator: torch.Generator | None = None  # the tensor draws (torch-backend env)
        self.target_values = TargetValues(self.q_net_target)  # learn picks the cached kind when it can
        self._n_calls = 0
        self._n_updates = 0

    def _parameter_groups(self) -> list[torch.nn.Parameter] | list[dict[str, Any]]:
        """The Q-network's parameters; with ``weight_decay``, the matrices in one group and the
        biases, which decay not (a bias is a movie's base rate, not what a ridge shrinks), in another."""
        parameters = list(self.q_net.parameters())
        if not self.config.weight_decay:
            return parameters  # one group, as every model saved before weight decay existed
        matrices = [param for param in parameters if param.dim() >= 2]
        vectors = [param for param in parameters if param.dim() < 2]
        groups: list[dict[str, Any]] = [{"params": matrices}] if matrices else []
        return groups + ([{"params": vectors, "weight_decay": 0.0}] if vectors else [])

    def __getattr__(self, name: str) -> Any:
        # SB3 models expose their hyperparameters as attributes (model.gamma); so do ours.
        config = self.__dict__.get("config")
        if config is not None and name in config.__dataclass_fields__:
            return getattr(config, name)
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    def _check_spaces(self, obs: gym.spaces.Space, action: gym.spaces.Space) -> tuple[Any, Any]:
        if not isinstance(action, gym.spaces.Discrete):
            raise ValueError(f"env: DQN needs a Discrete action space, got {action}")
        if not isinstance(obs, gym.spaces.Box):
            raise ValueError(f"env: DQN needs a Box observation space, got {obs}")
        return obs, action

    @staticmethod
    def _n_movies(action_space: Any) -> int:
        return int(action_space.n)

    def _network(self) -> QNetwork | ItemItemQNetwork:
        cfg = self.config
        flat = gym.spaces.Box(-np.inf, np.inf, shape=(self.obs_dim,), dtype=np.float32)
        if cfg.network == "item_item":
            return ItemItemQNetwork(flat, self.n_actions, cfg.input_normalization).to(self.device)
        if cfg.features_extractor is not None:
            extractor = EXTRACTORS[cfg.features_extractor](
                self.observation_space, **cfg.features_extractor_kwargs
            )
            net = QNetwork(self.observation_space, self.n_actions, cfg.net_arch, features_extractor=extractor)
            return net.to(self.device)
        net = QNetwork(flat, self.n_actions, cfg.net_arch, cfg.input_normalization, cfg.dropout, cfg.init)
        return net.to(self.device)

    def hyperparameters(self) -> dict[str, Any]:
        """Saved with the model and shown in TensorBoard's HParams tab (``net_arch`` as text there)."""
        return {"algo": self.algo_name, **self.config.to_json(), "seed": self.seed}

    # ------------------------------------------------------------------------- acting
    def q_values(self, observation: np.ndarray) -> np.ndarray:
        """Q-values ``(B, n_actions)`` float32 of a batch of observations (``(n_actions,)`` for one)."""
        obs = np.asarray(observation, dtype=np.float32)
        out = self._q_tensor(torch.as_tensor(obs.reshape(-1, self.obs_dim))).cpu().numpy()
        return out[0] if obs.ndim <= 1 else out

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

    def _act(self, observations: np.ndarray, deterministic: bool, masks: np.ndarray | None) -> np.ndarray:
        batch = observations.reshape(len(observations), self.obs_dim)
        if deterministic:
            return self._greedy_actions(batch, masks)
        return self._epsilon_greedy(batch, self.exploration_rate, masks)

    # ---------------------------------------------------- acting on tensors (torch-backend env)
    def _tensor_generator(self) -> torch.Generator:
        """The ``torch.Generator`` of the tensor draws, on the learner's device, seeded from the
        learner's own random stream (so from ``seed``)."""
        if self._generator is None:
            self._generator = torch.Generator(device=self.device)
            self._generator.manual_seed(int(self.rng.integers(2**62)))
        return self._generator

    def _tensor_acting(self, runner: TensorEnvRunner) -> tuple[Any, Any]:
        """``(random_actions, epsilon_greedy)`` over tensors, answering on the env's device: what
        ``learn`` acts with when the runner is a :class:`TensorEnvRunner`."""
        self._tensor_generator()
        device = runner.device
        return (
            lambda n, masks: self._random_tensor_actions(n, masks).to(device),
            lambda obs, epsilon, masks: self._epsilon_greedy_tensor(obs, epsilon, masks).to(device),
        )

    def _q_tensor(self, obs: torch.Tensor) -> torch.Tensor:
        """Q-values ``(B, n_actions)`` of a batch of observations, on the learner's device."""
        batch = obs.to(self.device, torch.float32).reshape(len(obs), self.obs_dim)
        with torch.no_grad():
            chunks = [self.q_net(batch[i : i + _CHUNK]) for i in range(0, len(batch), _CHUNK)]
        return torch.cat(chunks) if chunks else batch.new_zeros((0, self.n_actions))

    def _random_tensor_actions(self, n: int, masks: torch.Tensor | None) -> torch.Tensor:
        generator = self._tensor_generator()
        if masks is None:
            return torch.randint(0, self.n_actions, (n,), generator=generator, device=self.device)
        return torch.multinomial(masks.to(self.device).float(), 1, generator=generator).flatten()

    def _greedy_tensor_actions(self, obs: torch.Tensor, masks: torch.Tensor | None) -> torch.Tensor:
        q = self._q_tensor(obs)
        return (q if masks is None else q.masked_fill(~masks.to(self.device), -torch.inf)).argmax(dim=1)

    def _epsilon_greedy_tensor(
        self, obs: torch.Tensor, epsilon: float, masks: torch.Tensor | None
    ) -> torch.Tensor:
        explore = torch.rand(len(obs), generator=self._tensor_generator(), device=self.device) < epsilon
        actions = self._random_tensor_actions(len(obs), masks)
        return torch.where(explore, actions, self._greedy_tensor_actions(obs, masks))

    # ------------------------------------------------------------------------ training
    def td_targets(self, batch: ReplayBufferSamples) -> torch.Tensor:
        """``r + γ max_a' Q_target(s', a')`` per label, flat; no future after a terminal state (a
        truncated one keeps its bootstrap: ``dones`` holds terminations only). A row of several
        labels (SlateQ's slots) shares its row's future."""
        if self.config.gamma == 0.0:
            return batch.rewards.reshape(-1)  # nothing to bootstrap: skip the target network's pass
        future = (1.0 - batch.dones.reshape(-1)) * self.config.gamma * self.target_values(batch)
        return (batch.rewards.reshape(len(future), -1) + future[:, None]).reshape(-1)

    def q_taken(self, batch: ReplayBufferSamples) -> torch.Tensor:
        """``Q(s, a)`` of the batch's actions, flat: only the head rows of those actions."""
        return self.q_net.q_of(batch.observations, batch.actions.reshape(-1).long())

    def _gradient_step(self, batch: ReplayBufferSamples) -> None:
        """One Huber-loss step of ``Q(s, a)`` towards the TD targets, clipped as SB3 clips."""
        targets = self.td_targets(batch)
        self.q_net.train(True)  # dropout on for this forward only
        q = self.q_taken(batch)
        self.q_net.train(False)
        loss = F.smooth_l1_loss(q, targets)
        self.optimizer.zero_grad()
        loss.backward()
        clip_grad_norm(self.q_net.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        self._n_updates += 1
        self._record_loss(float(loss.item()))

    def _update_learning_rate(self) -> None:
        """SB3's ``_update_learning_rate``: the schedule at the current progress."""
        lr = float(self.lr_schedule(1.0 - self.num_timesteps / max(self._total_timesteps, 1)))
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def _record_train_extras(self) -> None:
        self.logger.record("train/n_updates", self._n_updates)
        self.logger.record("train/learning_rate", self.optimizer.param_groups[0]["lr"])

    # ---------------------------------------------- built before the loop (a subclass may replace)
    def _make_replay_buffer(self, runner: EnvRunner) -> ReplayMemory:
        """A :class:`CompactReplayBuffer`; an env that names its states (MovieLens-v0: the user)
        is replayed from state indices. Over a torch-backend env, tensors on the device."""
        if isinstance(runner, TensorEnvRunner):
            if self.config.buffer_size == 0:
                return FreshBatch(self.device)
            return TensorReplayBuffer(self.config.buffer_size, self.device, self._tensor_generator())
        replayed = runner.observations if runner.compact else None
        return CompactReplayBuffer(
            self.config.buffer_size or runner.n_envs, self.observation_space, self.action_space,
            device=self.device, observations_fn=replayed,
        )  # fmt: skip

    def _make_target_values(self, runner: EnvRunner) -> TargetValues:
        """``max_a' Q_target(s', a')``; looked up per state while the target network is frozen
        when the env names its states and target updates are hard."""
        if runner.compact and runner.n_states is not None and self.config.tau == 1.0:
            return StateTargetValues(self.q_net_target, runner.observations, runner.n_states)
        return TargetValues(self.q_net_target)

    def _labels(self, step: Any) -> Any:
        """What each transition of a step is taught: the env's reward."""
        return step.rewards

    # --------------------------------------------------------------------------- learn
    def learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int | None = 4,
        tb_log_name: str | None = None,
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> Self:
        """Collect ``total_timesteps`` env steps, training every ``train_freq`` steps (SB3's loop)."""
        cfg = self.config
        runner = self._runner_for_learning(reset_num_timesteps, cfg.use_masking)
        if self.replay_buffer is None:
            self.replay_buffer = self._make_replay_buffer(runner)
        buffer = self.replay_buffer
        self.target_values = self._make_target_values(runner)
        total_timesteps, callback = self._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name or self.algo_name, progress_bar
        )
        fresh = cfg.buffer_size == 0  # no replay: one step on each batch just collected
        gradient_steps = 1 if fresh else cfg.gradient_steps if cfg.gradient_steps >= 0 else cfg.train_freq
        train_every = 1 if fresh else cfg.train_freq
        target_every = max(cfg.target_update_interval // runner.n_envs, 1)
        random_actions, epsilon_greedy = (
            self._tensor_acting(runner) if isinstance(runner, TensorEnvRunner)
            else (self._random_actions, self._epsilon_greedy)
        )  # fmt: skip
        callback.on_training_start(locals(), globals())

        while self.num_timesteps < total_timesteps:
            # 1. act: uniform at random before learning_starts, then ε-greedy
            epsilon = self._update_exploration_rate()
            masks = runner.action_masks() if cfg.use_masking else None
            obs, states = runner.obs, runner.states
            if self.num_timesteps < cfg.learning_starts:
                actions = random_actions(runner.n_envs, masks)
            else:
                actions = epsilon_greedy(obs, epsilon, masks)

            # 2. step and remember (terminations only are terminal; a truncated episode goes on)
            step = runner.step(actions)
            self.num_timesteps += runner.n_envs
            keep, next_states = step.valid, step.next_states
            if states is not None and next_states is not None:
                states, next_states = states[keep], next_states[keep]
            buffer.add_transitions(obs[keep], step.next_obs[keep], actions[keep], self._labels(step)[keep],
                                   step.terminated[keep], states, next_states)  # fmt: skip
            self._n_calls += 1
            if self._n_calls % target_every == 0:
                polyak_update(self.q_net.parameters(), self.q_net_target.parameters(), cfg.tau)
                self.target_values.target_updated()

            # The names SB3's collect_rollouts exposes to callbacks (StopTrainingOnMaxEpisodes reads dones).
            new_obs, rewards, infos = runner.obs, step.rewards, step.infos
            dones = step.terminated | step.truncated
            callback.update_locals(locals())
            if not callback.on_step():
                break
            self._record_episodes(step.episodes, log_interval)

            # 3. learn: sample, targets, loss, clip, optimizer step
            if self._n_calls % train_every == 0 and self.num_timesteps > cfg.learning_starts and keep.any():
                self._update_learning_rate()
                for _ in range(gradient_steps):
                    self._gradient_step(buffer.latest() if fresh else buffer.sample(cfg.batch_size))

        self.dump_logs()
        callback.on_training_end()
        return self

    # ------------------------------------------------------------------------ save/load
    def save(self, path: str | Path) -> Path:
        """Write ``path`` (``.pt`` added when it has no suffix): the networks' and the optimizer's
        ``state_dict`` (no pickle) and the hyperparameters as JSON text; ``<path>.json`` is a copy
        for people (never read back). Both atomic. Returns the path."""
        target = Path(path) if Path(path).suffix else Path(path).with_suffix(".pt")
        meta = {
            "hyperparameters": self.hyperparameters(),
            "observation_shape": list(self.observation_space.shape),
            "action_space": self._action_space_json(),
            "num_timesteps": self.num_timesteps,
            "n_updates": self._n_updates,
        }
        if self.config.features_extractor is not None:  # a sequence extractor reads n_movies off the bound
            meta["observation_high"] = np.asarray(self.observation_space.high).tolist()
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

    def _action_space_json(self) -> list[int]:
        return [self.n_actions]

    @classmethod
    def _spaces_from_json(cls, meta: dict[str, Any]) -> tuple[gym.spaces.Space, gym.spaces.Space]:
        return saved_observation_space(meta), gym.spaces.Discrete(int(meta["action_space"][0]))

    @classmethod
    def load(cls, path: str | Path, env: gym.Env | VectorEnv | None = None, device: str = "auto") -> DQNAgent:
        """Load a model written by ``save`` (``torch.load(weights_only=True)``) onto ``device``."""
        target = Path(path)
        checkpoint = torch.load(target, map_location=get_device(device), weights_only=True)
        if not isinstance(checkpoint, dict) or "meta_json" not in checkpoint:
            raise ValueError(f"{target}: not a {cls.__name__} checkpoint (meta_json missing)")
        meta = json.loads(checkpoint["meta_json"])
        hyperparams = dict(meta["hyperparameters"])
        algo, seed = hyperparams.pop("algo", None), hyperparams.pop("seed", None)
        if algo != cls.algo_name:
            raise ValueError(f"{target}: a {algo} model, not {cls.algo_name}")
        saved = cls._spaces_from_json(meta)
        agent = cls(env, spaces=saved, device=device, seed=seed, **hyperparams)
        same_obs = agent.obs_dim == int(np.prod(saved[0].shape or ()))
        if not same_obs or agent._action_space_json() != meta["action_space"]:
            raise ValueError(
                f"{target}: saved for {saved[0].shape} observations and actions {meta['action_space']}, "
                f"the env has {agent.observation_space.shape} and {agent._action_space_json()}"
            )
        agent.q_net.load_state_dict(checkpoint["q_net"])
        agent.q_net_target.load_state_dict(checkpoint["q_net_target"])
        agent.optimizer.load_state_dict(checkpoint["optimizer"])
        agent.num_timesteps, agent._n_updates = int(meta["num_timesteps"]), int(meta["n_updates"])
        return agent


def saved_observation_space(meta: dict[str, Any]) -> gym.spaces.Box:
    """The saved observation space: its shape, and its upper bound where the model needs it."""
    shape = tuple(meta["observation_shape"])
    high = np.asarray(meta["observation_high"], dtype=np.float32) if "observation_high" in meta else np.inf
    return gym.spaces.Box(-np.inf, high, shape=shape, dtype=np.float32)
