"""``rlrec recommend``: the top-k unrated movies a saved model scores highest for one user."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlrec.agents.runs import RUN_FILE, LoadedRun, check_data_fingerprint, load_run
from rlrec.agents.scoring import score_movies
from rlrec.data import load_movielens
from rlrec.evaluation.metrics import top_k
from rlrec.evaluation.protocol import make_eval_env, observations_of

__all__ = ["Recommendation", "recommend"]


@dataclass(frozen=True)
class Recommendation:
    """One recommended movie."""

    rank: int
    movie_id: int
    title: str
    score: float


def recommend(
    model_path: str | os.PathLike[str], user_id: int, k: int = 10, data: Any = None
) -> tuple[LoadedRun, list[Recommendation]]:
    """The ``k`` movies the saved model scores highest for ``user_id``, among those the user has not rated.

    Scores come from ``rlrec.agents.scoring.score_movies`` on the user's observation in the run's env.

    :param model_path: a run folder or its model file.
    :param data: the ratings to read the user from; default: the run's own data.
    :raises ValueError: unknown user, or ``k < 1``.
    """
    if k < 1:
        raise ValueError(f"-k: must be >= 1, got {k}")
    run = load_run(model_path)
    if data is None:
        # run_info.data_source is the source as given ("ml-latest-small", "synthetic:n_users=60");
        # "data" is only its label when the run trained on a split's train part.
        data = (run.config.get("run_info") or {}).get("data_source", run.config["data"])
    dataset = load_movielens(data)
    check_data_fingerprint(run.config, dataset, run.run_dir / RUN_FILE)
    try:
        user_index = dataset.user_index(int(user_id))
    except KeyError:
        raise ValueError(f"--user: unknown user id {user_id} in {dataset.name}") from None
    env = make_eval_env(dataset, run.config["env_id"], run.config.get("env_kwargs"))
    states = np.array([user_index], dtype=np.int64)
    scores = score_movies(run.model, observations_of(env, states), states=states)[0]
    rated, _ = dataset.user_row(user_index)
    scores = np.asarray(scores, dtype=np.float64).copy()
    scores[rated] = -np.inf
    best = [int(j) for j in top_k(scores[None], min(k, len(scores)))[0] if np.isfinite(scores[j])]
    picks = [
        Recommendation(
            rank=i + 1,
            movie_id=int(dataset.movie_ids[j]),
            title=str(dataset.titles[j]),
            score=float(scores[j]),
        )
        for i, j in enumerate(best)
    ]
    env.close()
    return run, picks
