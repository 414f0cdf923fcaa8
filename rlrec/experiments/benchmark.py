"""``rlrec benchmark``: train the learners on the train split, rank held-out movies, compare to baselines.

Which env, reward and discount each learner trains with
---------------------------------------------------------

The protocol asks one question of every model: given a user's train history, which movies they
have not rated will they like (rate >= 4) next? A learner answers with
``score_movies(model, obs)``: Q-values, quantile means or policy logits for EVERY movie. So the
benchmark trains each learner on a task whose value of ``(user, movie)`` grows with "the user
rated this movie, and liked it", and whose ranking of all actions, not only the best one, means
something.

* Not the seed reward (``rlrec/MovieLens-v0``, ``reward_mode="seed"``, gamma 0.99): a rated movie
  pays its rating and ENDS the episode, any other movie pays the user's mean and goes on. A return
  is then worth about ``mean / (1 - gamma)`` (~350), so the optimal Q ranks every rated movie
  BELOW every unrated one: the agent learns to avoid what users watch, the opposite of the
  protocol.
* Every learner trains on ``rlrec/MovieLens-v0`` with ``reward_mode="rating"`` (a rated movie
  pays its rating, any other movie 0: nothing pays for avoiding) and ``gamma = 0``. With gamma = 0
  the optimal ``Q(user, movie)`` is the rating if the user rated the movie, else 0: "watched and
  liked", which is what the test part rewards. Any gamma > 0 brings back part of the seed's
  problem: a rated movie ends the episode, so ``Q(unrated) = gamma * V(next user)`` can beat a
  rated movie with a mediocre rating. For PPO / A2C / MaskablePPO gamma = 0 makes the advantage
  the immediate reward minus its baseline (a contextual bandit) and the logits the ranking.
  ``user_order="random"``: with the default ``"sequential"`` every reset restarts at the first
  user and an episode lasts ~1 / density steps, so most users would never be seen.
  MaskablePPO keeps its YAML's ``mask_recommended``.
* Why not ``rlrec/MovieLensSession-v0`` (hide half of the history, pay 1 for finding a hidden liked
  movie)? It is the better-founded objective (a denoising task: the answer is never in the
  observation) but its reward is about 4x sparser, and at small budgets sparsity decides.
  The session entries below train on it with recipes made for it.
* ``dqn-session`` (the bar agent) is ``dqn`` trained on ``rlrec/MovieLensSession-v0`` with the
  ``rlrec/MovieLensSession-v0`` section of ``dqn.yml`` as it is (no override): batched sessions
  hiding most of a binary history, reward 1 for finding a hidden liked movie, gamma 0. It beats
  the sparsity the point above describes by volume (many sessions per step) and by a first
  layer that reads only the visible movies; it is evaluated in the same env encoding, on each
  user's whole train history. ``benchmarks/bench_bar.py`` measures it.
* ``qlearning`` (a table over (user, movie)) cannot generalise to a movie its user never rated in
  train, and every test movie is one: its scores for them are all 0, so its ranking is the
  tie-break order (lowest movie index first). It is the "no generalisation" reference.

The session entries (``<algo>-session`` for ``dqn``, ``sb3-dqn``, ``qrdqn``, ``ppo``, ``a2c``,
``maskable-ppo``) train each algo with its YAML's ``rlrec/MovieLensSession-v0`` section as it is:
the SB3 ones with rlrec's components (``rlrec.nn``) in their policy / optimizer / buffer.

Stopping: every learner trains on the fit part of the validation split carved from train
(:func:`rlrec.experiments.run_experiment`), is ranked on the validation part ten times, and
the best of those models (``best_model.*``) ranks the test part once. The ``eval/ndcg@K`` curves in
``curves.png`` are validation curves, with popularity and EASE on the same split as lines.

Development (``development=True``, ``rlrec benchmark --development``): the same protocol one
level down, for choosing entries and settings without spending test. The train part is the whole
data and its validation part (each user's latest train ratings) is what the report scores;
learners stop on a validation part carved from the fit part; the test part is never read.

Each learner otherwise uses its shipped hyperparameters (``rlrec/hyperparams/<algo>.yml``);
:data:`BENCHMARK_SETUPS` lists exactly what the benchmark overrides.
"""

from __future__ import annotations

import dataclasses
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from rlrec.agents.factory import load_model, make_model
from rlrec.agents.recipes import load_hyperparams, split_hyperparams
from rlrec.agents.runs import data_label
from rlrec.data import load_movielens
from rlrec.data.dataset import RatingsDataset
from rlrec.data.split import (
    DEFAULT_MIN_RATINGS,
    DEFAULT_TEST_FRACTION,
    Split,
    temporal_split,
    validation_split,
)
from rlrec.evaluation.baselines import BASELINES
from rlrec.evaluation.metrics import METRIC_NAMES
from rlrec.evaluation.protocol import evaluate_baseline, evaluate_model, protocol_description
from rlrec.evaluation.significance import paired_difference
from rlrec.experiments.entries import (
    ALIASES,
    BENCHMARK_SETUPS,
    DEFAULT_BASELINES,
    LearnerSetup,
    resolve_algos,
)
from rlrec.experiments.manager import RunSpec, run_experiment
from rlrec.experiments.training import make_training_env
from rlrec.nn import ActionPriorCallback
from rlrec.plotting import plot_learning_curves
from rlrec.utils.io import atomic_open, save_json
from rlrec.utils.progress import announce, status
from rlrec.utils.signals import exit_status, stop_requested, stop_signals

__all__ = [
    "BENCHMARK_SETUPS",
    "DEFAULT_BASELINES",
    "LearnerSetup",
    "compare_with_best_baseline",
    "format_significance",
    "format_table",
    "prior_only_ndcg",
    "resolve_algos",
    "run_benchmark",
]

#: Evaluations per learner during training (the points of the ``eval/ndcg@K`` curve).
N_EVALUATIONS = 10
#: What a report's held-out part is (``protocol.scored_on``), by ``development``.
_SCORED_ON = {
    False: "test",
    True: "validation (development: the train part's own temporal split; test never read)",
}


class StopAtTimesteps(BaseCallback):
    """Ends ``learn`` once ``num_timesteps`` reaches ``timesteps`` (a refit stops where validation chose)."""

    def __init__(self, timesteps: int) -> None:
        super().__init__()
        self.timesteps = int(timesteps)

    def _on_step(self) -> bool:
        return self.num_timesteps < self.timesteps


def _train_learner(
    name: str,
    setup: LearnerSetup,
    data: Any,
    split: Split,
    out: Path,
    timesteps: int | None,
    seed: int,
    k: int,
    progress: bool,
    references: Mapping[str, float] | Sequence[str] | None = None,
    n_evaluations: int = N_EVALUATIONS,
    device: str | None = None,
) -> dict[str, Any]:
    algo = setup.algo or name
    # A setup named after another algo gets its own folder: out/models/<name>/<algo>/.
    models = out / "models" if setup.algo is None else out / "models" / name
    # The entry's run on the train part; stopping is chosen on the validation part carved from it
    # (never on test), and the best evaluation's model then ranks test once.
    spec = RunSpec(
        algo,
        data=split.train,
        env_id=setup.env_id,
        env_kwargs=setup.env_kwargs,
        hyperparams=setup.hyperparams,
        timesteps=timesteps,
        seed=seed,
        holdout=False,
        n_evaluations=n_evaluations,
        references=references,
        k=k,
        output=models,
        tensorboard_log=out / "tb",
        checkpoint_freq=None,
        progress=progress,
        run_info={"split": split.describe(), "data_source": data_label(data), "benchmark": setup.describe()},
        device=device,
    )
    experiment = run_experiment(spec)
    result, callback = experiment.train, experiment.validation
    assert callback is not None  # n_evaluations turns validation on
    # Time spent learning, without the periodic evaluations the callback ran in between.
    evaluating = callback.eval_seconds + callback.reference_seconds
    seconds = max(0.0, float(result.config["train_seconds"]) - evaluating)
    row: dict[str, Any] = {
        "train_seconds": round(seconds, 3),
        "timesteps": result.timesteps,
        "timesteps_target": int(result.config["timesteps_target"]),
        "interrupted": result.interrupted,
    }
    if callback.best is None or experiment.best_model_path is None:
        return row  # stopped before its first evaluation: nothing to rank test with
    best_steps, best_metrics = callback.best
    if setup.refit and not result.interrupted:
        refit = run_experiment(
            replace(
                spec,
                eval_freq=0,
                output=models / "refit",
                tensorboard_log=None,
                callbacks=[StopAtTimesteps(best_steps)],
                run_info={"split": split.describe(), "data_source": data_label(data), "refit_of": best_steps},
            )
        ).train
        model = refit.model
        row["train_seconds"] = round(row["train_seconds"] + float(refit.config["train_seconds"]), 3)
        row["refit_timesteps"] = refit.timesteps
        row["interrupted"] = refit.interrupted
    else:
        hyperparams = load_hyperparams(algo, setup.env_id, setup.hyperparams)
        model = load_model(algo, experiment.best_model_path, hyperparams=hyperparams, device=device or "auto")
    metrics = evaluate_model(
        model, split, env_id=setup.env_id, env_kwargs=callback.env_kwargs, k=k, per_user=True
    )
    return {
        **metrics,
        **row,
        "best_timesteps": best_steps,
        f"validation_ndcg@{k}": best_metrics[f"ndcg@{k}"],
        "validation_curve": [
            {"timesteps": steps, "train_seconds": secs, f"ndcg@{k}": m[f"ndcg@{k}"]}
            for (steps, m), secs in zip(callback.evaluations, callback.train_seconds)
        ],
        "validation_references": dict(callback.references or {}),
    }


def prior_only_ndcg(
    setup: LearnerSetup,
    train: RatingsDataset,
    split: Split,
    seed: int = 0,
    k: int = 10,
    algo: str | None = None,
) -> float | None:
    """Test NDCG@``k`` of the entry's untrained policy with its action prior set from an env on
    ``train`` (the ratings it would train on): the "step 0" that learning has to beat.

    :return: None for a recipe without an action prior (``rlrec.nn.ActionPriorCallback``).
    """
    algo = setup.algo or algo
    if algo is None:
        raise ValueError("prior_only_ndcg: name the algo of a setup that does not")
    recipe = split_hyperparams(algo, load_hyperparams(algo, setup.env_id, setup.hyperparams))
    if ActionPriorCallback not in recipe.callbacks:
        return None
    env_kwargs = {**recipe.env_kwargs, **setup.env_kwargs}
    env = make_training_env(algo, train, setup.env_id, env_kwargs, recipe.n_envs, seed)
    model = make_model(algo, env, recipe.model_kwargs, seed=seed)
    model.policy.set_action_prior(env.env_method("action_prior", indices=[0])[0])
    return float(evaluate_model(model, split, env_id=setup.env_id, env_kwargs=env_kwargs, k=k)[f"ndcg@{k}"])


def compare_with_best_baseline(
    results: Mapping[str, Mapping[str, Any]], baselines: Sequence[str], k: int, seed: int = 0
) -> dict[str, Any] | None:
    """Each other row's per-user NDCG@``k`` against the strongest baseline's, paired by user
    (:func:`rlrec.evaluation.significance.paired_difference`); None without a baseline."""
    measured = [name for name in baselines if name in results]
    if not measured:
        return None
    best = max(measured, key=lambda name: (results[name][f"ndcg@{k}"], name))
    reference = results[best]["per_user"]
    rows: dict[str, Any] = {}
    for name, row in results.items():
        if name == best:
            continue
        mine = row["per_user"]
        if not np.array_equal(mine["users"], reference["users"]):
            raise ValueError(f"{name} and {best} were ranked for different users: not paired")
        compared = paired_difference(mine[f"ndcg@{k}"], reference[f"ndcg@{k}"], seed=seed)
        rows[name] = {**dataclasses.asdict(compared), "tie": compared.tie, "text": compared.describe()}
    return {"baseline": best, "metric": f"ndcg@{k}", "rows": rows}


def format_significance(significance: Mapping[str, Any], k: int) -> str:
    """The paired comparisons as Markdown lines, best difference first."""
    lines = [
        f"Per-user NDCG@{k} minus {significance['baseline']}'s: mean, paired bootstrap 95% interval, "
        "Wilcoxon p (a tie: the interval holds 0)"
    ]
    ordered = sorted(significance["rows"].items(), key=lambda item: -item[1]["difference"])
    lines += [f"- {name}: {row['text']}" for name, row in ordered]
    return "\n".join(lines)


def format_table(results: dict[str, dict[str, Any]], k: int) -> str:
    """A Markdown table, one row per learner or baseline, best NDCG first."""
    regret = any(f"regret@{k}" in row for row in results.values())  # a synthetic world's truth
    extra = [f"regret@{k}"] if regret else []
    headers = ["name", *[f"{name}@{k}" for name in METRIC_NAMES], *extra, "train s"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|"]
    for name, row in sorted(results.items(), key=lambda item: (-item[1][f"ndcg@{k}"], item[0])):
        if row.get("interrupted"):
            name = f"{name} (interrupted at {row['timesteps']:,} of {row['timesteps_target']:,} steps)"
        cells = [
            name,
            *[f"{row[f'{metric}@{k}']:.4f}" for metric in METRIC_NAMES],
            *([f"{row.get(f'regret@{k}', float('nan')):.4f}"] if regret else []),
            f"{row['train_seconds']:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_benchmark(
    data: Any = "synthetic",
    out: str | os.PathLike[str] = "benchmark_out",
    timesteps: int | Mapping[str, int] | None = None,
    seed: int = 0,
    algos: Sequence[str] | None = None,
    baselines: Sequence[str] = DEFAULT_BASELINES,
    k: int = 10,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    min_ratings: int = DEFAULT_MIN_RATINGS,
    progress: bool = False,
    setups: Mapping[str, LearnerSetup] | None = None,
    n_evaluations: int = N_EVALUATIONS,
    references: Sequence[str] | None = None,
    device: str | None = None,
    development: bool = False,
) -> dict[str, Any]:
    """Train ``algos`` on the train split, evaluate them and ``baselines``, write the report.

    Writes ``out/benchmark.json``, ``out/benchmark.md`` and ``out/curves.png`` (learning curves:
    episode return and ``eval/ndcg@K`` per learner), with the models in ``out/models/<algo>/``
    and TensorBoard runs in ``out/tb/``.

    :param data: anything ``rlrec.data.load_movielens`` takes.
    :param out: output folder; its ``tb/`` must not already hold TensorBoard runs (the curves
        would mix two benchmarks).
    :param timesteps: training budget per learner (one number, or one per learner name); default:
        each YAML's ``n_timesteps``.
    :param seed: seeds the learners, their envs and the random baselines.
    :param algos: learners to train; default all of :data:`BENCHMARK_SETUPS`.
    :param baselines: baselines to evaluate; default random, popularity, EASE, ALS.
    :param k: cut-off; default 10.
    :param test_fraction: see :func:`temporal_split`; default 0.2.
    :param min_ratings: see :func:`temporal_split`; default 5.
    :param progress: show a progress bar while each learner trains.
    :param setups: env / hyperparameter choices per algo; default :data:`BENCHMARK_SETUPS`.
    :param n_evaluations: validation evaluations per learner (the points of its curve, where its
        stopping step is chosen); default 10.
    :param references: baselines drawn beside each validation curve, fitted once on the
        validation split; default popularity and EASE (``RankingEvalCallback``'s).
    :param device: where every learner's networks run (``RunSpec.device``); default each recipe's.
    :param development: score the report on the validation part instead of test: the whole
        protocol on the train part alone (see the module docstring); the test part is never read.
    :return: the content of ``benchmark.json``.
    """
    setups = dict(BENCHMARK_SETUPS if setups is None else setups)
    algos = list(setups) if algos is None else resolve_algos(algos)
    unknown = [name for name in algos if name not in setups]
    if unknown:
        known = ", ".join([*setups, *ALIASES])
        raise ValueError(f"--algos: unknown algo {unknown[0]!r} (known: {known})")
    bad = [name for name in baselines if name not in BASELINES]
    if bad:
        raise ValueError(f"baselines: unknown baseline {bad[0]!r} (known: {', '.join(BASELINES)})")
    budgets = dict(timesteps) if isinstance(timesteps, Mapping) else dict.fromkeys(algos, timesteps)
    if any(budget is not None and budget < 1 for budget in budgets.values()):
        raise ValueError(f"--timesteps: must be >= 1, got {timesteps}")
    out = Path(out)
    if algos and (out / "tb").is_dir() and any((out / "tb").rglob("events.out.tfevents.*")):
        raise ValueError(f"--out: {out / 'tb'} already holds TensorBoard runs; choose an empty --out folder")

    dataset = load_movielens(data)
    split = temporal_split(dataset, test_fraction, min_ratings)
    if development:
        split = validation_split(split.train)
    results: dict[str, dict[str, Any]] = {}
    # Validation baselines: fitted by the first learner's callback, then handed to the others.
    fitted: dict[str, float] | Sequence[str] | None = references
    steps_done: dict[str, dict[str, int]] = {}
    with stop_signals():
        # A stop (Ctrl-C, SIGTERM) ends the benchmark after the piece of work it interrupted: the
        # report says so and holds only what was measured.
        for number, algo in enumerate(algos, start=1):
            announce(f"benchmark [{number}/{len(algos) + len(baselines)}] {algo}: training")
            row = _train_learner(
                algo, setups[algo], data, split, out, budgets.get(algo), seed, k, progress, fitted,
                n_evaluations, device,
            )  # fmt: skip
            steps_done[algo] = {"timesteps": row["timesteps"], "timesteps_target": row["timesteps_target"]}
            if f"ndcg@{k}" in row:
                results[algo] = row
                fitted = row["validation_references"]
            if stop_requested() is not None:
                break
        for number, name in enumerate(baselines, start=len(algos) + 1):
            if stop_requested() is not None:
                break
            with status(f"benchmark [{number}/{len(algos) + len(baselines)}] baseline {name}"):
                results[name] = evaluate_baseline(name, split, k=k, seed=seed, per_user=True)
        signum = stop_requested()
    significance = compare_with_best_baseline(results, baselines, k, seed)
    for row in results.values():
        row.pop("n_users", None)
        row.pop("per_user", None)

    report: dict[str, Any] = {
        "dataset": dataset.summary(),
        "protocol": {
            **protocol_description(split, k),
            "seed": seed,
            "timesteps": budgets,
            "scored_on": _SCORED_ON[bool(development)],
        },
        "learners": {algo: setups[algo].describe() for algo in algos},
        "results": results,
        "significance": significance,
    }
    if signum is not None:
        report["interrupted"] = {
            "signal": signal.Signals(signum).name,
            "exit_status": exit_status(signum),
            "steps_done": steps_done,
            "not_run": [name for name in (*algos, *baselines) if name not in steps_done | results],
        }
    out.mkdir(parents=True, exist_ok=True)
    save_json(out / "benchmark.json", report)
    with atomic_open(out / "benchmark.md") as handle:
        handle.write(_markdown(report, k))
    if steps_done:
        plot_learning_curves(
            out / "tb", out / "curves.png", tags=("rollout/ep_rew_mean", f"eval/ndcg@{k}"), title=dataset.name
        )
    return report


def _markdown(report: dict[str, Any], k: int) -> str:
    dataset, protocol = report["dataset"], report["protocol"]
    lines = [
        f"# Benchmark on {dataset['name']}",
        "",
        f"{dataset['users']:,} users, {dataset['movies']:,} movies, {dataset['ratings']:,} ratings. "
        f"Per-user temporal split: the last {protocol['test_fraction']:g} of each user's ratings "
        f"(users with >= {protocol['min_ratings']} ratings) held out; relevant = {protocol['relevance']}; "
        f"ranking over {protocol['ranking']}; seed {protocol['seed']}.",
        "",
        f"Scored on: {protocol['scored_on']}.",
        "",
        format_table(report["results"], k),
        "",
    ]
    if report.get("significance"):
        lines += [format_significance(report["significance"], k), ""]
    stopped = report.get("interrupted")
    if stopped:
        lines += [
            f"**Interrupted** by {stopped['signal']}: the table holds only what was measured before.",
            "",
        ]
        for name, steps in stopped["steps_done"].items():
            lines.append(f"- `{name}`: {steps['timesteps']:,} of {steps['timesteps_target']:,} timesteps")
        if stopped["not_run"]:
            lines.append(f"- not run: {', '.join(stopped['not_run'])}")
        lines.append("")
    if report["learners"]:
        lines += ["Learners (on top of their shipped hyperparameters):", ""]
        for algo, setup in report["learners"].items():
            lines.append(
                f"- `{algo}`: {setup['env_id']} {setup['env_kwargs']}, overrides {setup['hyperparams']}"
            )
        lines.append("")
    return "\n".join(lines)
