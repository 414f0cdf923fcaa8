"""What the two hand-written learners share: env stepping, ε schedule, SB3 callbacks and logger.

``EnvRunner`` shows any Gymnasium env, single or vector, as ``n_envs`` parallel envs with arrays
in and out, so that ``QLearningAgent`` and ``DQNAgent`` each read as one loop. ``BaseLearner``
holds the SB3 plumbing: ``num_timesteps``, ``get_env()``, ``logger``, callbacks, progress bar and
the ``dump_logs`` of SB3's off-policy algorithms, so that every SB3 callback
(``CheckpointCallback``, ``EvalCallback``, ``StopTrainingOnMaxEpisodes`` ...) works unchanged.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from stable_baselines3.common.callbacks import (
    BaseCallback,
    CallbackList,
    ConvertCallback,
    ProgressBarCallback,
)
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from rlrec.utils.arrays import to_host
from rlrec.utils.logging import make_logger, record_hparams
from rlrec.utils.seeding import seed_everything

__all__ = ["BaseLearner", "EnvRunner", "MaybeCallback", "StepResult", "TensorEnvRunner", "make_runner"]

#: Episodes averaged in ``rollout/ep_rew_mean`` (SB3's ``stats_window_size`` default).
STATS_WINDOW = 100

#: A batch the runner hands over: a numpy array, or a tensor on the env's device (TensorEnvRunner).
Batch = Any

MaybeCallback = BaseCallback | list[BaseCallback] | Callable[[dict[str, Any], dict[str, Any]], bool] | None


# ------------------------------------------------------------------------------ env runner
@dataclass
class StepResult:
    """One ``env.step`` of every sub-env, as arrays of length ``n_envs``.

    ``next_obs`` / ``next_states`` are the true successors of the transitions (the final
    observation where an episode ended, as Gymnasium returns it on truncation too), not the
    reset observation the learner acts on next (that one is ``EnvRunner.obs``).
    ``valid`` is False for the extra step a vector env in ``NEXT_STEP`` autoreset mode spends on
    resetting a finished sub-env: those rows are not transitions and must not be learned from.
    """

    next_obs: Batch
    rewards: Batch
    terminated: Batch
    truncated: Batch
    valid: Batch
    next_states: np.ndarray | None
    next_masks: Batch | None
    infos: list[dict[str, Any]] | dict[str, Any]
    episodes: list[tuple[float, int]] = field(default_factory=list)

    def info_array(self, key: str) -> Any:
        """``info[key]`` of every sub-env stacked, ``(n_envs, ...)``: a float32 array, or a tensor
        on the env's device for :class:`TensorEnvRunner` (whose ``infos`` is the vector env's dict)."""
        if isinstance(self.infos, dict):
            return self.infos[key].float()
        return np.stack([np.asarray(info[key], np.float32) for info in self.infos])


def _info_of(infos: dict[str, Any], index: int) -> dict[str, Any]:
    """The info dict of sub-env ``index`` out of a vector env's dict of arrays (``_key`` masks)."""
    out: dict[str, Any] = {}
    for key, value in infos.items():
        if key.startswith("_"):
            continue
        present = infos.get(f"_{key}")
        if present is not None and not present[index]:
            continue
        out[key] = _info_of(value, index) if isinstance(value, dict) else value[index]
    return out


class EnvRunner:
    """Step a single ``gymnasium.Env`` or a ``gymnasium.vector.VectorEnv`` with arrays.

    The env is *compact* when it names its states: ``env.unwrapped`` has ``n_states`` and
    ``observations(states, out=None)``, and the info of ``reset`` / ``step`` carries ``"state"``
    (``MovieLensEnv``: the user index whose observation was returned). ``states`` and
    ``StepResult.next_states`` are then int64 arrays, else ``None``.

    :param env: the environment. A single env is reset by the runner when an episode ends; a
        vector env resets its sub-envs itself (all three Gymnasium autoreset modes are handled).
    :param use_masking: also read ``action_masks()`` after each step (next-state masks).
    """

    def __init__(self, env: gym.Env | VectorEnv, use_masking: bool = False) -> None:
        self.env = env
        self.is_vector = isinstance(env, VectorEnv)
        self.n_envs = int(env.num_envs) if isinstance(env, VectorEnv) else 1
        if isinstance(env, VectorEnv):
            self.observation_space: gym.Space = env.single_observation_space
            self.action_space: gym.Space = env.single_action_space
            self.autoreset_mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        else:
            self.observation_space = env.observation_space
            self.action_space = env.action_space
            self.autoreset_mode = None
        self.use_masking = use_masking
        base = env.unwrapped
        self.n_states: int | None = getattr(base, "n_states", None)
        self._observations_fn: Callable[..., np.ndarray] | None = getattr(base, "observations", None)
        self.compact = False
        self.obs: Batch = np.empty(0)
        self.states: np.ndarray | None = None
        self.infos: list[dict[str, Any]] = []
        self._pending_reset = np.zeros(self.n_envs, dtype=bool)
        self._ep_return = [0.0] * self.n_envs
        self._ep_len = [0] * self.n_envs

    # ---------------------------------------------------------------- states
    def _states_from(self, infos: list[dict[str, Any]]) -> np.ndarray | None:
        if not self.compact:
            return None
        return np.fromiter((info["state"] for info in infos), dtype=np.int64, count=len(infos))

    def observations(self, states: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Observations of compact states through ``env.unwrapped.observations``."""
        if self._observations_fn is None:
            raise ValueError("the env has no observations(states) method: it is not compact")
        return self._observations_fn(states, out=out)

    # ----------------------------------------------------------------- reset
    def reset(self, seed: int | None = None) -> np.ndarray:
        if isinstance(self.env, VectorEnv):
            obs, vinfos = to_host(self.env.reset(seed=seed))
            self.infos = [_info_of(vinfos, i) for i in range(self.n_envs)]
            self.obs = np.array(obs, copy=True)
        else:
            obs, info = self.env.reset(seed=seed)
            self.infos = [info]
            # Copies throughout: an env may write its next observation into the array it returned.
            self.obs = np.array(obs, copy=True)[None]
        self.compact = (
            self.n_states is not None
            and self._observations_fn is not None
            and all("state" in info for info in self.infos)
        )
        self.states = self._states_from(self.infos)
        self._pending_reset[:] = False
        self._ep_return = [0.0] * self.n_envs
        self._ep_len = [0] * self.n_envs
        return self.obs

    def action_masks(self) -> np.ndarray | None:
        """``(n_envs, n_actions)`` bool masks of the current observations, or None when the env has none."""
        if isinstance(self.env, VectorEnv):
            own = getattr(self.env, "action_masks", None)
            if own is not None:
                return np.asarray(to_host(own()), dtype=bool).reshape(self.n_envs, -1)
            call = getattr(self.env, "call", None)  # SyncVectorEnv / AsyncVectorEnv
            if call is None:
                return None
            try:
                return np.stack([np.asarray(m, dtype=bool) for m in call("action_masks")])
            except AttributeError:
                return None
        try:
            masks = self.env.get_wrapper_attr("action_masks")
        except AttributeError:
            return None
        return np.asarray(masks(), dtype=bool)[None]

    # ------------------------------------------------------------------ step
    def step(self, actions: np.ndarray) -> StepResult:
        """Step every sub-env; afterwards ``obs`` / ``states`` are what to act on next."""
        if isinstance(self.env, VectorEnv):
            return self._step_vector(actions)
        return self._step_single(actions[0])

    def _step_single(self, action: Any) -> StepResult:
        env = self.env
        assert not isinstance(env, VectorEnv)
        obs, reward, terminated, truncated, info = env.step(action)
        next_obs = np.array(obs, copy=True)[None]
        result = StepResult(
            next_obs=next_obs,
            rewards=np.array([reward], dtype=np.float32),
            terminated=np.array([terminated]),
            truncated=np.array([truncated]),
            valid=np.ones(1, dtype=bool),
            next_states=self._states_from([info]),
            next_masks=self.action_masks() if self.use_masking else None,
            infos=[info],
        )
        self._track_episodes(result)
        if terminated or truncated:
            obs, info = env.reset()
            self.obs, self.infos = np.array(obs, copy=True)[None], [info]
        else:
            self.obs, self.infos = next_obs, [info]
        self.states = self._states_from(self.infos)
        return result

    def _step_vector(self, actions: np.ndarray) -> StepResult:
        env = self.env
        assert isinstance(env, VectorEnv)
        # A torch-backend env's tensors cross to the host here, once per step.
        obs, rewards, terminated, truncated, vinfos = to_host(env.step(actions))
        obs = np.array(obs, copy=True)
        infos = [_info_of(vinfos, i) for i in range(self.n_envs)]
        valid = ~self._pending_reset
        next_obs = obs.copy()
        final_infos = list(infos)
        done = np.logical_or(terminated, truncated)
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            # The sub-env was reset inside step: the transition's successor sits in final_obs / final_info.
            for i in np.flatnonzero(done):
                next_obs[i] = infos[i]["final_obs"]
                final_infos[i] = infos[i].get("final_info", {})
        result = StepResult(
            next_obs=next_obs,
            rewards=np.asarray(rewards, dtype=np.float32),
            terminated=np.asarray(terminated, dtype=bool),
            truncated=np.asarray(truncated, dtype=bool),
            valid=valid,
            next_states=self._states_from(final_infos),
            # SAME_STEP: the masks read now are those of the reset observation; the final one is lost.
            next_masks=self.action_masks() if self.use_masking else None,
            infos=final_infos,
        )
        self._track_episodes(result)
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            self._pending_reset = done & valid
        elif self.autoreset_mode == AutoresetMode.DISABLED and done.any():
            obs, vinfos = to_host(env.reset(options={"reset_mask": done}))
            obs = np.array(obs, copy=True)
            infos = [_info_of(vinfos, i) if done[i] else infos[i] for i in range(self.n_envs)]
        self.obs, self.infos = obs, infos
        self.states = self._states_from(infos)
        return result

    def _track_episodes(self, result: StepResult) -> None:
        # Python scalars: for one env, numpy on length-1 arrays costs more than the env step.
        returns, lengths = self._ep_return, self._ep_len
        done = (result.terminated | result.truncated).tolist()
        for i, (valid, reward) in enumerate(zip(result.valid.tolist(), result.rewards.tolist())):
            if not valid:
                continue
            returns[i] += reward
            lengths[i] += 1
            if done[i]:
                result.episodes.append((returns[i], lengths[i]))
                returns[i], lengths[i] = 0.0, 0


class TensorEnvRunner(EnvRunner):
    """:class:`EnvRunner` over a torch-backend vector env (``backend="torch"``): observations,
    actions, rewards, terminations and masks stay tensors on the env's device, so a learner that
    acts and learns with tensors never copies a batch to the host. Only the scalars that control
    the loop cross (whether any session ended; the returns of those that did, for the logs).

    ``infos`` and :attr:`StepResult.infos` are the vector env's dict of tensors (Gymnasium's
    vector layout), the step's own values under ``"same_step"`` autoreset (``final_info``).
    """

    def __init__(self, env: VectorEnv, use_masking: bool = False) -> None:
        super().__init__(env, use_masking=use_masking)
        self.device: torch.device = env.unwrapped.device  # type: ignore[attr-defined]
        self.obs = torch.empty(0, device=self.device)
        self._pending = torch.zeros(self.n_envs, dtype=torch.bool, device=self.device)
        self._returns = torch.zeros(self.n_envs, dtype=torch.float64, device=self.device)
        self._lengths = torch.zeros(self.n_envs, dtype=torch.int64, device=self.device)

    def reset(self, seed: int | None = None) -> Batch:
        obs, infos = self.env.reset(seed=seed)
        self.obs, self.states = obs.clone(), None
        self.infos = infos  # type: ignore[assignment]  # the vector env's dict of tensors
        self._pending.zero_()
        self._returns.zero_()
        self._lengths.zero_()
        return self.obs

    def action_masks(self) -> Batch:
        masks: torch.Tensor = self.env.unwrapped.action_masks()  # type: ignore[union-attr]
        return masks.reshape(self.n_envs, -1)

    def step(self, actions: Any) -> StepResult:
        step: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]
        step = self.env.step(actions)  # type: ignore[assignment]
        obs, rewards, terminated, truncated, infos = step
        # Copies: the env writes its next observation into the tensor it returned.
        obs = obs.clone()
        valid, done = ~self._pending, terminated | truncated
        next_obs, step_infos = obs, infos
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            step_infos = infos["final_info"]
            ended = torch.nonzero(done).flatten().tolist()
            if ended:
                next_obs = obs.clone()
                next_obs[ended] = torch.stack([infos["final_obs"][i] for i in ended])
        result = StepResult(
            next_obs=next_obs,
            rewards=rewards.float(),
            terminated=terminated,
            truncated=truncated,
            valid=valid,
            next_states=None,
            next_masks=self.action_masks() if self.use_masking else None,
            infos=step_infos,
        )
        self._returns += torch.where(valid, rewards.double(), 0.0)
        self._lengths += valid.long()
        finished = torch.nonzero(done & valid).flatten()
        if len(finished):
            result.episodes.extend(
                zip(self._returns[finished].tolist(), self._lengths[finished].tolist(), strict=True)
            )
            self._returns[finished], self._lengths[finished] = 0.0, 0
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            self._pending = done & valid
        self.obs, self.infos = obs, infos  # type: ignore[assignment]
        return result


def make_runner(env: gym.Env | VectorEnv, use_masking: bool = False, tensors: bool = False) -> EnvRunner:
    """The runner for ``env``: with ``tensors`` (a learner that acts and learns on tensors), a
    :class:`TensorEnvRunner` for a torch-backend vector env, whose tensors then stay on the
    device; an :class:`EnvRunner` (numpy arrays, one host copy per step) otherwise."""
    if tensors and isinstance(env, VectorEnv) and getattr(env.unwrapped, "backend", None) == "torch":
        return TensorEnvRunner(env, use_masking=use_masking)
    return EnvRunner(env, use_masking=use_masking)


# ----------------------------------------------------------------------------- base learner
class BaseLearner:
    """SB3 plumbing for a hand-written learner (mirrors ``OffPolicyAlgorithm``'s bookkeeping).

    :param env: a Gymnasium env (single or ``VectorEnv``), or None for a loaded model used only
        to predict.
    :param exploration_fraction: fraction of ``total_timesteps`` over which ε decays linearly
        (SB3 DQN's default 0.1).
    :param exploration_initial_eps: ε at the start (SB3's 1.0).
    :param exploration_final_eps: ε after the decay (SB3's 0.05).
    :param tensorboard_log: folder of TensorBoard runs (``<folder>/<tb_log_name>_<n>/``); None: no files.
    :param verbose: 1 prints SB3's log table at every dump.
    :param seed: seed of every random draw (``rlrec.utils.seeding.seed_everything``) and of the
        first ``env.reset``.
    """

    #: True for a learner whose loop works on tensors too: it then steps a torch-backend env
    #: through :class:`TensorEnvRunner` (nothing copied to the host), else through numpy.
    tensor_native: ClassVar[bool] = False

    def __init__(
        self,
        env: gym.Env | VectorEnv | None,
        *,
        exploration_fraction: float,
        exploration_initial_eps: float,
        exploration_final_eps: float,
        tensorboard_log: str | None,
        verbose: int,
        seed: int | None,
    ) -> None:
        self.env = env
        self.exploration_fraction = exploration_fraction
        self.exploration_initial_eps = exploration_initial_eps
        self.exploration_final_eps = exploration_final_eps
        # A fraction of 0 means no decay at all: ε is the final value from the first step.
        self.exploration_schedule = LinearSchedule(
            exploration_final_eps if exploration_fraction == 0 else exploration_initial_eps,
            exploration_final_eps,
            max(exploration_fraction, 1e-12),
        )
        self.exploration_rate = exploration_initial_eps
        self.tensorboard_log = tensorboard_log
        self.verbose = verbose
        self.seed = seed
        self.rng = seed_everything(seed)
        self.num_timesteps = 0
        self._total_timesteps = 0
        self._num_timesteps_at_start = 0
        self._episode_num = 0
        self.start_time = time.time_ns()
        self.ep_info_buffer: deque[tuple[float, int]] = deque(maxlen=STATS_WINDOW)
        self._logger: Logger | None = None
        self._custom_logger = False
        self._runner: EnvRunner | None = None
        self._vec_view: VecEnv | None = None
        self._loss_sum = 0.0
        self._loss_count = 0

    # ------------------------------------------------------------- SB3 API
    @property
    def logger(self) -> Logger:
        """SB3's ``Logger`` of the current run (a silent one before ``learn``)."""
        if self._logger is None:
            self._logger = make_logger(None, "", verbose=0)
        return self._logger

    def set_logger(self, logger: Logger) -> None:
        """SB3's ``set_logger``: ``learn`` then writes there instead of opening its own run folder."""
        self._logger = logger
        self._custom_logger = True

    def get_env(self) -> VecEnv | VectorEnv | None:
        """The training env as callbacks expect it: a vector env with ``num_envs``.

        A single env is shown through a ``DummyVecEnv`` view (``ProgressBarCallback`` and
        ``EvalCallback`` read ``num_envs`` / the VecEnv type); the learner itself steps the env
        directly, never through the view.
        """
        if self.env is None or isinstance(self.env, VectorEnv):
            return self.env
        if self._vec_view is None:
            single = self.env
            self._vec_view = DummyVecEnv([lambda: single])
        return self._vec_view

    def get_vec_normalize_env(self) -> None:
        """SB3's hook for ``VecNormalize`` statistics (read by ``EvalCallback``): we have none."""
        return None

    def hyperparameters(self) -> dict[str, Any]:
        """Hyperparameters saved with the model and recorded for TensorBoard's HParams tab."""
        raise NotImplementedError

    #: Shape of one observation: tells ``predict`` one observation from a batch (None: 1-D or less).
    obs_shape: tuple[int, ...] | None = None

    def predict(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
        action_masks: np.ndarray | None = None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """SB3's ``predict`` for one observation or a batch: the greedy actions, or ε-greedy at the
        current ``exploration_rate`` when not ``deterministic``; returns ``(actions, None)``."""
        obs = np.asarray(observation)
        single = obs.ndim <= 1 if self.obs_shape is None else obs.shape == self.obs_shape
        batch = obs[None] if single else obs
        masks = None if action_masks is None else np.asarray(action_masks, dtype=bool).reshape(len(batch), -1)
        actions = self._act(batch, deterministic, masks)
        return (actions[0] if single else actions), None

    def _act(self, observations: np.ndarray, deterministic: bool, masks: np.ndarray | None) -> np.ndarray:
        """Actions for a batch of observations (what :meth:`predict` asks each learner)."""
        raise NotImplementedError

    # --------------------------------------------------------- learn setup
    def _runner_for_learning(self, reset_num_timesteps: bool, use_masking: bool) -> EnvRunner:
        if self.env is None:
            raise ValueError("learn: this model has no env; pass env= to the constructor or to load()")
        if self._runner is None or self._runner.env is not self.env:
            self._runner = make_runner(self.env, use_masking, tensors=self.tensor_native)
            reset_num_timesteps = True
        if reset_num_timesteps or len(self._runner.obs) == 0:
            # Seed the env only on the first reset, as SB3 does: later resets continue its stream.
            self._runner.reset(seed=self.seed if self.num_timesteps == 0 else None)
        return self._runner

    def _setup_learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback,
        reset_num_timesteps: bool,
        tb_log_name: str,
        progress_bar: bool,
    ) -> tuple[int, BaseCallback]:
        """SB3's ``_setup_learn``: counters, run folder, hyperparameters and the callback chain."""
        if total_timesteps < 0:
            raise ValueError(f"total_timesteps must be >= 0, got {total_timesteps}")
        self.start_time = time.time_ns()
        if reset_num_timesteps:
            self.num_timesteps = 0
            self._episode_num = 0
            self.ep_info_buffer = deque(maxlen=STATS_WINDOW)
        else:
            total_timesteps += self.num_timesteps
        self._total_timesteps = total_timesteps
        self._num_timesteps_at_start = self.num_timesteps
        self._loss_sum, self._loss_count = 0.0, 0
        if not self._custom_logger:
            # Used on its own, the learner records its hyperparameters itself; under rlrec train
            # (which sets the logger) the run records the same keys for every learner instead.
            self._logger = make_logger(self.tensorboard_log, tb_log_name, self.verbose, reset_num_timesteps)
            record_hparams(self._logger, self.hyperparameters())
            self._logger.dump(self.num_timesteps)

        if isinstance(callback, list):
            callback = CallbackList(callback)
        if callback is None:
            callback = CallbackList([])
        elif not isinstance(callback, BaseCallback):
            callback = ConvertCallback(callback)
        if progress_bar:
            callback = CallbackList([callback, ProgressBarCallback()])
        callback.init_callback(self)  # type: ignore[arg-type]
        return total_timesteps, callback

    # ------------------------------------------------------------- ε schedule
    def _update_exploration_rate(self) -> float:
        """ε for the next action: linear in the progress through ``total_timesteps`` (SB3's rule)."""
        total = max(self._total_timesteps, 1)
        self.exploration_rate = float(self.exploration_schedule(1.0 - self.num_timesteps / total))
        return self.exploration_rate

    # ----------------------------------------------------------------- logs
    def _record_loss(self, value: float) -> None:
        self._loss_sum += value
        self._loss_count += 1

    def _record_episodes(self, episodes: list[tuple[float, int]], log_interval: int | None) -> None:
        """Keep finished episodes; dump the logs every ``log_interval`` episodes, like SB3."""
        for episode in episodes:
            self.ep_info_buffer.append(episode)
            self._episode_num += 1
            if log_interval is not None and self._episode_num % log_interval == 0:
                self.dump_logs()

    def _record_train_extras(self) -> None:
        """Learner-specific ``train/*`` values recorded at every dump."""

    def dump_logs(self) -> None:
        """Write SB3 DQN's tags: rollout/*, time/*, train/loss, at step ``num_timesteps``.

        Unlike SB3, ``time/total_timesteps`` and ``time/episodes`` also go to TensorBoard.
        """
        elapsed = max((time.time_ns() - self.start_time) / 1e9, sys.float_info.epsilon)
        fps = int((self.num_timesteps - self._num_timesteps_at_start) / elapsed)
        logger = self.logger
        logger.record("time/episodes", self._episode_num)
        if self.ep_info_buffer:
            logger.record("rollout/ep_rew_mean", float(np.mean([r for r, _ in self.ep_info_buffer])))
            logger.record("rollout/ep_len_mean", float(np.mean([n for _, n in self.ep_info_buffer])))
        logger.record("rollout/exploration_rate", self.exploration_rate)
        logger.record("time/fps", fps)
        logger.record("time/time_elapsed", int(elapsed), exclude="tensorboard")
        logger.record("time/total_timesteps", self.num_timesteps)
        if self._loss_count:
            logger.record("train/loss", self._loss_sum / self._loss_count)
            self._loss_sum, self._loss_count = 0.0, 0
        self._record_train_extras()
        logger.dump(step=self.num_timesteps)
