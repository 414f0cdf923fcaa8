"""Sim-to-real: agents trained in a fitted simulator, scored in it, under the truth, and on held-out ratings.

On the calibrated synthetic world (``synthetic``: its ground truth is known) and on a real release
(held-out NDCG@10 is the only truth there), for each simulator setting (``lambda=0``: the plain
ensemble mean, beside the shipped guards, :data:`SHIPPED`):

1. fit an :class:`rlrec.data.simulator.EnsembleSimulator` on the train part of the temporal split
   (the logged data; never validation or test);
2. train the agents in ``rlrec/MovieLensSlate-v0`` (or the session env) whose feedback is that
   simulator: ``ppo-slate`` (ppo.yml's slate recipe), ``slateq-slate`` (slateq.yml's, with
   simulated feedback) and ``dqn-session`` with ``reward_mode="simulated"``;
3. score every agent and three fixed policies (random, popularity, EASE-greedy: each shows the
   ten allowed movies it scores highest) three ways: the **simulated return** (expected clicks
   per slate when the simulator is the user), the **true return** (the same under the world's
   true preferences; synthetic only) and **held-out NDCG@10** (the ranking protocol);
4. print per policy the two returns and their gap, Kendall's tau between the simulator's ranking
   of the policies and the truth's, and what each recommends (mean popularity percentile of the
   movies it shows, catalogue coverage, Gini of how often each movie is shown).

    python benchmarks/bench_sim2real.py                                  # synthetic and 2016
    python benchmarks/bench_sim2real.py --sources synthetic --seed 1

Agents train a fixed budget each (``--timesteps``), no validation-based stopping: the question is
what the simulator teaches, not the best stopping point.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import kendalltau

from rlrec.agents.recipes import load_hyperparams, split_hyperparams
from rlrec.agents.scoring import score_movies
from rlrec.data import load_movielens
from rlrec.data.simulator import EnsembleSimulator
from rlrec.data.split import temporal_split
from rlrec.envs import SESSION_ID, SLATE_ID
from rlrec.evaluation.baselines import make_baseline
from rlrec.evaluation.protocol import evaluate_baseline, evaluate_model
from rlrec.evaluation.slates import expected_clicks_per_step
from rlrec.experiments.training import train

REPO = Path(__file__).resolve().parents[1]
#: The slate env every policy is scored in, and the simulator settings it ships with: ppo.yml's
#: slate recipe (simulated clicks, "hits" click model, rlrec.data.simulator.EnsembleSimulator).
_RECIPE = split_hyperparams("ppo", load_hyperparams("ppo", SLATE_ID)).env_kwargs
SHIPPED: dict[str, Any] = dict(_RECIPE["simulator"])
#: lambda = 0 and no shrinkage: the ensemble's plain mean.
PLAIN: dict[str, Any] = {"n_models": SHIPPED.get("n_models", 5), "penalty": 0.0, "shrinkage": 0.0}
SLATE_ENV: dict[str, Any] = {key: value for key, value in _RECIPE.items() if key != "simulator"}
AGENTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "ppo-slate": ("ppo", SLATE_ID, dict(SLATE_ENV)),
    "slateq-slate": ("slateq", SLATE_ID, dict(SLATE_ENV)),
    "dqn-session": (
        "dqn",
        SESSION_ID,
        {"reward_mode": "simulated", "hidden_fraction": 0.8, "observation": "binary"},
    ),
}
DEFAULT_TIMESTEPS = {"ppo-slate": 60_000, "slateq-slate": 100_000, "dqn-session": 300_000}

ScoreFn = Callable[[np.ndarray, Any], np.ndarray]


def top_slates(score_fn: ScoreFn, size: int) -> Callable[[np.ndarray, Any], np.ndarray]:
    """The ``size`` allowed movies a scoring function ranks highest, best first."""

    def policy(observations: np.ndarray, episodes: Any) -> np.ndarray:
        scores = np.where(episodes.mask, score_fn(observations, episodes), -np.inf)
        return np.argsort(-scores, axis=1, kind="stable")[:, :size]

    return policy


def fixed_policies(train: Any, seed: int) -> dict[str, ScoreFn]:
    rng = np.random.default_rng(seed)
    counts = train.movie_counts.astype(np.float64)
    ease = make_baseline("ease").fit(train)

    def ease_scores(observations: np.ndarray, episodes: Any) -> np.ndarray:
        visible = (observations > 0).astype(np.float32)[:, ease.active]
        scores = np.zeros(observations.shape, dtype=np.float32)
        scores[:, ease.active] = visible @ ease.weights
        return scores

    return {
        "random": lambda obs, episodes: rng.random(obs.shape),
        "popularity": lambda obs, episodes: np.broadcast_to(counts, obs.shape),
        "ease-greedy": ease_scores,
    }


def recommended(
    policy: Callable[[np.ndarray, Any], np.ndarray], train: Any, env_kwargs: Mapping[str, Any], seed: int
) -> dict[str, float]:
    """What ``policy`` shows over the scored sessions: mean popularity percentile, coverage, Gini."""
    shown: list[np.ndarray] = []

    def spy(observations: np.ndarray, episodes: Any) -> np.ndarray:
        slates = policy(observations, episodes)
        shown.append(np.asarray(slates).ravel())
        return slates

    expected_clicks_per_step(spy, train, env_kwargs, seed=seed)
    movies = np.concatenate(shown)
    counts = train.movie_counts
    percentile = (np.argsort(np.argsort(counts, kind="stable"), kind="stable") + 0.5) / len(counts)
    frequency = np.sort(np.bincount(movies, minlength=train.n_movies)).astype(np.float64)
    n = len(frequency)
    gini = float(((2 * np.arange(1, n + 1) - n - 1) * frequency).sum() / (n * frequency.sum()))
    return {
        "popularity_percentile": float(percentile[movies].mean()),
        "coverage": float(len(np.unique(movies)) / train.n_movies),
        "gini": gini,
    }


def run_setting(source: str, label: str, options: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    dataset = load_movielens(source)
    split = temporal_split(dataset)
    train_data = split.train
    has_truth = train_data.truth is not None
    started = time.perf_counter()
    simulator = EnsembleSimulator.fit(train_data, seed=args.seed, **options)
    fit_s = time.perf_counter() - started
    simulated_env = {**SLATE_ENV, "simulator": simulator}
    true_env = dict(SLATE_ENV)  # no simulator: a synthetic world's true preferences answer
    rows: dict[str, dict[str, Any]] = {}
    scorers = fixed_policies(train_data, args.seed)
    ndcg_of = {
        "random": evaluate_baseline("random", split, seed=args.seed)["ndcg@10"],
        "popularity": evaluate_baseline("popularity", split)["ndcg@10"],
        "ease-greedy": evaluate_baseline("ease", split, select=False)["ndcg@10"],
    }
    for name in args.agents:
        algo, env_id, env_kwargs = AGENTS[name]
        recipe = split_hyperparams(algo, load_hyperparams(algo, env_id)).env_kwargs
        kwargs = {**recipe, **env_kwargs, "simulator": dict(options, seed=args.seed)}
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as output:
            result = train(
                algo, data=train_data, env_id=env_id, env_kwargs=kwargs, timesteps=args.timesteps.get(name),
                seed=args.seed, output=output, checkpoint_freq=None,
            )  # fmt: skip
        model = result.model
        encode = (lambda obs: np.maximum(obs, 0.0)) if env_id == SESSION_ID else (lambda obs: obs)
        scorers[name] = lambda obs, episodes, model=model, encode=encode: np.asarray(
            score_movies(model, encode(obs))
        )
        eval_kwargs = {key: value for key, value in kwargs.items() if key != "simulator"}
        ndcg_of[name] = evaluate_model(model, split, env_id=env_id, env_kwargs=eval_kwargs)["ndcg@10"]
        rows.setdefault(name, {})["train_s"] = time.perf_counter() - t0
        print(f"  [{label}] trained {name} in {rows[name]['train_s']:.0f} s", flush=True)
    for name, score_fn in scorers.items():
        policy = top_slates(score_fn, SLATE_ENV["slate_size"])
        row = rows.setdefault(name, {})
        row["simulated"] = expected_clicks_per_step(policy, train_data, simulated_env, seed=1000 + args.seed)
        row["true"] = (
            expected_clicks_per_step(policy, train_data, true_env, seed=1000 + args.seed)
            if has_truth
            else None
        )
        row["ndcg@10"] = float(ndcg_of[name])
        row.update(recommended(policy, train_data, simulated_env, 1000 + args.seed))
    report: dict[str, Any] = {
        "source": dataset.name,
        "setting": label,
        "simulator": options,
        "fit_s": fit_s,
        "policies": rows,
    }
    if has_truth:
        names = list(rows)
        tau = kendalltau([rows[n]["simulated"] for n in names], [rows[n]["true"] for n in names])
        report["kendall_tau"] = float(tau.statistic)
    return report


def print_report(report: dict[str, Any]) -> None:
    setting = f"{report['setting']} {report['simulator']} (fit {report['fit_s']:.0f} s)"
    print(f"\n{report['source']}, simulator {setting}")
    print(
        "| policy | simulated clicks/slate | true clicks/slate | gap (sim - true) | gap % | NDCG@10 "
        "| pop. percentile | coverage | Gini |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, row in report["policies"].items():
        sim, true = row["simulated"], row["true"]
        gap = "-" if true is None else f"{sim - true:+.3f}"
        share = "-" if not true else f"{100 * (sim - true) / true:+.0f}%"
        shown_true = "-" if true is None else f"{true:.3f}"
        print(
            f"| {name} | {sim:.3f} | {shown_true} | {gap} | {share} | {row['ndcg@10']:.4f} | "
            f"{row['popularity_percentile']:.2f} | {row['coverage']:.3f} | {row['gini']:.2f} |"
        )
    if "kendall_tau" in report:
        print(
            f"Kendall tau (simulator's ranking of the policies vs the truth's): {report['kendall_tau']:.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    home = Path(os.environ.get("RLREC_DATA") or REPO.parent / "shared" / "data")
    parser.add_argument("--sources", nargs="+", default=["synthetic", str(home / "ml-latest-small-2016")])
    parser.add_argument("--agents", nargs="*", default=list(AGENTS), choices=list(AGENTS))
    parser.add_argument(
        "--settings", nargs="+", default=["lambda=0", "shipped"], choices=["lambda=0", "shipped"]
    )
    parser.add_argument(
        "--timesteps", nargs="*", default=[], metavar="AGENT=N", help="budgets (default per agent)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    args.timesteps = {
        **DEFAULT_TIMESTEPS,
        **{k: int(v) for k, v in (kv.split("=", 1) for kv in args.timesteps)},
    }
    reports = []
    for source in args.sources:
        for label in args.settings:
            report = run_setting(source, label, PLAIN if label == "lambda=0" else SHIPPED, args)
            print_report(report)
            reports.append(report)
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
