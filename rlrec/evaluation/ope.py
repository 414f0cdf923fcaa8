"""Off-policy evaluation: a target policy's value from logged data, and the truth to check it against.

Estimators, written small (Open Bandit Pipeline installs here but needs dense ``rounds x actions``
arrays, 720 MB per array for 10,000 steps over 9,000 movies; SCOPE-RL pins gym 0.26 and
Gymnasium 1.0):

per step (each logged step a contextual-bandit round: context = the user, :func:`per_step`)

* ``ips``: ``mean(w r)`` with ``w = pi(a | x) / mu(a | x)``, the logged propensity ``mu``;
* ``snips``: ``sum(w r) / sum(w)`` (self-normalised);
* ``dm``: ``mean(sum_a pi(a | x) rhat(x, a))`` with a reward model ``rhat`` fitted on the log;
* ``dr``: ``dm + mean(w (r - rhat(x, a)))`` (doubly robust);

per decision (whole episodes, :func:`per_decision`)

* ``pdis``: ``mean over episodes of sum_t gamma^t (prod_{s <= t} w_s) r_t``;
* ``wpdis``: the same with each step's product of weights normalised over the episodes.

Confidence intervals are bootstrap percentiles over rounds (or episodes). :func:`true_value`
is the exact per-step value of a policy from the env's own reward function, over the users the
env draws: on a synthetic world (its true preferences) or any data (its ratings and simulator).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import scipy.sparse as sp

from rlrec.agents.runs import check_data_fingerprint, load_run, load_run_config
from rlrec.agents.scoring import score_movies
from rlrec.data.dataset import RatingsDataset
from rlrec.data.simulator import RatingSimulator
from rlrec.envs import MOVIELENS_ID, check_env_kwargs
from rlrec.envs.movielens import seed_rewards
from rlrec.evaluation.offline import (
    Behaviour,
    LoggedSteps,
    log_dataset,
    logged_steps,
    make_behaviour,
    recover_env,
    restore_dataset,
)
from rlrec.evaluation.offline import (
    dataset_id as default_dataset_id,
)
from rlrec.utils.progress import status

__all__ = [
    "PER_DECISION",
    "PER_STEP",
    "Estimate",
    "fit_reward_model",
    "per_decision",
    "per_step",
    "policy_on_steps",
    "true_value",
]

PER_STEP = ("ips", "snips", "dm", "dr")
PER_DECISION = ("pdis", "wpdis")
#: Rows of probabilities built at once: bounds memory at ``_CHUNK x n_movies`` floats.
_CHUNK = 512


@dataclass(frozen=True)
class Estimate:
    """An estimator's value and its bootstrap confidence interval."""

    name: str
    value: float
    low: float
    high: float


def _bootstrap(
    statistic: Callable[[np.ndarray], float], n: int, n_bootstrap: int, seed: int, level: float
) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    draws = [statistic(rng.integers(0, n, n)) for _ in range(n_bootstrap)]
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(draws, [tail, 100.0 - tail])
    return float(low), float(high)


def per_step(
    rewards: np.ndarray,
    behaviour_probs: np.ndarray,
    target_probs: np.ndarray,
    dm_values: np.ndarray,
    reward_hat: np.ndarray,
    n_bootstrap: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Estimate]:
    """IPS, SNIPS, DM and DR from per-step arrays.

    :param rewards: ``r_i``.
    :param behaviour_probs: ``mu(a_i | x_i)``, the logged propensities (> 0).
    :param target_probs: ``pi(a_i | x_i)``.
    :param dm_values: ``sum_a pi(a | x_i) rhat(x_i, a)``.
    :param reward_hat: ``rhat(x_i, a_i)``.
    """
    r, mu, pi = (np.asarray(x, dtype=np.float64) for x in (rewards, behaviour_probs, target_probs))
    dm, rhat = np.asarray(dm_values, dtype=np.float64), np.asarray(reward_hat, dtype=np.float64)
    if (mu <= 0).any():
        raise ValueError("behaviour propensities must be > 0 (the logged action had probability 0)")
    w = pi / mu
    formulas: dict[str, Callable[[np.ndarray], float]] = {
        "ips": lambda i: float(np.mean(w[i] * r[i])),
        "snips": lambda i: float(np.sum(w[i] * r[i]) / np.sum(w[i])) if np.sum(w[i]) > 0 else 0.0,
        "dm": lambda i: float(np.mean(dm[i])),
        "dr": lambda i: float(np.mean(dm[i] + w[i] * (r[i] - rhat[i]))),
    }
    everything = np.arange(len(r))
    out = {}
    for index, (name, formula) in enumerate(formulas.items()):
        low, high = _bootstrap(formula, len(r), n_bootstrap, seed + index, level)
        out[name] = Estimate(name, formula(everything), low, high)
    return out


def per_decision(
    steps: LoggedSteps,
    target_probs: np.ndarray,
    gamma: float = 1.0,
    n_bootstrap: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Estimate]:
    """Per-decision importance sampling over whole episodes (PDIS and its weighted form)."""
    ratios = np.asarray(target_probs, dtype=np.float64) / steps.propensities
    bounds = np.r_[steps.episode_starts, len(ratios)]
    horizon = int(np.max(np.diff(bounds)))
    n = len(bounds) - 1
    # Per episode and step t: the cumulative product of weights and the discounted reward (0 past the end).
    weights, returns = np.zeros((n, horizon)), np.zeros((n, horizon))
    for e in range(n):
        span = slice(bounds[e], bounds[e + 1])
        length = bounds[e + 1] - bounds[e]
        weights[e, :length] = np.cumprod(ratios[span])
        # An ended episode stays in its absorbing state: reward 0, weight as at its last step.
        weights[e, length:] = weights[e, length - 1]
        returns[e, :length] = steps.rewards[span] * gamma ** np.arange(length)

    def pdis(i: np.ndarray) -> float:
        return float(np.mean(np.sum(weights[i] * returns[i], axis=1)))

    def wpdis(i: np.ndarray) -> float:
        totals = weights[i].sum(axis=0)
        normalised = np.divide(weights[i], totals, out=np.zeros_like(weights[i]), where=totals > 0)
        return float(np.sum(normalised * returns[i]))

    everything = np.arange(n)
    out = {}
    for index, (name, formula) in enumerate((("pdis", pdis), ("wpdis", wpdis))):
        low, high = _bootstrap(formula, n, n_bootstrap, seed + index, level)
        out[name] = Estimate(name, formula(everything), low, high)
    return out


def fit_reward_model(steps: LoggedSteps, dataset: Any, n_factors: int = 8, seed: int = 0) -> Any:
    """``rhat``: a biased matrix factorisation of the logged ``(user, movie) -> reward`` triples
    (:class:`rlrec.data.simulator.RatingSimulator`; repeated pairs averaged)."""
    shape = (dataset.n_users, dataset.n_movies)
    sums = sp.csr_matrix((steps.rewards, (steps.states, steps.actions)), shape=shape)
    counts = sp.csr_matrix((np.ones(len(steps.rewards)), (steps.states, steps.actions)), shape=shape)
    sums.sum_duplicates()
    counts.sum_duplicates()
    mean = sums.copy()
    mean.data = (sums.data / counts.data).astype(np.float32)
    logged = RatingsDataset(
        name="logged", user_ids=dataset.user_ids, movie_ids=dataset.movie_ids, titles=dataset.titles,
        genres=dataset.genres, ratings=mean, timestamps=np.zeros(mean.nnz, dtype=np.int64),
    )  # fmt: skip
    return RatingSimulator.fit(logged, n_factors=n_factors, seed=seed)


def policy_on_steps(
    target: Behaviour, steps: LoggedSteps, reward_model: Any, n_movies: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(pi(a_i | x_i), sum_a pi(a | x_i) rhat(x_i, a), rhat(x_i, a_i))`` for every logged step
    (every movie allowed: the per-step OPE envs do not mask)."""
    target_probs = np.empty(len(steps.actions))
    dm_values = np.empty(len(steps.actions))
    movies = np.arange(n_movies)
    for start in range(0, len(steps.actions), _CHUNK):
        rows = slice(start, start + _CHUNK)
        states = steps.states[rows]
        masks = np.ones((len(states), n_movies), dtype=bool)
        probs = target.probabilities(steps.observations[rows], states, masks)
        target_probs[rows] = probs[np.arange(len(states)), steps.actions[rows]]
        rhat = reward_model.predict_pairs(np.repeat(states, n_movies), np.tile(movies, len(states)))
        dm_values[rows] = np.sum(probs * rhat.reshape(len(states), n_movies), axis=1)
    reward_hat = reward_model.predict_pairs(steps.states, steps.actions).astype(np.float64)
    return target_probs, dm_values, reward_hat


def true_value(target: Behaviour, env: Any) -> float:
    """The exact expected reward per step of ``target`` in a ``MovieLens-v0`` env whose next user is
    drawn uniformly (``user_order="random"``): the mean over its users of ``sum_a pi(a | u) R(u, a)``,
    with ``R`` the env's own reward function (the rating, else the fallback of its reward mode)."""
    base = env.unwrapped
    world, users = base.world, base.world.users
    n_movies = world.n_movies
    total = 0.0
    for start in range(0, len(users), _CHUNK):
        chunk = users[start : start + _CHUNK]
        observations = base.observations(chunk)
        probs = target.probabilities(observations, chunk, np.ones((len(chunk), n_movies), dtype=bool))
        rewards, _ = seed_rewards(
            world, base.reward_mode, np.repeat(chunk, n_movies), np.tile(np.arange(n_movies), len(chunk))
        )
        total += float(np.sum(probs * rewards.reshape(len(chunk), n_movies)))
    return total / len(users)


# ----------------------------------------------------------------------------- end to end
def model_scores(model_path: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``scores(observations, states)`` of a model saved by ``rlrec train`` (any learner)."""
    model = load_run(model_path).model
    return lambda observations, states: score_movies(model, observations, states=states)


def behaviour_spec(dataset: Any) -> dict[str, Any]:
    """The behaviour policy ``rlrec data log`` recorded in a Minari dataset's ``algorithm_name``."""
    text = str(dataset.storage.metadata.get("algorithm_name") or "")
    prefix = "rlrec "
    if not text.startswith(prefix):
        raise ValueError(f"{dataset.id}: not written by rlrec data log (no behaviour recorded)")
    return dict(json.loads(text[len(prefix) :]))


@dataclass
class OPEReport:
    """What ``rlrec ope`` prints: estimates on the logged data, and the truth with errors over seeds."""

    estimates: dict[str, Estimate]
    n_steps: int
    n_episodes: int
    truth: float | None = None
    #: per estimator, its estimate on each re-logged seed (``--truth --seeds``).
    over_seeds: dict[str, list[float]] | None = None

    def seed_summary(self, name: str) -> tuple[float, float, float]:
        """``(mean, bias, RMSE)`` of estimator ``name`` over the re-logged seeds, against the truth."""
        if self.truth is None or not self.over_seeds:
            raise ValueError("seed_summary: needs the truth and re-logged seeds (--truth --seeds N)")
        values = np.asarray(self.over_seeds[name], dtype=np.float64)
        mean = float(values.mean())
        return mean, mean - self.truth, float(np.sqrt(np.mean((values - self.truth) ** 2)))


def evaluate_logged(
    dataset_id: str,
    target: Behaviour,
    truth: bool = False,
    seeds: int = 0,
    gamma: float = 1.0,
    n_bootstrap: int = 1000,
    seed: int = 0,
    model_path: str | None = None,
) -> OPEReport:
    """Estimate ``target``'s value from a Minari dataset of ``rlrec data log``.

    The dataset's env is rebuilt from rlrec's registry (:func:`rlrec.evaluation.offline.recover_env`:
    a dataset never names code to run); it must be ``rlrec/MovieLens-v0`` without
    ``mask_recommended`` (the per-step estimators' setting), and a ``model_path`` (the run the
    target's scores come from) must have been trained on the same data (fingerprint).

    :param truth: also compute the exact value (:func:`true_value`) in the recovered env.
    :param seeds: with ``truth``, re-log the recorded behaviour policy this many times (seeds
        ``0 .. seeds - 1``, as many steps as the dataset) and keep every per-step estimate, for the
        bias and RMSE of each estimator.
    """
    try:
        import minari
    except ImportError:
        raise ValueError("rlrec ope: needs Minari: pip install 'rlrec[offline]'") from None

    restore_dataset(dataset_id)
    try:
        dataset = minari.load_dataset(dataset_id)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        raise ValueError(f"--dataset: {dataset_id}: not a Minari dataset here ({exc})") from None
    if dataset.spec.env_spec is not None and dataset.spec.env_spec.id != MOVIELENS_ID:
        raise ValueError(
            f"--dataset: {dataset_id} is a log of {dataset.spec.env_spec.id}; per-step OPE reads "
            f"{MOVIELENS_ID} logs (binary and rating rewards do not mix)"
        )
    env = recover_env(dataset)
    base = env.unwrapped
    if getattr(base, "mask_recommended", False) or not hasattr(base, "world"):
        raise ValueError(f"{dataset_id}: per-step OPE needs a MovieLens-v0 log without mask_recommended")
    if model_path is not None:
        config, record = load_run_config(model_path)
        check_data_fingerprint(config, base.world.dataset, record)
    steps = logged_steps(dataset.iterate_episodes())
    estimates = _estimates(steps, target, base.world.dataset, gamma, n_bootstrap, seed)
    report = OPEReport(estimates, len(steps.actions), len(steps.episode_starts))
    if truth:
        with status("computing the target's exact value in the recovered env"):
            report.truth = true_value(target, env)
        if seeds > 0:
            spec = behaviour_spec(dataset)
            scores = model_scores(spec["model"]) if spec.get("model") else None
            behaviour = make_behaviour(spec["policy"], scores, base.world.dataset.movie_counts,
                                       spec.get("epsilon", 0.1), spec.get("temperature", 1.0))  # fmt: skip
            report.over_seeds = {name: [] for name in PER_STEP}
            env_kwargs = dict(env.spec.kwargs)
            for run in range(seeds):
                _, episodes = log_dataset(
                    env.spec.id, env_kwargs, behaviour, report.n_steps, seed=run, write=False
                )
                again = _estimates(logged_steps(episodes), target, base.world.dataset, gamma, 0, run)
                for name in PER_STEP:
                    report.over_seeds[name].append(again[name].value)
    env.close()
    return report


def _estimates(
    steps: LoggedSteps, target: Behaviour, dataset: Any, gamma: float, n_bootstrap: int, seed: int
) -> dict[str, Estimate]:
    reward_model = fit_reward_model(steps, dataset, seed=seed)
    target_probs, dm_values, reward_hat = policy_on_steps(target, steps, reward_model, dataset.n_movies)
    rounds = max(n_bootstrap, 1)
    estimates = per_step(steps.rewards, steps.propensities, target_probs, dm_values, reward_hat, rounds, seed)
    if n_bootstrap > 0:
        estimates.update(per_decision(steps, target_probs, gamma, rounds, seed))
    return estimates


def log_policy(
    env_id: str,
    data: str,
    env_kwargs: Mapping[str, Any],
    policy: str,
    n_steps: int,
    seed: int = 0,
    model: str | None = None,
    epsilon: float = 0.1,
    temperature: float = 1.0,
    name: str | None = None,
) -> tuple[Any, str]:
    """``rlrec data log``: roll the behaviour ``policy`` through ``env_id`` on ``data`` into a Minari dataset.

    :param data: a source text (recorded with the dataset, so the env can be rebuilt).
    :param model: a trained run whose scores the ``epsilon-greedy`` and ``softmax`` policies use.
    :return: ``(MinariDataset, its id)``.
    """
    env_kwargs = dict(env_kwargs)
    check_env_kwargs(env_id, env_kwargs)
    env_kwargs["data"] = data
    probe = gymnasium.make(env_id, **env_kwargs)
    counts = probe.unwrapped.dataset.movie_counts  # type: ignore[attr-defined]
    probe.close()
    scores = model_scores(model) if model else None
    behaviour = make_behaviour(policy, scores, counts, epsilon, temperature)
    model_path = str(Path(model).resolve()) if model else None
    spec = {"epsilon": epsilon, "temperature": temperature, "model": model_path, "seed": seed}
    name = name or default_dataset_id(env_id, policy)
    dataset, _ = log_dataset(env_id, env_kwargs, behaviour, n_steps, seed, name, spec=spec)
    return dataset, name
