"""One batched ``VectorEnv`` for every rlrec env id: N sub-envs stepped as numpy arrays.

An env family supplies its episode logic as an :class:`Episodes` object (``MovieLens-v0``:
:class:`rlrec.envs.movielens.SeedEpisodes`; ``MovieLensSession-v0``:
:class:`rlrec.envs.session.SessionEpisodes`); :class:`RecVectorEnv` adds what every vector env
needs and no family should write twice: seeding (sub-env ``i`` seeded with ``seed + i``, the
convention of Gymnasium's and SB3's vector envs, so it behaves exactly like a single env seeded
so), reset options, action checks, truncation after ``max_episode_steps``, Gymnasium's three
autoreset modes and the ``_key``-masked info arrays.

Autoreset: ``"next_step"`` (Gymnasium's default: the step after an episode ended resets that
sub-env, ignores its action, and returns reward 0 and ``terminated = truncated = False``),
``"same_step"`` (reset within the step; the last observation is in ``infos["final_obs"]``, the
last info in ``infos["final_info"]``: no wasted step, what SB3 expects) or ``"disabled"``
(resets only through ``reset(options={"reset_mask": mask})``).

The observation array is one preallocated ``(num_envs, obs_dim)`` float32 buffer refilled by
every ``reset`` / ``step``: copy it if you keep it across steps, or pass ``copy_obs=True``.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from rlrec.envs.world import MovieLensWorld, RenderModeError, WorldViews, check_choice

__all__ = [
    "AUTORESET_MODES",
    "BACKENDS",
    "RESET_OPTIONS",
    "Episodes",
    "EpisodesEnv",
    "EpisodesVectorEnv",
    "RecVectorEnv",
    "check_action",
    "check_options",
]

#: ``backend=`` of the batched envs: numpy arrays on the host, or torch tensors on a device.
BACKENDS = ("numpy", "torch")
AUTORESET_MODES = {
    "next_step": AutoresetMode.NEXT_STEP,
    "same_step": AutoresetMode.SAME_STEP,
    "disabled": AutoresetMode.DISABLED,
}
#: The reset options every rlrec env takes; any other key is refused.
RESET_OPTIONS = ("user_id",)


def check_options(options: dict[str, Any] | None, allowed: Sequence[str] = RESET_OPTIONS) -> dict[str, Any]:
    """``options`` as a dict; ``ValueError`` naming the keys no rlrec env understands."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        names = ", ".join(map(repr, unknown))
        raise ValueError(f"options: unknown key(s) {names} (known: {', '.join(allowed)})")
    return options


def check_action(action: Any, n_actions: int) -> int:
    """A single env's action as a movie index; ``ValueError`` for anything else (arrays, None, floats)."""
    if isinstance(action, np.ndarray) and action.shape == () and action.dtype.kind in "iu":
        action = action.item()
    if isinstance(action, bool | np.bool_) or not isinstance(action, int | np.integer):
        raise ValueError(f"action must be one movie index (an integer), got {action!r}")
    if not 0 <= action < n_actions:
        raise ValueError(f"action {action} is not a movie index in [0, {n_actions})")
    return int(action)


class Episodes(WorldViews, ABC):
    """The episode logic of one env family over ``num_envs`` sub-envs, as arrays.

    No seeding and no autoreset: :class:`RecVectorEnv` (or a single env, with ``num_envs=1``)
    decides when a sub-env starts and hands it its random generator.
    """

    world: MovieLensWorld
    num_envs: int
    observation_space: spaces.Box
    action_space: Any  # Discrete(n_movies), or MultiDiscrete for slates
    #: Keys of the info arrays ``start_info`` and ``step`` return.
    info_keys: tuple[str, ...]

    @abstractmethod
    def start(self, index: int, rng: np.random.Generator, user: int | None) -> None:
        """Start a new episode in sub-env ``index`` (``user``: a dataset index, else drawn)."""

    @abstractmethod
    def start_info(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Info arrays of just-started sub-envs ``rows`` (aligned with ``rows``)."""

    @abstractmethod
    def step(
        self, rows: np.ndarray, actions: np.ndarray, rngs: Sequence[np.random.Generator]
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Step sub-envs ``rows`` with movie indices ``actions``: (rewards, terminated, infos),
        aligned with ``rows``. ``rngs[i]`` is sub-env ``rows[i]``'s generator."""

    @abstractmethod
    def observe(self, out: np.ndarray | None) -> np.ndarray:
        """Fill ``out`` (``(num_envs, obs_dim)`` float32) with every sub-env's observation."""

    @abstractmethod
    def observations(self, user_indices: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """What a user's whole train history looks like to an agent (the evaluation's question)."""

    def action_masks(self) -> np.ndarray:
        """``(num_envs, n_actions)``: the movies each sub-env may be recommended now."""
        return np.ones((self.num_envs, self.world.n_movies), dtype=bool)

    @abstractmethod
    def describe(self, index: int) -> str:
        """Text of sub-env ``index`` for ``render``."""


class RecVectorEnv(WorldViews, VectorEnv):
    """``num_envs`` sub-envs of one rlrec env family in one numpy batch (Gymnasium ``VectorEnv``).

    Sub-env ``i`` makes exactly the draws of a single env seeded with ``seed + i``, in the same
    order, so the same actions give the same observations, rewards, ends and infos.

    :param episodes: the family's batched episode logic.
    :param max_episode_steps: truncation after this many steps of an episode (what
        ``gymnasium.make``'s ``TimeLimit`` adds to a single env). ``None``: the env id's
        registered default (:attr:`default_max_episode_steps`), as ``gymnasium.make`` reads it;
        ``-1`` (or any value <= 0): no limit, Gymnasium's convention.
    :param autoreset_mode: ``"next_step"`` (Gymnasium's default), ``"same_step"`` or ``"disabled"``.
    :param copy_obs: return a fresh observation array from every ``reset`` / ``step``.
    :param render_mode: ``None`` or ``"ansi"`` (one text per sub-env).
    """

    #: The registered ``max_episode_steps`` of the family's env id (``None``: no limit).
    default_max_episode_steps: int | None = None

    def __init__(
        self,
        episodes: Episodes,
        max_episode_steps: int | None = None,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        copy_obs: bool = False,
        render_mode: str | None = None,
    ) -> None:
        mode = (
            autoreset_mode
            if isinstance(autoreset_mode, AutoresetMode)
            else AUTORESET_MODES.get(autoreset_mode)
        )
        if mode is None:
            raise ValueError(f"autoreset_mode: {autoreset_mode!r} is not one of {', '.join(AUTORESET_MODES)}")
        if render_mode not in (None, "ansi"):
            raise RenderModeError(f"render_mode: a vector env renders None or 'ansi', got {render_mode!r}")
        if max_episode_steps is not None and (
            isinstance(max_episode_steps, bool) or not isinstance(max_episode_steps, int | np.integer)
        ):
            raise ValueError(f"max_episode_steps: expected a whole number or None, got {max_episode_steps!r}")
        self.episodes = episodes
        self.world = episodes.world
        self.num_envs = n = episodes.num_envs
        if max_episode_steps is None:
            max_episode_steps = self.default_max_episode_steps
        limit = int(max_episode_steps) if max_episode_steps is not None else 0
        self.max_episode_steps = limit if limit > 0 else None
        self.autoreset_mode = mode
        self.metadata = {"render_modes": ["ansi"], "autoreset_mode": mode}
        self.render_mode = render_mode
        self.copy_obs = bool(copy_obs)
        self.single_observation_space = episodes.observation_space
        self.single_action_space = episodes.action_space
        self.observation_space = batch_space(self.single_observation_space, n)
        self.action_space = batch_space(self.single_action_space, n)
        self._obs = np.zeros((n, int(np.prod(self.single_observation_space.shape))), dtype=np.float32)
        self._rngs: list[np.random.Generator | None] = [None] * n
        self._elapsed = np.zeros(n, dtype=np.int64)
        self._pending = np.zeros(n, dtype=bool)  # NEXT_STEP: these sub-envs reset at the next step
        self._started = False

    # ------------------------------------------------------------------- passthrough
    def observations(self, user_indices: np.ndarray | list[int], out: np.ndarray | None = None) -> np.ndarray:
        """Each user's whole train history as an observation (the single env's ``observations``)."""
        return self.episodes.observations(np.asarray(user_indices, dtype=np.int64), out)

    def action_masks(self) -> np.ndarray:
        """``(num_envs, n_movies)`` bool: row ``i`` is sub-env ``i``'s ``action_masks()``."""
        return self.episodes.action_masks()

    def __getattr__(self, name: str) -> Any:
        # The family's own read-only attributes (n_states, movie_ids, user_ids, reward_mode, ...).
        episodes = self.__dict__.get("episodes")
        if episodes is None or name.startswith("_"):
            raise AttributeError(name)
        return getattr(episodes, name)

    # ---------------------------------------------------------------------- episodes
    def _rng(self, index: int) -> np.random.Generator:
        generator = self._rngs[index]
        if generator is None:
            generator = self._rngs[index] = seeding.np_random()[0]
        return generator

    def _start(self, rows: np.ndarray, users: Sequence[int | None] | None = None) -> None:
        for j, i in enumerate(rows):
            self.episodes.start(int(i), self._rng(int(i)), None if users is None else users[j])
        self._elapsed[rows] = 0

    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start new episodes; ``seed=s`` seeds sub-env ``i`` with ``s + i`` (or one seed each).

        ``options``: ``{"user_id": ID}`` (one original userId for every sub-env, or one each)
        chooses the users; ``{"reset_mask": mask}`` resets only the sub-envs where ``mask`` is True.
        """
        n = self.num_envs
        options = check_options(options, (*RESET_OPTIONS, "reset_mask"))
        if isinstance(seed, int | np.integer):
            super().reset(seed=int(seed))
            seeds: list[int | None] = [int(seed) + i for i in range(n)]
        elif seed is None:
            seeds = [None] * n
        else:
            seeds = list(seed)
            if len(seeds) != n:
                raise ValueError(f"seed: expected {n} seeds, got {len(seeds)}")
        rows = np.arange(n)
        if options.get("reset_mask") is not None:
            mask = np.asarray(options["reset_mask"], dtype=bool)
            if mask.shape != (n,):
                raise ValueError(f"options['reset_mask']: expected {n} booleans, got shape {mask.shape}")
            rows = np.flatnonzero(mask)
        users: list[int | None] | None = None
        if options.get("user_id") is not None:
            value = options["user_id"]
            ids = [value] * n if np.ndim(value) == 0 else list(value)
            if len(ids) != n:
                raise ValueError(f"options['user_id']: expected one userId or {n}, got {len(ids)}")
            users = [self.world.user_index(ids[i]) for i in rows]
        for i in rows:
            if seeds[i] is not None:
                self._rngs[i] = seeding.np_random(seeds[i])[0]
        self._start(rows, users)
        self._pending[rows] = False
        self._started = True
        present = np.zeros(n, dtype=bool)
        present[rows] = True
        info = self._masked(self.episodes.start_info(rows), rows, present)
        return self._observe(), info

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        n = self.num_envs
        actions = np.asarray(actions)
        shape = (n, *(self.single_action_space.shape or ()))
        if actions.shape != shape or actions.dtype.kind not in "iu":
            raise ValueError(f"actions must be integer movie indices of shape {shape}, got {actions!r:.80}")
        n_movies = self.world.n_movies
        if actions.size and (actions.min() < 0 or actions.max() >= n_movies):
            raise ValueError(f"actions must be movie indices in [0, {n_movies})")
        if not self._started:
            raise RuntimeError("call reset() before step()")
        actions = actions.astype(np.int64, copy=False)
        resetting = self._pending.copy()
        if resetting.any():
            self._start(np.flatnonzero(resetting))
        rows = np.flatnonzero(~resetting)
        rewards = np.zeros(n, dtype=np.float64)
        terminated = np.zeros(n, dtype=bool)
        step_rewards, step_terminated, step_info = self.episodes.step(
            rows, actions[rows], [self._rng(int(i)) for i in rows]
        )
        rewards[rows], terminated[rows] = step_rewards, step_terminated
        self._elapsed[rows] += 1
        truncated = np.zeros(n, dtype=bool)
        if self.max_episode_steps is not None:
            # As Gymnasium's TimeLimit: the last allowed step truncates, terminated or not.
            truncated[rows] = self._elapsed[rows] >= self.max_episode_steps
        info = self._masked(step_info, rows, ~resetting)
        if resetting.any():  # NEXT_STEP: those sub-envs report their fresh start instead
            reset_rows = np.flatnonzero(resetting)
            fresh = self._masked(self.episodes.start_info(reset_rows), reset_rows, resetting)
            info = self._merge(info, fresh)
        done = terminated | truncated
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            self._pending = done
        elif self.autoreset_mode == AutoresetMode.SAME_STEP and done.any():
            finished = np.flatnonzero(done)
            final_obs = np.full(n, None, dtype=object)
            current = self.episodes.observe(self._obs)
            for i in finished:
                final_obs[i] = current[i].copy()
            final_info = {key: value for key, value in info.items()}
            self._start(finished)
            fresh = self._masked(self.episodes.start_info(finished), finished, done)
            info = self._merge(info, fresh)
            info["final_info"], info["_final_info"] = final_info, done.copy()
            info["final_obs"], info["_final_obs"] = final_obs, done.copy()
        return self._observe(), rewards, terminated, truncated, info

    # ------------------------------------------------------------------------ output
    def _observe(self) -> np.ndarray:
        obs = self.episodes.observe(self._obs)
        return obs.copy() if self.copy_obs else obs

    def _masked(self, values: dict[str, np.ndarray], rows: np.ndarray, present: np.ndarray) -> dict[str, Any]:
        """Info arrays over ``rows`` spread to ``num_envs`` entries, with Gymnasium's ``_key`` masks."""
        info: dict[str, Any] = {}
        for key, value in values.items():
            value = np.asarray(value)
            full = np.zeros((self.num_envs, *value.shape[1:]), dtype=value.dtype)
            full[rows] = value
            info[key], info[f"_{key}"] = full, present.copy()
        return info

    @staticmethod
    def _merge(info: dict[str, Any], fresh: dict[str, Any]) -> dict[str, Any]:
        """``info`` with ``fresh``'s entries where ``fresh`` is present (a reset replaces a step)."""
        merged = dict(info)
        for key, value in fresh.items():
            if key.startswith("_"):
                continue
            mask = fresh[f"_{key}"]
            if key in merged:
                spread = mask.reshape(-1, *([1] * (np.ndim(value) - 1)))
                merged[key] = np.where(spread, value, merged[key])
                merged[f"_{key}"] = merged[f"_{key}"] | mask
            else:
                merged[key], merged[f"_{key}"] = value, mask.copy()
        return merged

    def render(self) -> tuple[str, ...] | None:
        """With ``render_mode="ansi"``: one text per sub-env, as the single env renders it."""
        if self.render_mode is None:
            return None
        return tuple(self.episodes.describe(i) for i in range(self.num_envs))


class EpisodesVectorEnv(RecVectorEnv):
    """A family's ``vector_entry_point``: :class:`RecVectorEnv` over the family's episodes, built by
    its ``make_episodes(data, num_envs, **single env arguments)``.

    ``num_envs``, ``max_episode_steps`` (``make_vec`` passes the registered one),
    ``autoreset_mode``, ``copy_obs`` and ``render_mode`` are :class:`RecVectorEnv`'s; every other
    argument is the single env's.
    """

    make_episodes: Callable[..., Episodes]
    #: Whether ``backend="torch"`` can run this family (the session and slate families).
    has_torch_backend = False

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        # The arguments are __init__'s: read them there rather than restating the signature.
        bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
        bound.apply_defaults()
        given = bound.arguments
        backend, device = given["backend"], given["device"]
        if check_choice("backend", backend, BACKENDS) == "numpy":
            if device not in (None, "cpu"):
                raise ValueError(
                    f"device: {device!r} needs backend='torch' (the numpy backend runs on the CPU)"
                )
            return super().__new__(cls)
        if not cls.has_torch_backend:
            raise ValueError(
                f"backend: 'torch' is not available for {cls.__name__} (session and slate envs only)"
            )
        if given["copy_obs"] or given["render_mode"] is not None:
            raise ValueError("backend='torch': copy_obs and render_mode are numpy-backend options")
        # Deferred: importing torch costs about a second, and only this backend needs it here.
        from rlrec.envs.torch_backend import TorchVectorEnv

        episodes = cls.make_episodes(given["data"], given["num_envs"], **given["env_kwargs"])
        limit = given["max_episode_steps"]
        limit = cls.default_max_episode_steps if limit is None else limit
        return TorchVectorEnv(episodes, "auto" if device is None else device, limit, given["autoreset_mode"])

    def __init__(
        self,
        data: Any = "synthetic",
        num_envs: int = 1,
        max_episode_steps: int | None = None,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        copy_obs: bool = False,
        render_mode: str | None = None,
        backend: str = "numpy",
        device: str | None = None,
        **env_kwargs: Any,
    ) -> None:
        """``backend``: ``"numpy"`` (default) or ``"torch"`` (a
        :class:`rlrec.envs.torch_backend.TorchVectorEnv` on ``device``: ``"cpu"``, ``"cuda"`` or
        ``"auto"``, the default), for the families that have one."""
        episodes = type(self).make_episodes(data, num_envs, **env_kwargs)
        super().__init__(episodes, max_episode_steps, autoreset_mode, copy_obs, render_mode)


_FIRST = np.zeros(1, dtype=np.int64)  # a single env is sub-env 0 of its episode logic


class EpisodesEnv(WorldViews, gymnasium.Env):  # type: ignore[type-arg]
    """A single env that is sub-env 0 of an :class:`Episodes` (the session and slate families).

    Its ``np_random`` is the sub-env's generator, so it makes the same draws as sub-env ``i`` of
    :class:`RecVectorEnv` seeded ``seed + i``. Subclasses build ``self.episodes`` (``num_envs=1``)
    and call :meth:`_attach`; they check an action with :meth:`_check_action`.
    """

    metadata = {"render_modes": ["ansi", "human"], "render_fps": 4}  # noqa: RUF012 - Gymnasium's API
    episodes: Any

    def _attach(self, episodes: Any, render_mode: str | None) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise RenderModeError(f"render_mode: {render_mode!r} is not one of None, 'ansi', 'human'")
        self.episodes = episodes
        self.world = episodes.world
        self.render_mode = render_mode
        self.action_space = episodes.action_space
        self.observation_space = episodes.observation_space
        self._started = False

    def observations(self, user_indices: np.ndarray | list[int], out: np.ndarray | None = None) -> np.ndarray:
        """Users' whole histories as observations (what the evaluation ranks from)."""
        return self.episodes.observations(np.asarray(user_indices, dtype=np.int64), out)

    def __getattr__(self, name: str) -> Any:
        # The options as attributes (hiding, reward_mode, ...), read from the episode logic.
        episodes = self.__dict__.get("episodes")
        if episodes is None or name.startswith("_"):
            raise AttributeError(name)
        return getattr(episodes, name)

    def _check_action(self, action: Any) -> np.ndarray:
        return np.array([check_action(action, self.world.n_movies)])

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode; ``options={"user_id": ID}`` picks the user with original userId ``ID``."""
        super().reset(seed=seed)
        options = check_options(options)
        user = None if options.get("user_id") is None else self.world.user_index(options["user_id"])
        self.episodes.start(0, self.np_random, user)
        self._started = True
        if self.render_mode == "human":
            self.render()
        return self.episodes.observe(None)[0].copy(), _first_of(self.episodes.start_info(_FIRST))

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self._started:
            raise RuntimeError("call reset() before step()")
        actions = self._check_action(action)
        rewards, terminated, info = self.episodes.step(_FIRST, actions, [self.np_random])
        if self.render_mode == "human":
            self.render()
        return (
            self.episodes.observe(None)[0].copy(),
            float(rewards[0]),
            bool(terminated[0]),
            False,
            _first_of(info),
        )

    def action_masks(self) -> np.ndarray:
        """The movies worth recommending now (sb3-contrib's interface), as the vector env's row 0."""
        return self.episodes.action_masks()[0]

    def render(self) -> str | None:
        if self.render_mode is None:
            return None
        text = self.episodes.describe(0)
        if self.render_mode == "human":
            print(text)
            return None
        return text


def _first_of(info: dict[str, np.ndarray]) -> dict[str, Any]:
    """Sub-env 0's info as plain values (arrays for the per-slot keys)."""
    return {key: value[0].item() if value.ndim == 1 else value[0].copy() for key, value in info.items()}
