"""The held-out ranking protocol, the same for RL learners and baselines.

1. Split the ratings per user in time (:func:`rlrec.data.split.temporal_split`); envs,
   learners and baselines see only the train part.
2. For every user with at least one liked (>= 4 stars) test movie, score the whole catalogue:

   * a learner: its env is built on the TRAIN dataset, ``env.unwrapped.observations(users)``
     gives each user's observation (their whole train history) and
     ``rlrec.agents.scoring.score_movies(model, obs, states=users)`` turns it into one score
     per movie (Q-values, policy logits, ... whatever the learner ranks by);
   * a baseline: ``baseline.fit(train).score(users)``.

3. Mask the user's train movies, take the top K (ties to the lower movie index) and average
   NDCG, precision, recall, hit rate, MRR and catalogue coverage
   (:func:`rlrec.evaluation.metrics.evaluate_scores`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

import gymnasium
import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from rlrec.agents.runs import RUN_FILE, check_data_fingerprint, load_run
from rlrec.agents.scoring import score_movies
from rlrec.data import load_movielens
from rlrec.data.dataset import RatingsDataset
from rlrec.data.split import DEFAULT_MIN_RATINGS, DEFAULT_TEST_FRACTION, Split, temporal_split
from rlrec.envs import MOVIELENS_ID, register_envs
from rlrec.evaluation.baselines import GRIDS, make_baseline, select_on_validation
from rlrec.evaluation.metrics import RELEVANCE_THRESHOLD, ScoreFn, evaluate_scores

__all__ = [
    "DEFAULT_EVAL_ENV_ID",
    "evaluate_baseline",
    "evaluate_baseline_on",
    "evaluate_model",
    "evaluate_run",
    "make_eval_env",
    "model_score_fn",
    "observations_of",
    "protocol_description",
]

DEFAULT_EVAL_ENV_ID = MOVIELENS_ID


def protocol_description(split: Split, k: int, threshold: float = RELEVANCE_THRESHOLD) -> dict[str, Any]:
    """JSON-ready account of how numbers were measured (goes into results files)."""
    return {
        **split.describe(),
        "k": k,
        "relevance": f"test rating >= {threshold:g}",
        "ranking": "whole catalogue minus the user's train movies; ties to the lower movie index",
        "users": "users with at least one relevant test movie",
    }


# ------------------------------------------------------------------- learners
def make_eval_env(
    train: RatingsDataset, env_id: str = DEFAULT_EVAL_ENV_ID, env_kwargs: Mapping[str, Any] | None = None
) -> Any:
    """The env a learner is evaluated in: ``env_id`` built on the TRAIN dataset.

    ``max_episode_steps`` (a ``gymnasium.make`` argument some runs record) is dropped: evaluation
    never steps the env.
    """
    register_envs()

    kwargs = dict(env_kwargs or {})
    kwargs.pop("max_episode_steps", None)
    kwargs.pop("data", None)
    return gymnasium.make(env_id, data=train, disable_env_checker=True, **kwargs)


def _env_dataset(env: Any) -> RatingsDataset | None:
    base = getattr(env, "unwrapped", env)
    dataset = getattr(base, "dataset", None)
    return dataset if isinstance(dataset, RatingsDataset) else None


def observations_of(env: Any, user_indices: np.ndarray) -> np.ndarray:
    """Each user's observation from ``env``: a Gymnasium env, a Gymnasium vector env or an SB3 VecEnv."""
    users = np.asarray(user_indices, dtype=np.int64)
    if isinstance(env, VecEnv):
        return np.asarray(env.env_method("observations", users, indices=[0])[0])
    for candidate in (getattr(env, "unwrapped", None), env):
        method = getattr(candidate, "observations", None)
        if callable(method):
            return np.asarray(method(users))
    raise ValueError(
        f"{type(env).__name__}: the env has no observations(user_indices) method to evaluate with"
    )


def check_env_on_train(env: Any, split: Split) -> None:
    """``ValueError`` when ``env`` visibly holds other ratings than the split's train part.

    An env built on the full data would show the agent its test movies: the protocol would then
    measure memory, not prediction.
    """
    if isinstance(env, VecEnv):
        try:
            dataset = env.get_attr("dataset", indices=[0])[0]
        except AttributeError:
            return
    else:
        dataset = _env_dataset(env)
    if isinstance(dataset, RatingsDataset) and (
        dataset.n_ratings != split.train.n_ratings or dataset.ratings.shape != split.train.ratings.shape
    ):
        raise ValueError(
            f"the env holds {dataset.n_ratings:,} ratings but the split's train part has "
            f"{split.train.n_ratings:,}: build the env on split.train"
        )


def model_score_fn(model: Any, env: Any) -> ScoreFn:
    """``score_fn(users)`` of a trained learner: its scores for the users' observations in ``env``."""

    def score_fn(users: np.ndarray) -> np.ndarray:
        observations = observations_of(env, users)
        return np.asarray(score_movies(model, observations, states=users))

    return score_fn


def evaluate_model(
    model: Any,
    split: Split,
    env: Any = None,
    env_id: str = DEFAULT_EVAL_ENV_ID,
    env_kwargs: Mapping[str, Any] | None = None,
    k: int = 10,
    batch_size: int = 256,
    per_user: bool = False,
    users: np.ndarray | None = None,
) -> dict[str, Any]:
    """Ranking metrics of a learner under the protocol.

    :param model: any learner ``rlrec.agents.scoring.score_movies`` knows.
    :param split: the split the model was trained on (its train part).
    :param env: an env over ``split.train`` to read observations from (a Gymnasium env, vector
        env or SB3 VecEnv, e.g. ``model.get_env()``); default: ``env_id`` with ``env_kwargs``
        built on ``split.train``.
    :param env_id: Gymnasium id when ``env`` is not given; default ``rlrec/MovieLens-v0``.
    :param env_kwargs: the env arguments the model was trained with (observation encoding...).
    :param k: cut-off; default 10.
    :param batch_size: users per ``score_movies`` call; default 256.
    :param per_user: also each user's NDCG@K (see :func:`rlrec.evaluation.metrics.evaluate_scores`).
    :param users: rank only these user indices (a sample of a large world); default all.
    """
    own_env = env is None
    if own_env:
        env = make_eval_env(split.train, env_id, env_kwargs)
    else:
        check_env_on_train(env, split)
    try:
        return evaluate_scores(
            model_score_fn(model, env), split, k=k, batch_size=batch_size, per_user=per_user, users=users
        )
    finally:
        if own_env:
            env.close()


# ------------------------------------------------------------------ baselines
def evaluate_baseline(
    baseline: Any,
    split: Split,
    k: int = 10,
    seed: int = 0,
    batch_size: int = 256,
    select: bool = True,
    per_user: bool = False,
    **baseline_kwargs: Any,
) -> dict[str, Any]:
    """Fit a baseline on ``split.train`` and measure it; adds ``train_seconds`` (the fit's wall time).

    :param baseline: a name of :data:`rlrec.evaluation.baselines.BASELINES` or an unfitted baseline.
    :param seed: for the baselines that draw random numbers.
    :param select: for a baseline with a grid (EASE, EDLAE) given by name without parameters,
        choose them on a validation split of ``split.train`` first
        (:func:`rlrec.evaluation.baselines.select_on_validation`); the result then holds
        ``params``, ``validation_ndcg@k`` and the selection's seconds in ``train_seconds``. SASRec
        and GRU4Rec report the epoch count they chose on validation the same way.
    :param per_user: also each user's NDCG@K (see :func:`rlrec.evaluation.metrics.evaluate_scores`).
    :param baseline_kwargs: the baseline's own parameters when ``baseline`` is a name.
    """
    started = time.perf_counter()
    chosen = None
    if isinstance(baseline, str) and select and baseline in GRIDS and not baseline_kwargs:
        chosen = select_on_validation(baseline, split.train, k=k)
        baseline_kwargs = dict(chosen.params)
    model = make_baseline(baseline, seed=seed, **baseline_kwargs) if isinstance(baseline, str) else baseline
    model.fit(split.train)
    # SASRec and GRU4Rec choose their epoch count on validation inside ``fit``.
    chosen = chosen or getattr(model, "selection", None)
    fit_seconds = time.perf_counter() - started
    metrics: dict[str, Any] = dict(
        evaluate_scores(model.score, split, k=k, batch_size=batch_size, per_user=per_user)
    )
    metrics["train_seconds"] = round(fit_seconds, 3)
    if chosen is not None:
        metrics["params"] = chosen.params
        metrics[f"validation_ndcg@{k}"] = chosen.score
    return metrics


def evaluate_baseline_on(
    data: Any,
    name: str,
    k: int = 10,
    seed: int = 0,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    min_ratings: int = DEFAULT_MIN_RATINGS,
    **baseline_kwargs: Any,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``data`` (anything ``rlrec.data.load_movielens`` takes) and evaluate baseline ``name``.

    :return: ``(metrics, info)``; ``info`` names the baseline, the data and the protocol.
    """
    dataset = load_movielens(data)
    split = temporal_split(dataset, test_fraction, min_ratings)
    metrics = evaluate_baseline(name, split, k=k, seed=seed, **baseline_kwargs)
    info = {"baseline": name, "data": dataset.name, "seed": seed, "protocol": protocol_description(split, k)}
    return metrics, info


# ------------------------------------------------------------------ saved runs
def evaluate_run(
    path: str | os.PathLike[str],
    data: Any = None,
    k: int = 10,
    test_fraction: float | None = None,
    min_ratings: int | None = None,
    batch_size: int = 256,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Evaluate a model saved by ``rlrec train`` under the protocol.

    The split is rebuilt from ``data`` (default: the run's own data, ``run_info.data_source`` when
    recorded) with the run's recorded split settings (``run.json``'s ``run_info.split``) unless
    given here; the env is rebuilt on the train part with the run's env id and env kwargs.

    :return: ``(metrics, info)``; ``info`` holds the run's algo, env id, data and the protocol.
    """
    run = load_run(path)
    config = run.config
    recorded = dict((config.get("run_info") or {}).get("split") or {})
    fraction = (
        test_fraction if test_fraction is not None else recorded.get("test_fraction", DEFAULT_TEST_FRACTION)
    )
    minimum = min_ratings if min_ratings is not None else recorded.get("min_ratings", DEFAULT_MIN_RATINGS)
    # ``run_info.data_source`` is the source as given (e.g. "synthetic:n_users=60"); ``data`` is its label.
    source = data if data is not None else (config.get("run_info") or {}).get("data_source", config["data"])
    dataset = load_movielens(source)
    check_data_fingerprint(config, dataset, run.run_dir / RUN_FILE)
    split = temporal_split(dataset, float(fraction), int(minimum))
    metrics = evaluate_model(
        run.model,
        split,
        env_id=config["env_id"],
        env_kwargs=config.get("env_kwargs"),
        k=k,
        batch_size=batch_size,
    )
    info = {
        "algo": config.get("algo"),
        "env_id": config["env_id"],
        "data": dataset.name,
        "trained_on_split": bool(recorded),
        "protocol": protocol_description(split, k),
    }
    return metrics, info
