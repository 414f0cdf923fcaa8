"""Tabular Q-learning with a dense Q-table, the seed's learner made fast and SB3-compatible.

Update rule (the seed's, with α = ``learning_rate``)::

    Q(s, a) <- (1 - α) Q(s, a) + α (r + γ max_a' Q(s', a'))

with the target ``r`` alone when the episode *terminated* (no future), and bootstrapping kept
when it was only *truncated* by a time limit (the future exists, we just stopped looking).

States. The table is a dense float32 array ``(n_states, n_actions)``; a state's row is found by
a *state key*:

* ``"env"``: the env names its states (``env.unwrapped.n_states`` + ``observations()`` and
  ``info["state"]``), e.g. ``MovieLensEnv`` whose state is the user index: one row per user.
* ``"discrete"``: a ``Discrete`` observation space; the observation is the key.
* ``"hash"``: any other observation, when ``n_states`` is given: a stable 64-bit hash (BLAKE2b)
  of the observation's bytes modulo ``n_states``, so unrelated observations may share a row
  (never chosen silently: without ``n_states`` such an env is refused).
* a callable ``state_key(obs, info) -> int`` in ``[0, n_states)``.

``predict(obs)`` in ``"env"`` mode maps an observation back to its state through a table of the
hashes of every state's observation (built once from ``env.unwrapped.observations`` and saved
with the model); ``predict_state(states)`` skips that step.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import VectorEnv

from rlrec.agents.base import BaseLearner, EnvRunner, MaybeCallback
from rlrec.utils.io import load_npz, save_npz

__all__ = ["DEFAULT_HASH_STATES", "QLearningAgent", "observation_digest"]

#: Table rows when states are hashed (``"hash"`` mode or a custom ``state_key``) and no size is given.
DEFAULT_HASH_STATES = 4096
_DIGEST_CHUNK = 256

StateKey = Callable[[Any, dict[str, Any]], int]


def observation_digest(observation: np.ndarray, dtype: np.dtype | type = np.float32) -> int:
    """A stable 64-bit hash of an observation's bytes (Python's ``hash`` changes between runs)."""
    raw = np.ascontiguousarray(observation, dtype=dtype).tobytes()
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "little")


class QLearningAgent(BaseLearner):
    """ε-greedy tabular Q-learning over a dense ``(n_states, n_actions)`` float32 table.

    :param env: a Gymnasium env with a ``Discrete`` action space (single or ``VectorEnv``), or
        None for a model that only predicts (see ``load``).
    :param learning_rate: α of the update rule (the seed's 0.1).
    :param gamma: discount γ (the seed's 0.99).
    :param exploration_fraction: see ``BaseLearner`` (SB3 DQN's 0.1).
    :param exploration_initial_eps: SB3's 1.0.
    :param exploration_final_eps: SB3's 0.05.
    :param state_key: a callable ``(obs, info) -> int`` naming the table row, or None to pick the
        mode from the env (``"env"``, then ``"discrete"``, then ``"hash"``, see the module doc).
    :param n_states: table rows; only for ``"hash"`` mode (required there) or a custom
        ``state_key`` (default ``DEFAULT_HASH_STATES``). In ``"env"`` mode it is
        ``env.unwrapped.n_states``.
    :param use_masking: restrict actions (and the max of the target) to ``env.action_masks()``.
    :param tensorboard_log: see ``BaseLearner``.
    :param verbose: see ``BaseLearner``.
    :param seed: see ``BaseLearner``; same seed => same Q-table after the same steps.
    :param n_actions: only for ``env=None``: the number of actions.
    """

    def __init__(
        self,
        env: gym.Env | VectorEnv | None,
        learning_rate: float = 0.1,
        gamma: float = 0.99,
        exploration_fraction: float = 0.1,
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.05,
        state_key: StateKey | None = None,
        n_states: int | None = None,
        use_masking: bool = False,
        tensorboard_log: str | None = None,
        verbose: int = 0,
        seed: int | None = None,
        n_actions: int | None = None,
        _key_mode: str | None = None,
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
        if not 0.0 < learning_rate <= 1.0:
            raise ValueError(f"learning_rate must be in (0, 1], got {learning_rate}")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}")
        self.learning_rate = float(learning_rate)
        self.gamma = float(gamma)
        self.use_masking = use_masking
        self.state_key = state_key
        # Shape and dtype of one observation: to tell one observation from a batch, and to hash.
        self.obs_shape: tuple[int, ...] | None = None
        self.obs_dtype: np.dtype = np.dtype(np.float32)
        if env is not None:
            probe = EnvRunner(env)
            if not isinstance(probe.action_space, gym.spaces.Discrete):
                raise ValueError(f"env: Q-learning needs a Discrete action space, got {probe.action_space}")
            space = probe.observation_space
            self.obs_shape = tuple(space.shape) if space.shape is not None else None
            self.obs_dtype = np.dtype(space.dtype) if space.dtype is not None else np.dtype(np.int64)
            n_actions = int(probe.action_space.n)
            self.key_mode, n_states = self._resolve_key_mode(probe, state_key, n_states)
        else:
            if n_actions is None or n_states is None or _key_mode is None:
                raise ValueError("without env, n_actions, n_states and the key mode are required")
            self.key_mode = _key_mode
        self.n_actions = int(n_actions)
        self.n_states = int(n_states)
        self.q_table = np.zeros((self.n_states, self.n_actions), dtype=np.float32)
        # "env" mode: hash of each state's observation -> state, built lazily for predict(obs).
        self._state_digests: np.ndarray | None = None
        self._digest_to_state: dict[int, int] | None = None

    @staticmethod
    def _resolve_key_mode(
        probe: EnvRunner, state_key: StateKey | None, n_states: int | None
    ) -> tuple[str, int]:
        if state_key is not None:
            return "custom", int(n_states or DEFAULT_HASH_STATES)
        if probe.n_states is not None and probe._observations_fn is not None:
            return "env", int(probe.n_states)
        if isinstance(probe.observation_space, gym.spaces.Discrete):
            return "discrete", int(probe.observation_space.n)
        if n_states is None:
            # Hashing unrelated observations into shared rows is a choice the caller must make.
            raise ValueError(
                "env: its observations name no state (no n_states / observations(), not Discrete); "
                "pass n_states= to hash them into a table of that many rows, or state_key="
            )
        return "hash", int(n_states)

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "algo": "qlearning",
            "learning_rate": self.learning_rate,
            "gamma": self.gamma,
            "exploration_fraction": self.exploration_fraction,
            "exploration_initial_eps": self.exploration_initial_eps,
            "exploration_final_eps": self.exploration_final_eps,
            "n_states": self.n_states,
            "n_actions": self.n_actions,
            "key_mode": self.key_mode,
            "use_masking": self.use_masking,
            "seed": self.seed,
        }

    # ------------------------------------------------------------------------ state keys
    def _key(self, observation: Any, info: dict[str, Any]) -> int:
        """Row of one observation (with its info when there is one)."""
        if self.key_mode == "env":
            if "state" in info:
                return int(info["state"])
            return self._state_of_observation(observation)
        if self.key_mode == "discrete":
            return int(observation)
        if self.key_mode == "hash":
            return observation_digest(observation, self.obs_dtype) % self.n_states
        assert self.state_key is not None, "a custom key mode needs state_key= (pass it to load())"
        key = int(self.state_key(observation, info))
        if not 0 <= key < self.n_states:
            raise ValueError(f"state_key returned {key}, outside the table's [0, {self.n_states})")
        return key

    def _state_of_observation(self, observation: np.ndarray) -> int:
        index = self._state_index()
        state = index.get(observation_digest(observation, self.obs_dtype))
        if state is None:
            raise ValueError(
                "observation matches no state of the env (not one of env.unwrapped.observations()); "
                "use predict_state(states) instead"
            )
        return state

    def _state_index(self) -> dict[int, int]:
        """Hash of every state's observation -> state; identical observations keep the lowest state."""
        if self._digest_to_state is None:
            if self._state_digests is None:
                self._state_digests = self._compute_state_digests()
            index: dict[int, int] = {}
            for state, digest in enumerate(self._state_digests.tolist()):
                index.setdefault(int(digest), state)
            self._digest_to_state = index
        return self._digest_to_state

    def _compute_state_digests(self) -> np.ndarray:
        if self.env is None:
            raise ValueError("predict(obs) needs the env (or a saved model) to map observations to states")
        observations = self.env.unwrapped.observations  # type: ignore[union-attr]
        digests = np.empty(self.n_states, dtype=np.uint64)
        for start in range(0, self.n_states, _DIGEST_CHUNK):
            rows = observations(np.arange(start, min(start + _DIGEST_CHUNK, self.n_states)))
            for offset, row in enumerate(rows):
                digests[start + offset] = observation_digest(row, self.obs_dtype)
        return digests

    def _keys_now(self, runner: EnvRunner) -> np.ndarray:
        if runner.states is not None and self.key_mode == "env":
            return runner.states
        return np.array([self._key(runner.obs[i], runner.infos[i]) for i in range(runner.n_envs)])

    def _next_keys(
        self, runner: EnvRunner, next_obs: np.ndarray, next_states: np.ndarray | None, infos: list
    ) -> np.ndarray:
        if next_states is not None and self.key_mode == "env":
            return next_states
        return np.array([self._key(next_obs[i], infos[i]) for i in range(runner.n_envs)])

    # ---------------------------------------------------------------------------- acting
    def _greedy(self, state: int, mask: np.ndarray | None) -> int:
        """Highest-Q action of ``state``; ties broken uniformly at random (all-zero rows at the start)."""
        row = self.q_table[state]
        if mask is not None:
            row = np.where(mask, row, -np.inf)
        best = np.flatnonzero(row == row.max())
        return int(best[0] if len(best) == 1 else best[self.rng.integers(len(best))])

    def _explore(self, mask: np.ndarray | None) -> int:
        if mask is None:
            return int(self.rng.integers(self.n_actions))
        return int(self.rng.choice(np.flatnonzero(mask)))

    def _epsilon_greedy(self, states: np.ndarray, epsilon: float, masks: np.ndarray | None) -> np.ndarray:
        actions = np.empty(len(states), dtype=np.int64)
        for i, state in enumerate(states):
            mask = None if masks is None else masks[i]
            actions[i] = (
                self._explore(mask) if self.rng.random() < epsilon else self._greedy(int(state), mask)
            )
        return actions

    def predict_state(
        self,
        states: np.ndarray | int,
        deterministic: bool = True,
        action_masks: np.ndarray | None = None,
    ) -> np.ndarray:
        """Actions for table rows: the greedy one (lowest index among ties, so it is repeatable), or
        ε-greedy at the current ``exploration_rate`` when ``deterministic=False``."""
        rows = np.atleast_1d(np.asarray(states, dtype=np.int64))
        q = self.q_table[rows]
        if action_masks is not None:
            q = np.where(np.asarray(action_masks, dtype=bool).reshape(len(rows), -1), q, -np.inf)
        actions = q.argmax(axis=1)
        if not deterministic:
            for i in np.flatnonzero(self.rng.random(len(rows)) < self.exploration_rate):
                mask = (
                    None
                    if action_masks is None
                    else np.asarray(action_masks, dtype=bool).reshape(len(rows), -1)[i]
                )
                actions[i] = self._explore(mask)
        return actions

    def observations_to_states(self, observation: np.ndarray) -> np.ndarray:
        """Table rows of a batch of observations (``"env"`` mode: through the observation hashes)."""
        return np.array([self._key(obs, {}) for obs in observation], dtype=np.int64)

    def _act(self, observations: np.ndarray, deterministic: bool, masks: np.ndarray | None) -> np.ndarray:
        return self.predict_state(self.observations_to_states(observations), deterministic, masks)

    # ---------------------------------------------------------------------------- update
    def update(
        self,
        state: int,
        action: int,
        reward: float,
        next_state: int,
        terminated: bool,
        next_mask: np.ndarray | None = None,
    ) -> float:
        """One Q-learning update; returns the TD error ``target - Q(s, a)`` before the update."""
        if terminated:
            target = reward
        else:
            next_row = self.q_table[next_state] if next_mask is None else self.q_table[next_state][next_mask]
            target = reward + self.gamma * float(next_row.max()) if next_row.size else reward
        current = float(self.q_table[state, action])
        self.q_table[state, action] = (1.0 - self.learning_rate) * current + self.learning_rate * target
        return target - current

    # ----------------------------------------------------------------------------- learn
    def learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int | None = 4,
        tb_log_name: str = "qlearning",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> QLearningAgent:
        """Run ``total_timesteps`` env steps, updating the table after each transition.

        Logs SB3 DQN's tags every ``log_interval`` episodes and at the end; ``train/loss`` is
        the mean |TD error| since the previous dump.
        """
        runner = self._runner_for_learning(reset_num_timesteps, self.use_masking)
        total_timesteps, callback = self._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        callback.on_training_start(locals(), globals())

        while self.num_timesteps < total_timesteps:
            epsilon = self._update_exploration_rate()
            states = self._keys_now(runner)
            masks = runner.action_masks() if self.use_masking else None
            actions = self._epsilon_greedy(states, epsilon, masks)

            step = runner.step(actions)
            infos = step.infos
            assert isinstance(infos, list)  # a numpy runner (tabular Q is not tensor_native)
            next_states = self._next_keys(runner, step.next_obs, step.next_states, infos)
            for i in np.flatnonzero(step.valid):
                next_mask = None if step.next_masks is None else step.next_masks[i]
                td_error = self.update(
                    int(states[i]),
                    int(actions[i]),
                    float(step.rewards[i]),
                    int(next_states[i]),
                    bool(step.terminated[i]),
                    next_mask,
                )
                self._record_loss(abs(td_error))
            self.num_timesteps += runner.n_envs

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

        self.dump_logs()
        callback.on_training_end()
        return self

    # ------------------------------------------------------------------------- save/load
    def save(self, path: str | Path) -> Path:
        """Write the table and hyperparameters to one ``.npz`` (no pickle); returns its path.

        In ``"env"`` mode the hashes of the states' observations go along, so that a model
        loaded without its env still maps observations to states.
        """
        target = Path(path)
        if not target.suffix:
            target = target.with_suffix(".npz")
        arrays: dict[str, np.ndarray] = {
            "q_table": self.q_table,
            "hparams": np.array(json.dumps(self.hyperparameters())),
            "num_timesteps": np.array(self.num_timesteps, dtype=np.int64),
            "obs_shape": np.array(self.obs_shape if self.obs_shape is not None else [-1], dtype=np.int64),
            "obs_dtype": np.array(self.obs_dtype.str),
        }
        if self.key_mode == "env" and (self._state_digests is not None or self.env is not None):
            self._state_index()
            assert self._state_digests is not None
            arrays["state_digests"] = self._state_digests
        save_npz(target, **arrays)
        return target

    @classmethod
    def load(
        cls,
        path: str | Path,
        env: gym.Env | VectorEnv | None = None,
        state_key: StateKey | None = None,
        device: str = "cpu",
    ) -> QLearningAgent:
        """Load a model written by ``save``; ``env`` (optional) must have the same sizes.

        :param device: SB3's ``load`` argument, accepted so every learner loads alike; the table
            is a numpy array and stays on the CPU.
        """
        arrays = load_npz(path)
        if "q_table" not in arrays or "hparams" not in arrays:
            raise ValueError(f"{path}: not a QLearningAgent file (q_table/hparams missing)")
        hparams = json.loads(str(arrays["hparams"]))
        table = arrays["q_table"]
        agent = cls(
            env,
            learning_rate=hparams["learning_rate"],
            gamma=hparams["gamma"],
            exploration_fraction=hparams["exploration_fraction"],
            exploration_initial_eps=hparams["exploration_initial_eps"],
            exploration_final_eps=hparams["exploration_final_eps"],
            state_key=state_key,
            n_states=table.shape[0],
            use_masking=hparams["use_masking"],
            seed=hparams["seed"],
            n_actions=table.shape[1],
            _key_mode=hparams["key_mode"],
        )
        if agent.q_table.shape != table.shape:
            raise ValueError(f"{path}: Q-table {table.shape} does not fit the env's {agent.q_table.shape}")
        if env is not None and agent.key_mode != hparams["key_mode"]:
            raise ValueError(
                f"{path}: saved for key mode {hparams['key_mode']!r}, env gives {agent.key_mode!r}"
            )
        agent.q_table[...] = table
        agent.num_timesteps = int(arrays.get("num_timesteps", 0))
        if env is None:
            shape = tuple(int(n) for n in arrays["obs_shape"])
            agent.obs_shape = None if shape == (-1,) else shape
            agent.obs_dtype = np.dtype(str(arrays["obs_dtype"]))
        if "state_digests" in arrays:
            agent._state_digests = arrays["state_digests"]
        return agent
