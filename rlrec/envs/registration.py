"""The Gymnasium ids rlrec registers, their registration, and what their constructors accept."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import gymnasium
from gymnasium.envs.registration import load_env_creator

#: The Gymnasium ids rlrec registers; every module names them through these constants.
MOVIELENS_ID = "rlrec/MovieLens-v0"
SESSION_ID = "rlrec/MovieLensSession-v0"
SLATE_ID = "rlrec/MovieLensSlate-v0"
#: Every id rlrec registers.
ENV_IDS = (MOVIELENS_ID, SESSION_ID, SLATE_ID)
#: Episodes of the seed env end only when a recommended movie was rated; this cap makes every
#: episode end. Each id's cap is registered here once and means the same everywhere:
#: ``max_episode_steps=None`` is the registered cap (``gymnasium.make``, ``make_vec`` and an env
#: class built directly alike), ``-1`` removes it (Gymnasium's convention). Recipes state it only
#: where they differ from it.
DEFAULT_MAX_EPISODE_STEPS = 1000
#: A session is 50 recommendations unless it ends earlier (nothing left to find): 50 single
#: movies, or 5 slates of 10.
SESSION_MAX_EPISODE_STEPS = 50
SLATE_MAX_EPISODE_STEPS = 5


#: Every id: (``module:ClassPrefix`` of its ``...Env`` and ``...VectorEnv``, registered max_episode_steps).
_IDS = {
    MOVIELENS_ID: ("movielens:MovieLens", DEFAULT_MAX_EPISODE_STEPS),
    SESSION_ID: ("session:MovieLensSession", SESSION_MAX_EPISODE_STEPS),
    SLATE_ID: ("slate:MovieLensSlate", SLATE_MAX_EPISODE_STEPS),
}


def register_envs() -> None:
    """Register ``rlrec/MovieLens-v0``, ``rlrec/MovieLensSession-v0`` and ``rlrec/MovieLensSlate-v0``
    (idempotent)."""
    registry = gymnasium.envs.registration.registry
    for env_id, (prefix, limit) in _IDS.items():
        if env_id not in registry:
            gymnasium.register(
                id=env_id,
                entry_point=f"rlrec.envs.{prefix}Env",
                vector_entry_point=f"rlrec.envs.{prefix}VectorEnv",
                max_episode_steps=limit,
            )


def batched_same_step(env_id: str) -> bool:
    """Whether ``env_id`` has a batched vector env that can reset within a step (SB3's convention)."""
    entry = gymnasium.spec(env_id).vector_entry_point
    if entry is None:
        return False
    creator = load_env_creator(entry) if isinstance(entry, str) else entry
    target = creator.__init__ if inspect.isclass(creator) else creator
    # Named parameters only: the batched envs take the single env's arguments as **env_kwargs.
    return "autoreset_mode" in inspect.signature(target).parameters


def check_env_kwargs(env_id: str, env_kwargs: Mapping[str, Any]) -> None:
    """``ValueError`` for an unknown env id or a keyword its constructor does not take."""
    try:
        spec = gymnasium.spec(env_id)
    except gymnasium.error.Error as exc:
        raise ValueError(f"--env: unknown Gymnasium id {env_id!r} ({exc})") from None
    if "data" in env_kwargs:
        raise ValueError("--env-kwargs: give the data with --data, not data=")
    params = constructor_params(spec.entry_point)
    if params is None:  # the constructor takes **kwargs: nothing to check against
        return
    limit = env_kwargs.get("max_episode_steps")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
        raise ValueError(f"--env-kwargs: max_episode_steps: expected a whole number, got {limit!r}")
    make_args = {"max_episode_steps", "disable_env_checker", "render_mode"}
    if has_torch_backend(env_id):
        make_args |= {"backend", "device"}  # the batched env's (rlrec.envs.torch_backend)
    for key in env_kwargs:
        if key not in params and key not in make_args:
            known = ", ".join(sorted((set(params) - {"data"}) | make_args))
            raise ValueError(f"--env-kwargs: unknown key {key!r} for {env_id} (known: {known})")


def constructor_params(entry_point: Any) -> dict[str, inspect.Parameter] | None:
    """The keyword parameters of an entry point (class or factory); None when it takes ``**kwargs``."""
    creator = load_env_creator(entry_point) if isinstance(entry_point, str) else entry_point
    target = creator.__init__ if inspect.isclass(creator) else creator
    params = dict(inspect.signature(target).parameters)
    params.pop("self", None)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return params


def has_torch_backend(env_id: str) -> bool:
    """Whether ``env_id``'s batched env takes ``backend="torch"`` (the session and slate ids)."""
    entry = gymnasium.spec(env_id).vector_entry_point
    creator = load_env_creator(entry) if isinstance(entry, str) else entry
    return bool(getattr(creator, "has_torch_backend", False))


def env_takes_data(env_id: str) -> bool:
    """Whether ``env_id``'s constructor takes the ``data`` argument (a ``RatingsDataset`` or source)."""
    params = constructor_params(gymnasium.spec(env_id).entry_point)
    return params is None or "data" in params
