"""Gymnasium environments over a ``RatingsDataset``; nothing here knows about any learner.

``rlrec/MovieLens-v0`` (:mod:`rlrec.envs.movielens`, the seed notebook's env) and
``rlrec/MovieLensSession-v0`` (:mod:`rlrec.envs.session`) stand on one
:class:`~rlrec.envs.world.MovieLensWorld`; each has a single env and one batched vector env
(:class:`~rlrec.envs.vector.RecVectorEnv`) as its ``vector_entry_point``.
"""

from __future__ import annotations

from rlrec.envs.registration import (
    DEFAULT_MAX_EPISODE_STEPS,
    ENV_IDS,
    MOVIELENS_ID,
    SESSION_ID,
    SESSION_MAX_EPISODE_STEPS,
    SLATE_ID,
    SLATE_MAX_EPISODE_STEPS,
    batched_same_step,
    check_env_kwargs,
    constructor_params,
    env_takes_data,
    has_torch_backend,
    register_envs,
)

__all__ = [
    "DEFAULT_MAX_EPISODE_STEPS",
    "ENV_IDS",
    "MOVIELENS_ID",
    "SESSION_ID",
    "SESSION_MAX_EPISODE_STEPS",
    "SLATE_ID",
    "SLATE_MAX_EPISODE_STEPS",
    "batched_same_step",
    "check_env_kwargs",
    "constructor_params",
    "env_takes_data",
    "has_torch_backend",
    "register_envs",
]
