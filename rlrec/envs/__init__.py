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
#: Episodes of the seed env end only when a recommended movie was rated; this cap makes every
#: episode end. Gymnasium's ``make`` reads ``max_episode_steps=None`` as "the registered default", so
#: ``gymnasium.make(..., max_episode_steps=-1)`` is the way to remove it (Gymnasium's convention);
#: an env built directly and ``make_vec(..., max_episode_steps=None)`` have no cap.
DEFAULT_MAX_EPISODE_STEPS = 1000
#: A session is 50 recommendations unless it ends earlier (nothing left to find): 50 single
#: movies, or 5 slates of 10.
SESSION_MAX_EPISODE_STEPS = 50
SLATE_MAX_EPISODE_STEPS = 5


def register_envs() -> None:
    """Register ``rlrec/MovieLens-v0``, ``rlrec/MovieLensSession-v0`` and ``rlrec/MovieLensSlate-v0``
    (idempotent)."""
    registry = gymnasium.envs.registration.registry
    if MOVIELENS_ID not in registry:
        gymnasium.register(
            id=MOVIELENS_ID,
            entry_point="rlrec.envs.movielens:MovieLensEnv",
            vector_entry_point="rlrec.envs.movielens:MovieLensVectorEnv",
            max_episode_steps=DEFAULT_MAX_EPISODE_STEPS,
        )
    if SESSION_ID not in registry:
        gymnasium.register(
            id=SESSION_ID,
            entry_point="rlrec.envs.session:MovieLensSessionEnv",
            vector_entry_point="rlrec.envs.session:MovieLensSessionVectorEnv",
            max_episode_steps=SESSION_MAX_EPISODE_STEPS,
        )
    if SLATE_ID not in registry:
        gymnasium.register(
            id=SLATE_ID,
            entry_point="rlrec.envs.slate:MovieLensSlateEnv",
            vector_entry_point="rlrec.envs.slate:MovieLensSlateVectorEnv",
            max_episode_steps=SLATE_MAX_EPISODE_STEPS,
        )
