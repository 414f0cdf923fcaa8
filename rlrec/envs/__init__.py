"""Gymnasium environments over a ``RatingsDataset``; nothing here knows about any learner.

``rlrec/MovieLens-v0`` (:mod:`rlrec.envs.movielens`, the seed notebook's env) and
``rlrec/MovieLensSession-v0`` (:mod:`rlrec.envs.session`) stand on one
:class:`~rlrec.envs.world.MovieLensWorld`; each has a single env and one batched vector env
(:class:`~rlrec.envs.vector.RecVectorEnv`) as its ``vector_entry_point``.
"""

from __future__ import annotations

import gymnasium

#: The Gymnasium ids rlrec registers; every module names them through these constants.
MOVIELENS_ID = "rlrec/MovieLens-v0"
SESSION_ID = "rlrec/MovieLensSession-v0"
SLATE_ID = "rlrec/MovieLensSlate-v0"
#: Every id rlrec registers.
ENV_IDS = (MOVIELENS_ID, SESSION_ID, SLATE_ID)
#: Episodes of the seed env end only when a recommended movie was rated; this cap makes every
#: episode end. Gymnasium's ``make`` reads ``max_episode_steps=None`` as "the registered default", so
#: ``gymnasium.make(..., max_episode_steps=-1)`` is the way to remove it (Gymnasium's convention);
#: an env built directly and ``make_vec(..., max_episode_steps=None)`` have no cap.
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
