"""What each ``rlrec`` command does once parsed: build a run specification or call the library,
then print. Data loading, splits, statistics and checks live in the library.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from rlrec.data import fetch_movielens, load_movielens
from rlrec.data.stats import describe
from rlrec.evaluation.offline import make_behaviour
from rlrec.evaluation.ope import PER_DECISION, PER_STEP, evaluate_logged, log_policy, model_scores
from rlrec.evaluation.protocol import evaluate_baseline_on, evaluate_run
from rlrec.evaluation.recommend import recommend
from rlrec.experiments.benchmark import DEFAULT_BASELINES, format_significance, format_table, run_benchmark
from rlrec.experiments.manager import RunSpec, run_experiment
from rlrec.plotting import find_runs, plot_learning_curves
from rlrec.tuning import hyperparams_from_trial, tune
from rlrec.utils.io import save_json
from rlrec.utils.progress import progress_shown, status
from rlrec.utils.signals import exit_status

__all__ = ["CLIError", "parse_key_values"]


class CLIError(Exception):
    """An expected failure the CLI reports as one line."""


def parse_key_values(items: Sequence[str] | None, flag: str) -> dict[str, Any]:
    """Parse ``k=v`` pairs; values are read as YAML scalars/lists (``0.1``, ``true``, ``[64, 64]``)."""
    parsed: dict[str, Any] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise CLIError(f"{flag}: expected key=value, got {item!r}")
        try:
            parsed[key] = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError as exc:
            raise CLIError(f"{flag}: cannot read value of {key!r}: {exc}".splitlines()[0]) from exc
    return parsed


# --------------------------------------------------------------------------- data
def _cmd_data_info(args: argparse.Namespace) -> int:
    dataset = load_movielens(args.source)
    info = dataset.summary()
    print(f"dataset: {info['name']}")
    print(f"users:   {info['users']:,}")
    print(f"movies:  {info['movies']:,}")
    print(f"ratings: {info['ratings']:,}")
    print(f"rating range: {info['rating_min']:g} .. {info['rating_max']:g}")
    print(f"density: {info['density']:.4%}")
    return 0


def _cmd_data_compare(args: argparse.Namespace) -> int:

    left, right = (describe(load_movielens(source)) for source in (args.a, args.b))
    width = max(len(args.a), len(args.b), 12)
    print(f"{'statistic':<20} {args.a:>{width}} {args.b:>{width}} {'difference':>11}")
    for key, value in left.items():
        if key == "rating_shares":
            continue
        other = right[key]
        if isinstance(value, int):
            print(f"{key:<20} {value:>{width},} {other:>{width},} {other - value:>+11,}")
        else:
            print(f"{key:<20} {value:>{width}.3f} {other:>{width}.3f} {other - value:>+11.3f}")
    for star in sorted(set(left["rating_shares"]) | set(right["rating_shares"]), key=float):
        a, b = left["rating_shares"].get(star, 0.0), right["rating_shares"].get(star, 0.0)
        print(f"{'share of ' + star:<20} {a:>{width}.3f} {b:>{width}.3f} {b - a:>+11.3f}")
    return 0


def _cmd_data_log(args: argparse.Namespace) -> int:
    env_kwargs = parse_key_values(args.env_kwargs, "--env-kwargs")
    dataset, name = log_policy(
        args.env, args.data, env_kwargs, args.policy, args.steps, seed=args.seed, model=args.model,
        epsilon=args.epsilon, temperature=args.temperature, name=args.dataset_id,
    )  # fmt: skip
    print(f"{name}: {dataset.total_episodes} episodes, {dataset.total_steps} steps of {args.policy}")
    print(f"load it with minari.load_dataset({name!r})")
    return 0


def _cmd_ope(args: argparse.Namespace) -> int:

    if args.seeds and not args.truth:
        raise CLIError("--seeds: re-logging for bias and RMSE goes with --truth")
    epsilon = 0.0 if args.policy == "greedy" else args.epsilon
    kind = "epsilon-greedy" if args.policy == "greedy" else args.policy
    target = make_behaviour(kind, model_scores(args.model), epsilon=epsilon, temperature=args.temperature)
    report = evaluate_logged(
        args.dataset, target, truth=args.truth, seeds=args.seeds, gamma=args.gamma,
        n_bootstrap=args.bootstrap, seed=args.seed, model_path=args.model,
    )  # fmt: skip
    print(
        f"{args.dataset}: {report.n_steps} steps, {report.n_episodes} episodes; {args.policy} of {args.model}"
    )
    header = "| per step | estimate | 95% CI |"
    if report.truth is not None:
        header += " truth | error | relative error |"
        if report.over_seeds:
            header += f" mean over {args.seeds} seeds | bias | RMSE |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for name in PER_STEP:
        estimate = report.estimates[name]
        row = f"| {name} | {estimate.value:.4f} | [{estimate.low:.4f}, {estimate.high:.4f}] |"
        if report.truth is not None:
            error = estimate.value - report.truth
            row += f" {report.truth:.4f} | {error:+.4f} | {abs(error) / abs(report.truth):.1%} |"
            if report.over_seeds:
                mean, bias, rmse = report.seed_summary(name)
                row += f" {mean:.4f} | {bias:+.4f} | {rmse:.4f} |"
        print(row)
    print(f"per decision (the return of a whole episode, gamma={args.gamma:g}):")
    for name in PER_DECISION:
        estimate = report.estimates[name]
        print(f"  {name}: {estimate.value:.4f} [{estimate.low:.4f}, {estimate.high:.4f}]")
    return 0


def _cmd_data_fetch(args: argparse.Namespace) -> int:
    path = fetch_movielens(args.name, data_home=args.data_home, base_url=args.base_url)
    print(f"{args.name}: ready in {path}")
    return 0


# -------------------------------------------------------------------------- train
def _cmd_train(args: argparse.Namespace) -> int:
    if args.checkpoint_freq is not None and args.checkpoint_freq < 1:
        raise CLIError(f"--checkpoint-freq: must be >= 1, got {args.checkpoint_freq}")
    hyperparams = parse_key_values(args.hyperparams, "--hyperparams")
    if args.from_trial is not None:
        if args.resume:
            raise CLIError("--from-trial: --resume continues the run's own hyperparameters; omit it")
        trial_algo, trial_hyperparams = hyperparams_from_trial(args.from_trial, args.storage)
        if trial_algo != args.algo:
            raise CLIError(f"--from-trial: {args.from_trial} tuned {trial_algo}, not --algo {args.algo}")
        hyperparams = {**trial_hyperparams, **hyperparams}  # --hyperparams still wins
    spec = RunSpec(
        args.algo,
        data=args.data if args.data is not None or args.resume else "synthetic",
        env_id=args.env,
        env_kwargs=parse_key_values(args.env_kwargs, "--env-kwargs"),
        hyperparams=hyperparams,
        timesteps=args.timesteps,
        seed=args.seed,
        holdout=None if args.split is None else args.split == "temporal",
        eval_freq=args.eval_freq,
        output=args.output,
        tensorboard_log=args.tensorboard_log,
        checkpoint_freq=args.checkpoint_freq,
        resume=args.resume,
        force=args.force,
        progress=args.progress or progress_shown(),
        device=args.device,
    )
    result = run_experiment(spec).train
    if result.interrupted:
        how = "stopped by SIGTERM" if result.signal == signal.SIGTERM else "interrupted"
        saved = (
            f"checkpoint saved in {result.run_dir} (continue with --resume)"
            if result.model_path.is_file() and result.timesteps
            else "nothing trained, nothing saved"
        )
        print(f"rlrec train: {how} at {result.timesteps} timesteps; {saved}", file=sys.stderr)
        return exit_status(result.signal)
    print(f"{args.algo}: {result.timesteps} timesteps in {result.config['train_seconds']:.1f} s")
    print(f"model:  {result.model_path}")
    print(f"config: {result.run_dir / 'run.json'}")
    if result.config.get("tensorboard_run"):
        print(f"tensorboard --logdir {Path(result.config['tensorboard_run']).parent}")
    return 0


def _cmd_recommend(args: argparse.Namespace) -> int:
    run, picks = recommend(args.model, args.user, k=args.k, data=args.data)
    print(f"top {len(picks)} for user {args.user} ({run.config['algo']}, {run.model_path}):")
    print(f"{'rank':>4} {'score':>10}  {'movieId':>7}  title")
    for pick in picks:
        print(f"{pick.rank:>3}. {pick.score:>10.4f}  {pick.movie_id:>7}  {pick.title}")
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    path = plot_learning_curves(args.runs_dir, args.output)
    print(f"{path}: learning curves of {len(find_runs(args.runs_dir))} runs under {args.runs_dir}")
    return 0


# --------------------------------------------------------------------- evaluation
def _cmd_evaluate(args: argparse.Namespace) -> int:

    if args.k < 1:
        raise CLIError(f"-k: must be >= 1, got {args.k}")
    if args.model is not None:
        with status(f"ranking the held-out ratings with {args.model}"):
            metrics, info = evaluate_run(args.model, data=args.data, k=args.k)
        who = f"{info['algo']} ({args.model})"
        if not info["trained_on_split"]:
            print(
                "rlrec evaluate: warning: run.json records no train/test split; if the model trained on the "
                "full data it has seen the test ratings",
                file=sys.stderr,
            )
    else:
        with status(f"fitting {args.baseline} (hyperparameters chosen on validation) and ranking test"):
            metrics, info = evaluate_baseline_on(
                args.data or "synthetic", args.baseline, k=args.k, seed=args.seed
            )
        who = args.baseline
    protocol = info["protocol"]
    print(f"{who} on {info['data']}: per-user temporal split, last {protocol['test_fraction']:g} held out")
    params: Any = metrics.get("params")
    if params:
        chosen = ", ".join(f"{key}={value:g}" for key, value in params.items())
        print(f"hyperparameters chosen on a validation split of train: {chosen}")
    for key, value in metrics.items():
        if key != "params":
            print(f"{key}: {value}" if key == "n_users" else f"{key}: {value:.4f}")
    if args.json is not None:
        save_json(args.json, {**info, "metrics": metrics})
        print(f"json: {args.json}")
    return 0


def _cmd_benchmark(args: argparse.Namespace) -> int:

    baselines = DEFAULT_BASELINES if args.baselines is None else tuple(args.baselines)
    report = run_benchmark(
        args.data, args.out, timesteps=args.timesteps, seed=args.seed, algos=args.algos, baselines=baselines,
        progress=progress_shown(), device=args.device, development=args.development,
    )  # fmt: skip
    k = report["protocol"]["k"]
    scored_on = "; scored on validation, test not read" if args.development else ""
    print(f"benchmark on {report['dataset']['name']} (seed {args.seed}{scored_on}):")
    print(format_table(report["results"], k))
    if report.get("significance"):
        print(format_significance(report["significance"], k))
    curves = (Path(args.out) / "curves.png").is_file() and report["learners"]
    written = ["benchmark.json", "benchmark.md"] + (["curves.png"] if curves else [])
    print(f"written to {Path(args.out)}: {', '.join(written)}")
    stopped = report.get("interrupted")
    if stopped:
        print(f"rlrec benchmark: interrupted by {stopped['signal']}; the report is partial", file=sys.stderr)
        return int(stopped["exit_status"])
    return 0


# -------------------------------------------------------------------------- tune
def _cmd_tune(args: argparse.Namespace) -> int:
    result = tune(
        args.algo,
        data=args.data,
        n_trials=args.n_trials,
        storage=args.storage,
        study_name=args.study_name,
        timesteps=args.timesteps,
        seed=args.seed,
    )
    states = ", ".join(f"{n} {state.lower()}" for state, n in sorted(result.counts.items()))
    total = sum(result.counts.values())
    print(f"study {result.study_name!r} in {result.storage}: {total} trials ({states})")
    print(f"this worker ran {result.n_trials_run}")
    if result.stopped_by is not None:
        name = signal.Signals(result.stopped_by).name
        print(f"rlrec tune: stopped by {name}; the trial in flight is marked FAIL", file=sys.stderr)
        return exit_status(result.stopped_by)
    best = result.best
    if best is None:
        print("best trial: none complete yet")
        return 0
    print(f"best trial: {best.number}, validation ndcg@10 = {best.value:.4f}")
    for key, value in sorted(best.hyperparams.items()):
        print(f"  {key}: {value}")
    ref = f"{best.study_name}:{best.number}"
    retrain = ["rlrec", "train", "--algo", best.algo, "--data", best.data, "--from-trial", ref]
    if args.storage is not None:
        retrain += ["--storage", result.storage]
    print("retrain: " + shlex.join(retrain))
    return 0
