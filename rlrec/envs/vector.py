"""Batched MovieLens envs: N users stepped at once with numpy, for Gymnasium and for SB3.

``MovieLensVectorEnv`` is the ``vector_entry_point`` of ``rlrec/MovieLens-v0``
(``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")``); ``MovieLensSB3VecEnv``
is a Stable-Baselines3 ``VecEnv`` over the same batched core. Both keep, per sub-env, exactly
the episode state of one :class:`~rlrec.envs.movielens.MovieLensEnv` (current user, step
count, recommended movies, random generator), so sub-env ``i`` behaves like a single env
seeded with ``seed + i`` (the seeding convention of Gymnasium's and SB3's vector envs).
Sub-env ``i`` starts, and restarts after each episode, at the ``i``-th user (mod the number of
users) in sequential order, so that N sub-envs cover N different users.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn

from rlrec.envs import DEFAULT_MAX_EPISODE_STEPS
from rlrec.envs.movielens import DataSource, MovieLensEnv


class _Batch:
    """Episode state of ``num_envs`` MovieLens sub-envs over one shared world.

    :param env: a ``MovieLensEnv`` used as the template: its world (data, observations, rewards)
        and options are shared, its own episode state is never used.
    :param max_episode_steps: truncation length; ``None`` or <= 0 for none.
    """

    def __init__(self, env: MovieLensEnv, num_envs: int, max_episode_steps: int | None) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1 (got {num_envs})")
        self.env = env
        self.world = env.world
        self.num_envs = num_envs
        self.max_episode_steps = max_episode_steps if max_episode_steps and max_episode_steps > 0 else None
        n_users = len(self.world.users)
        self.random = env.user_order == "random"
        self.starts = np.arange(num_envs, dtype=np.int64) % n_users
        self.positions = self.starts.copy()
        self.users = self.world.users[self.positions]
        self.elapsed = np.zeros(num_envs, dtype=np.int64)
        self.rngs: list[np.random.Generator | None] = [None] * num_envs
        self.recommended = np.zeros((num_envs, env.n_movies), dtype=bool) if env.mask_recommended else None
        self.n_recommended = np.zeros(num_envs, dtype=np.int64)

    def rng(self, index: int) -> np.random.Generator:
        generator = self.rngs[index]
        if generator is None:
            generator = self.rngs[index] = seeding.np_random()[0]
        return generator

    def reset(
        self,
        indices: np.ndarray,
        seeds: Sequence[int | None] | None = None,
        user_ids: Sequence[Any] | None = None,
    ) -> None:
        """Start new episodes in the sub-envs ``indices`` (what ``MovieLensEnv.reset`` does)."""
        for j, i in enumerate(indices):
            if seeds is not None and seeds[j] is not None:
                self.rngs[i] = seeding.np_random(seeds[j])[0]
            if user_ids is not None and user_ids[j] is not None:
                self.positions[i] = self.world.position_of(user_ids[j])
            elif self.random:
                self.positions[i] = self.rng(i).integers(len(self.world.users))
            else:
                self.positions[i] = self.starts[i]
        self.users[indices] = self.world.users[self.positions[indices]]
        self.elapsed[indices] = 0
        if self.recommended is not None:
            self.recommended[indices] = False
            self.n_recommended[indices] = 0

    def advance(
        self, indices: np.ndarray | slice, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Step the sub-envs ``indices`` with movie indices ``actions``.

        :return: (rewards, terminated, truncated, stepped users), aligned with ``indices``.
        """
        n_movies = self.env.n_movies
        if actions.shape and (actions.min(initial=0) < 0 or actions.max(initial=0) >= n_movies):
            raise ValueError(f"actions must be movie indices in [0, {n_movies})")
        users = self.users[indices].copy()  # a slice would be a view of what we update below
        rewards, rated = self.world.rewards(users, actions)
        if self.recommended is not None:
            self._mark(np.arange(self.num_envs)[indices], actions)
        n_users = len(self.world.users)
        if self.random:
            for i in np.arange(self.num_envs)[indices]:
                self.positions[i] = self.rng(i).integers(n_users)
        else:
            self.positions[indices] = (self.positions[indices] + 1) % n_users
        self.users[indices] = self.world.users[self.positions[indices]]
        self.elapsed[indices] += 1
        if self.max_episode_steps is None:
            truncated = np.zeros(len(users), dtype=bool)
        else:
            truncated = self.elapsed[indices] >= self.max_episode_steps
        return rewards, rated, truncated, users

    def _mark(self, envs: np.ndarray, actions: np.ndarray) -> None:
        assert self.recommended is not None
        fresh = ~self.recommended[envs, actions]
        self.recommended[envs, actions] = True
        self.n_recommended[envs] += fresh
        full = envs[self.n_recommended[envs] == self.env.n_movies]
        self.recommended[full] = False
        self.n_recommended[full] = 0

    def action_masks(self) -> np.ndarray:
        """``(num_envs, n_movies)`` allowed actions, row ``i`` as ``MovieLensEnv.action_masks``."""
        if self.recommended is None:
            return np.ones((self.num_envs, self.env.n_movies), dtype=bool)
        return ~self.recommended


def _seed_list(seed: int | Sequence[int | None] | None, num_envs: int) -> list[int | None] | None:
    if seed is None:
        return None
    if isinstance(seed, int | np.integer):
        return [int(seed) + i for i in range(num_envs)]
    seeds = list(seed)
    if len(seeds) != num_envs:
        raise ValueError(f"seed: expected {num_envs} seeds, got {len(seeds)}")
    return seeds


def _user_id_list(options: dict[str, Any] | None, num_envs: int) -> list[Any] | None:
    """``options["user_id"]``: one id for every sub-env or one id per sub-env."""
    if not options or options.get("user_id") is None:
        return None
    value = options["user_id"]
    if np.ndim(value) == 0:
        return [value] * num_envs
    ids = list(value)
    if len(ids) != num_envs:
        raise ValueError(f"options['user_id']: expected {num_envs} ids, got {len(ids)}")
    return ids


class MovieLensVectorEnv(VectorEnv):
    """``num_envs`` MovieLens sub-envs stepped as one batch (Gymnasium ``VectorEnv``).

    Autoreset is Gymnasium's ``NEXT_STEP`` mode (the default of its own vector envs): the step
    after a sub-env's episode ended resets that sub-env, ignores its action, and returns its
    first observation with reward 0 and ``terminated = truncated = False``.

    Profile observations come in one preallocated ``(num_envs, n_movies)`` float32 array
    refilled by every ``reset`` / ``step`` (a gather from the profile cache): copy it if you keep
    it across steps, or pass ``copy_obs=True``.

    ``infos`` hold arrays ``user_id``, ``user_index``, ``movie_id``, ``rated``, ``state`` (as the
    single env's ``info``) with Gymnasium's ``_key`` masks; ``movie_id`` / ``rated`` are masked
    out for the sub-envs that were reset in that step.

    :param data: as ``MovieLensEnv``.
    :param num_envs: number of sub-envs.
    :param max_episode_steps: truncation per sub-env (``gymnasium.make_vec`` passes the
        registered 1000); ``None`` or -1 for none.
    :param copy_obs: return a fresh observation array every step instead of the shared buffer.
    :param env_kwargs: any other argument of ``MovieLensEnv`` (``reward_mode``, ``user_order``,
        ``users``, ``mask_recommended``, ``observation``, ``embedding_dim``, ``render_mode``
        (``"ansi"`` only), ``memory_budget_mb``, ``simulator_kwargs``).
    """

    metadata = {"render_modes": ["ansi"], "autoreset_mode": AutoresetMode.NEXT_STEP}  # noqa: RUF012

    def __init__(
        self,
        data: DataSource,
        num_envs: int = 1,
        max_episode_steps: int | None = None,
        copy_obs: bool = False,
        **env_kwargs: Any,
    ) -> None:
        if env_kwargs.get("render_mode") not in (None, "ansi"):
            raise ValueError(f"render_mode: {env_kwargs['render_mode']!r} is not one of None, 'ansi'")
        self.env = MovieLensEnv(data, **env_kwargs)
        self.batch = _Batch(self.env, num_envs, max_episode_steps)
        self.num_envs = num_envs
        self.copy_obs = copy_obs
        self.render_mode = env_kwargs.get("render_mode")
        self.single_observation_space = self.env.observation_space
        self.single_action_space = self.env.action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        obs_dim = int(np.prod(self.env.observation_space.shape or ()))
        self._obs = np.empty((num_envs, obs_dim), dtype=np.float32)
        self._user_ids, self._movie_ids = self.env.user_ids, self.env.movie_ids
        self._autoreset = np.zeros(num_envs, dtype=bool)
        self._last: list[tuple[int, int, float] | None] = [None] * num_envs

    # Compact-state interface, as on the single env.
    def __getattr__(self, name: str) -> Any:
        if name in ("dataset", "n_states", "n_movies", "movie_ids", "user_ids", "observations", "world"):
            return getattr(self.__dict__["env"], name)
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every sub-env; ``seed=s`` seeds sub-env ``i`` with ``s + i``.

        ``options={"user_id": ID}`` (one id, or one per sub-env) chooses the starting users.
        """
        if isinstance(seed, int):
            super().reset(seed=seed)
        everyone = np.arange(self.num_envs)
        self.batch.reset(everyone, _seed_list(seed, self.num_envs), _user_id_list(options, self.num_envs))
        self._autoreset[:] = False
        self._last = [None] * self.num_envs
        users = self.batch.users
        ids = self.env.user_ids[users]
        truthy = np.ones(self.num_envs, dtype=bool)
        info = {
            "user_id": ids,
            "_user_id": truthy,
            "user_index": users.copy(),
            "_user_index": truthy,
            "state": users.copy(),
            "_state": truthy,
        }
        return self._observe(), info

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,) or actions.dtype.kind not in "iu":
            raise ValueError(f"actions must be {self.num_envs} integer movie indices, got {actions!r}")
        actions = actions.astype(np.int64, copy=False)
        resetting = self._autoreset
        if not resetting.any():  # the common case: every sub-env steps
            rewards, terminated, truncated, stepped_users = self.batch.advance(slice(None), actions)
            stepped = np.ones(self.num_envs, dtype=bool)
            movie_ids = self._movie_ids[actions]
        else:
            rewards = np.zeros(self.num_envs)
            terminated = np.zeros(self.num_envs, dtype=bool)
            truncated = np.zeros(self.num_envs, dtype=bool)
            acting = np.flatnonzero(~resetting)
            self.batch.reset(np.flatnonzero(resetting))
            stepped_users = self.batch.users.copy()  # the reset users, overwritten for the others
            if len(acting):
                rewards[acting], terminated[acting], truncated[acting], stepped_users[acting] = (
                    self.batch.advance(acting, actions[acting])
                )
            stepped = ~resetting
            movie_ids = np.where(stepped, self._movie_ids[np.where(stepped, actions, 0)], 0)
        if self.render_mode is not None:
            for i in range(self.num_envs):
                last = (int(stepped_users[i]), int(actions[i]), float(rewards[i]))
                self._last[i] = last if stepped[i] else None
        self._autoreset = terminated | truncated
        everyone = np.ones(self.num_envs, dtype=bool)
        info = {
            "user_id": self._user_ids[stepped_users],
            "_user_id": everyone,
            "user_index": stepped_users,
            "_user_index": everyone,
            "movie_id": movie_ids,
            "_movie_id": stepped,
            "rated": terminated.copy(),
            "_rated": stepped,
            "state": self.batch.users.copy(),
            "_state": everyone,
        }
        return self._observe(), rewards, terminated, truncated, info

    def _observe(self) -> np.ndarray:
        if self.copy_obs:
            return self.env.observations(self.batch.users)
        return self.env.observations(self.batch.users, out=self._obs)

    def action_masks(self) -> np.ndarray:
        """``(num_envs, n_movies)`` bool: row ``i`` is sub-env ``i``'s ``action_masks()``."""
        return self.batch.action_masks()

    def render(self) -> tuple[str, ...] | None:
        """With ``render_mode="ansi"``: one text per sub-env, as ``MovieLensEnv.render``."""
        if self.render_mode is None:
            return None
        texts = []
        for i in range(self.num_envs):
            last = self._last[i]
            texts.append(
                self.env.world.describe(*last)
                if last
                else self.env.world.describe(int(self.batch.users[i]), None, None)
            )
        return tuple(texts)


class MovieLensSB3VecEnv(VecEnv):
    """Stable-Baselines3 ``VecEnv`` over ``num_envs`` batched MovieLens sub-envs.

    SB3 semantics: a finished sub-env is reset within the same ``step``; its last observation
    is in ``infos[i]["terminal_observation"]`` and ``infos[i]["TimeLimit.truncated"]`` says the
    episode was cut by ``max_episode_steps`` rather than terminated. Every step returns a new
    observation array (SB3's learners keep the previous one). ``env_method("action_masks")``
    gives each sub-env's mask, so sb3-contrib's MaskablePPO works with ``mask_recommended``.

    ``get_attr`` / ``set_attr`` / ``env_method`` other than ``action_masks`` act on the shared
    template env (data-level attributes such as ``n_states`` or ``movie_ids``), not on the
    per-sub-env episode state.

    :param data: as ``MovieLensEnv``.
    :param num_envs: number of sub-envs.
    :param max_episode_steps: truncation per sub-env (1000, as registered); ``None`` for none.
    :param env_kwargs: any other argument of ``MovieLensEnv`` (``render_mode`` must be None).
    """

    def __init__(
        self,
        data: DataSource,
        num_envs: int = 1,
        max_episode_steps: int | None = DEFAULT_MAX_EPISODE_STEPS,
        **env_kwargs: Any,
    ) -> None:
        if env_kwargs.get("render_mode") is not None:
            raise ValueError("render_mode: MovieLensSB3VecEnv does not render")
        self.env = MovieLensEnv(data, **env_kwargs)
        self.batch = _Batch(self.env, num_envs, max_episode_steps)
        self._actions = np.zeros(num_envs, dtype=np.int64)
        super().__init__(num_envs, self.env.observation_space, self.env.action_space)

    def reset(self) -> VecEnvObs:
        everyone = np.arange(self.num_envs)
        user_ids = [options.get("user_id") for options in self._options]
        self.batch.reset(everyone, self._seeds, user_ids if any(u is not None for u in user_ids) else None)
        self._reset_seeds()
        self._reset_options()
        users = self.batch.users
        self.reset_infos = [
            {"user_id": int(self.env.user_ids[u]), "user_index": int(u), "state": int(u)} for u in users
        ]
        return self.env.observations(users)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape(self.num_envs).astype(np.int64)

    def step_wait(self) -> VecEnvStepReturn:
        actions = self._actions
        rewards, terminated, truncated, stepped_users = self.batch.advance(slice(None), actions)
        observations = self.env.observations(self.batch.users)
        infos: list[dict[str, Any]] = [
            {
                "user_id": int(user_id),
                "user_index": int(user),
                "movie_id": int(movie_id),
                "rated": bool(rated),
                "state": int(state),
                "TimeLimit.truncated": bool(cut and not rated),
            }
            for user_id, user, movie_id, rated, state, cut in zip(
                self.env.user_ids[stepped_users],
                stepped_users,
                self.env.movie_ids[actions],
                terminated,
                self.batch.users,
                truncated,
            )
        ]
        dones = terminated | truncated
        finished = np.flatnonzero(dones)
        if len(finished):
            for i in finished:
                infos[i]["terminal_observation"] = observations[i].copy()
            self.batch.reset(finished)
            observations[finished] = self.env.observations(self.batch.users[finished])
        return observations, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        pass

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self.env, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self.env, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        chosen: Iterable[int] = self._get_indices(indices)
        if method_name == "action_masks":
            masks = self.batch.action_masks()
            return [masks[i] for i in chosen]
        method = getattr(self.env, method_name)
        return [method(*method_args, **method_kwargs) for _ in chosen]

    def env_is_wrapped(
        self, wrapper_class: type[gymnasium.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def action_masks(self) -> np.ndarray:
        """``(num_envs, n_movies)`` bool: row ``i`` is sub-env ``i``'s ``action_masks()``."""
        return self.batch.action_masks()
