"""``rlrec`` command line: parsing and printing only; the work lives in the library.

Flags follow RL Baselines3 Zoo where the zoo has one (``--algo``, ``--env``, ``--seed``,
``--tensorboard-log``, ``--hyperparams``, ``--env-kwargs``). Every expected error becomes one line
on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from rlrec.utils.progress import progress_shown, show_progress, status

EXIT_USAGE = 2


class CLIError(Exception):
    """An expected failure the CLI reports as one line."""


def parse_key_values(items: Sequence[str] | None, flag: str) -> dict[str, Any]:
    """Parse ``k=v`` pairs; values are read as YAML scalars/lists (``0.1``, ``true``, ``[64, 64]``)."""
    import yaml

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
    from rlrec.data import load_movielens

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
    from rlrec.data import load_movielens
    from rlrec.data.stats import describe

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


def _behaviour(args: argparse.Namespace, data: Any) -> Any:
    from rlrec.evaluation.offline import make_behaviour
    from rlrec.evaluation.ope import model_scores

    scores = model_scores(args.model) if args.model else None
    counts = data.movie_counts if data is not None else None
    return make_behaviour(args.policy, scores, counts, args.epsilon, args.temperature)


def _cmd_data_log(args: argparse.Namespace) -> int:
    from pathlib import Path

    import gymnasium

    from rlrec.agents.training import check_env_kwargs
    from rlrec.evaluation.offline import dataset_id, log_dataset

    env_kwargs = parse_key_values(args.env_kwargs, "--env-kwargs")
    check_env_kwargs(args.env, env_kwargs)
    env_kwargs["data"] = args.data
    probe = gymnasium.make(args.env, **env_kwargs)
    behaviour = _behaviour(args, probe.unwrapped.dataset)  # type: ignore[attr-defined]
    probe.close()
    model = str(Path(args.model).resolve()) if args.model else None
    spec = {"epsilon": args.epsilon, "temperature": args.temperature, "model": model, "seed": args.seed}
    name = args.dataset_id or dataset_id(args.env, args.policy)
    dataset, _ = log_dataset(args.env, env_kwargs, behaviour, args.steps, args.seed, name, spec=spec)
    print(f"{name}: {dataset.total_episodes} episodes, {dataset.total_steps} steps of {args.policy}")
    print(f"load it with minari.load_dataset({name!r})")
    return 0


def _cmd_ope(args: argparse.Namespace) -> int:
    from rlrec.evaluation.offline import make_behaviour
    from rlrec.evaluation.ope import PER_DECISION, PER_STEP, evaluate_logged, model_scores

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
                values = report.over_seeds[name]
                mean = sum(values) / len(values)
                rmse = (sum((v - report.truth) ** 2 for v in values) / len(values)) ** 0.5
                row += f" {mean:.4f} | {mean - report.truth:+.4f} | {rmse:.4f} |"
        print(row)
    print(f"per decision (the return of a whole episode, gamma={args.gamma:g}):")
    for name in PER_DECISION:
        estimate = report.estimates[name]
        print(f"  {name}: {estimate.value:.4f} [{estimate.low:.4f}, {estimate.high:.4f}]")
    return 0


def _cmd_data_fetch(args: argparse.Namespace) -> int:
    from rlrec.data import fetch_movielens

    path = fetch_movielens(args.name, data_home=args.data_home, base_url=args.base_url)
    print(f"{args.name}: ready in {path}")
    return 0


# -------------------------------------------------------------------------- train
def _cmd_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rlrec.agents.factory import DEFAULT_ENV_ID
    from rlrec.agents.runs import default_output
    from rlrec.agents.training import train
    from rlrec.evaluation.split import training_data
    from rlrec.utils.signals import exit_status

    if args.checkpoint_freq is not None and args.checkpoint_freq < 1:
        raise CLIError(f"--checkpoint-freq: must be >= 1, got {args.checkpoint_freq}")
    if args.output is None:
        args.output = str(default_output(args.env or DEFAULT_ENV_ID))
    hyperparams = parse_key_values(args.hyperparams, "--hyperparams")
    if args.from_trial is not None:
        if args.resume:
            raise CLIError("--from-trial: --resume continues the run's own hyperparameters; omit it")
        from rlrec.tuning import hyperparams_from_trial

        trial_algo, trial_hyperparams = hyperparams_from_trial(args.from_trial, args.storage)
        if trial_algo != args.algo:
            raise CLIError(f"--from-trial: {args.from_trial} tuned {trial_algo}, not --algo {args.algo}")
        hyperparams = {**trial_hyperparams, **hyperparams}  # --hyperparams still wins
    recorded = _resumed_run_info(args) if args.resume else None
    if args.resume:
        env_id = None
    else:
        env_id = args.env or DEFAULT_ENV_ID
    source = args.data if args.data is not None else ("synthetic" if recorded is None else None)
    split = (args.split or "temporal") == "temporal"
    with status(f"loading {source if source is not None else 'the run data'}"):
        data, run_info = (
            (None, None)
            if source is None and recorded is None
            else training_data(source, holdout=split, recorded=recorded)
        )
    callbacks, data, run_info = _validation_callbacks(args, env_id, data, run_info, recorded)
    result = train(
        args.algo,
        data=data,
        run_info=run_info,
        callbacks=callbacks,
        checkpoint_freq=args.checkpoint_freq,
        env_id=env_id if env_id is not None else recorded["env_id"],  # type: ignore[index]
        env_kwargs=parse_key_values(args.env_kwargs, "--env-kwargs"),
        hyperparams=hyperparams,
        timesteps=args.timesteps,
        seed=0 if args.seed is None else args.seed,
        tensorboard_log=args.tensorboard_log,
        output=args.output,
        progress=args.progress or progress_shown(),
        resume=args.resume,
        force=args.force,
    )
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


def _resumed_run_info(args: argparse.Namespace) -> dict[str, Any]:
    """``--resume``: the run's record (``run_info`` plus ``env_id``), after refusing any flag that
    contradicts it."""
    from rlrec.agents.runs import RUN_FILE, read_run_config, resume_conflicts, run_dir_of

    if args.force:
        raise CLIError("--force: replaces a run, --resume continues it; give one of them")
    run_file = run_dir_of(args.output, args.algo) / RUN_FILE
    if not run_file.is_file():
        raise CLIError(f"--resume: no run to resume in {run_file.parent} (train without --resume first)")
    config = read_run_config(run_file)
    given = {
        "data": args.data,
        "split": args.split,
        "env": args.env,
        "seed": args.seed,
        "eval_freq": args.eval_freq,
        "tensorboard_log": args.tensorboard_log,
    }
    conflicts = resume_conflicts(config, given)
    if conflicts:
        raise CLIError(
            f"--resume: {'; '.join(conflicts)} contradicts {run_file}; omit it to continue as recorded"
        )
    return {**(config.get("run_info") or {}), "env_id": config["env_id"]}


def _validation_callbacks(
    args: argparse.Namespace,
    env_id: str | None,
    data: Any,
    run_info: dict[str, Any] | None,
    recorded: dict[str, Any] | None,
) -> tuple[list[Any], Any, dict[str, Any] | None]:
    """``--eval-freq``: train on the fit part of the validation split, evaluate on its held-out part."""
    from rlrec.evaluation.callbacks import DEFAULT_EVAL_FREQ

    if recorded is not None:
        eval_freq = int(recorded.get("eval_freq") or 0)
        env_id = recorded["env_id"]
    elif args.eval_freq is not None:
        eval_freq = args.eval_freq
    else:
        eval_freq = DEFAULT_EVAL_FREQ.get(str(env_id), 0)
    if eval_freq < 0:
        raise CLIError(f"--eval-freq: must be >= 0 (0: no evaluation), got {eval_freq}")
    if eval_freq == 0 or data is None:
        return [], data, run_info
    from rlrec.agents.factory import algo_spec
    from rlrec.agents.training import run_dir_of
    from rlrec.data import load_movielens
    from rlrec.evaluation.callbacks import RankingEvalCallback
    from rlrec.evaluation.split import validation_split

    validation = validation_split(load_movielens(data))
    run_info = {**(run_info or {}), "validation": validation.describe(), "eval_freq": eval_freq}
    best = run_dir_of(args.output, args.algo) / f"best_{algo_spec(args.algo).model_file}"
    callback = RankingEvalCallback(validation, eval_freq, best_model_path=best)
    return [callback], validation.train, run_info


def _cmd_recommend(args: argparse.Namespace) -> int:
    from rlrec.evaluation.recommend import recommend

    run, picks = recommend(args.model, args.user, k=args.k, data=args.data)
    print(f"top {len(picks)} for user {args.user} ({run.config['algo']}, {run.model_path}):")
    print(f"{'rank':>4} {'score':>10}  {'movieId':>7}  title")
    for pick in picks:
        print(f"{pick.rank:>3}. {pick.score:>10.4f}  {pick.movie_id:>7}  {pick.title}")
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from rlrec.plotting import find_runs, plot_learning_curves

    path = plot_learning_curves(args.runs_dir, args.output)
    print(f"{path}: learning curves of {len(find_runs(args.runs_dir))} runs under {args.runs_dir}")
    return 0


# --------------------------------------------------------------------- evaluation
def _cmd_evaluate(args: argparse.Namespace) -> int:
    from rlrec.evaluation.protocol import evaluate_baseline_on, evaluate_run
    from rlrec.utils.io import save_json

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
    from pathlib import Path

    from rlrec.evaluation.benchmark import DEFAULT_BASELINES, format_table, run_benchmark

    baselines = DEFAULT_BASELINES if args.baselines is None else tuple(args.baselines)
    report = run_benchmark(
        args.data, args.out, timesteps=args.timesteps, seed=args.seed, algos=args.algos, baselines=baselines,
        progress=progress_shown(),
    )  # fmt: skip
    k = report["protocol"]["k"]
    print(f"benchmark on {report['dataset']['name']} (seed {args.seed}):")
    print(format_table(report["results"], k))
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
    import shlex

    from rlrec.tuning import tune
    from rlrec.utils.signals import exit_status

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


# ------------------------------------------------------------------------ parser
def _policy_flags(parser: argparse.ArgumentParser, choices: tuple[str, ...], default: str, role: str) -> None:
    parser.add_argument("--policy", choices=choices, default=default, help=f"the {role} policy ({default})")
    parser.add_argument("--model", default=None, help="a trained run (folder or model file) to score movies")
    parser.add_argument("--epsilon", type=float, default=0.1, help="exploration of epsilon-greedy (0.1)")
    parser.add_argument("--temperature", type=float, default=1.0, help="of the softmax policies (1.0)")


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("rlrec")
    except metadata.PackageNotFoundError:  # a source tree that was not installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    from rlrec.agents.factory import ALGOS, DEFAULT_ENV_ID
    from rlrec.evaluation.baselines import BASELINES
    from rlrec.evaluation.entries import ALIASES, BENCHMARK_SETUPS, DEFAULT_BASELINES

    parser = argparse.ArgumentParser(prog="rlrec", description="MovieLens as an RL recommendation benchmark.")
    parser.add_argument("--version", action="version", version=f"rlrec {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="inspect or download MovieLens data")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    info = data_sub.add_parser("info", help="users, movies, ratings, rating range and density")
    info.add_argument("source", help="folder, .zip, dataset name or 'synthetic'")
    info.set_defaults(func=_cmd_data_info)
    compare = data_sub.add_parser(
        "compare", help="two sources side by side: popularity and activity Gini, rating shares, drift"
    )
    compare.add_argument("a", help="folder, .zip, dataset name or 'synthetic[:...]'")
    compare.add_argument("b", help="the other source, e.g. synthetic:like=ml-latest-small")
    compare.set_defaults(func=_cmd_data_compare)
    log = data_sub.add_parser("log", help="roll a behaviour policy through an env into a Minari dataset")
    log.add_argument("--env", default=DEFAULT_ENV_ID, help=f"Gymnasium id (default {DEFAULT_ENV_ID})")
    log.add_argument(
        "--data", default="synthetic", help="a source text (recorded, so the env can be rebuilt)"
    )
    log.add_argument(
        "--env-kwargs", nargs="*", default=[], metavar="K=V", help="env arguments, e.g. reward_mode=rating"
    )
    _policy_flags(log, ("uniform", "popularity", "epsilon-greedy", "softmax"), "uniform", "behaviour")
    log.add_argument("--steps", type=int, default=10_000, help="logged steps, whole episodes (10000)")
    log.add_argument(
        "--seed", type=int, default=0, help="seed of the episodes and the policy's draws (default 0)"
    )
    log.add_argument("--dataset-id", default=None, help="Minari dataset id (default rlrec/<env>/<policy>-v0)")
    log.add_argument("--quiet", "-q", action="store_true", help="no progress (default: shown on a terminal)")
    log.set_defaults(func=_cmd_data_log)
    fetch = data_sub.add_parser("fetch", help="download an official GroupLens release into the data home")
    fetch.add_argument(
        "name", help="ml-latest-small, ml-latest, ml-100k, ml-1m, ml-10m, ml-20m, ml-25m, ml-32m"
    )
    fetch.add_argument("--data-home", default=None, help="default: $RLREC_DATA or ~/.cache/rlrec")
    fetch.add_argument("--base-url", default=None, help=argparse.SUPPRESS)
    fetch.set_defaults(func=_cmd_data_fetch)

    train = sub.add_parser("train", help="train a learner")
    train.add_argument("--algo", required=True, choices=list(ALGOS), help="the learner: %(choices)s")
    train.add_argument("--data", default=None, help="folder, .zip, dataset name or 'synthetic' (default)")
    train.add_argument(
        "--split",
        choices=("temporal", "none"),
        default=None,
        help="train on the per-user temporal split's train part (default, what `rlrec evaluate` expects) "
        "or on every rating",
    )
    train.add_argument("--env", default=None, help=f"Gymnasium id (default {DEFAULT_ENV_ID})")
    train.add_argument(
        "--env-kwargs", nargs="*", default=[], metavar="K=V",
        help="env arguments on top of the YAML's env_kwargs, e.g. hidden_fraction=0.5",
    )  # fmt: skip
    train.add_argument(
        "--hyperparams", nargs="*", default=[], metavar="K=V",
        help="values replacing the YAML's (rlrec/hyperparams/<algo>.yml), e.g. learning_rate=1e-3",
    )  # fmt: skip
    train.add_argument(
        "--timesteps", "-n", type=int, default=None, help="training budget (default: the YAML's n_timesteps)"
    )
    train.add_argument("--seed", type=int, default=None, help="seed of the learner and the env (default 0)")
    train.add_argument(
        "--tensorboard-log", "-tb", default=None, help="folder of TensorBoard runs (default: none written)"
    )
    train.add_argument(
        "--output", "-o", default=None,
        help="PARENT folder of the run: the run is <output>/<algo>/ (default runs/<env name>, e.g. "
        "runs/MovieLens-v0/dqn)",
    )  # fmt: skip
    train.add_argument(
        "--progress", action="store_true", help="show the progress bar even when stdout is not a terminal"
    )
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --output from its last checkpoint, exactly as recorded (flags that "
        "contradict its run.json are refused)",
    )
    train.add_argument(
        "--force",
        action="store_true",
        help="replace a run already in --output (it is kept until the new run's first checkpoint)",
    )
    train.add_argument(
        "--eval-freq",
        type=int,
        default=None,
        metavar="N",
        help="every N steps, rank the validation part (carved from train, never test), log eval/ndcg@10 "
        "and keep best_model beside the model (default: 100000 on rlrec/MovieLensSession-v0, else 0 = off)",
    )
    train.add_argument(
        "--checkpoint-freq",
        type=int,
        default=10_000,
        metavar="N",
        help="steps between checkpoints (10000); Ctrl-C and SIGTERM also save one (exit 130 / 143)",
    )
    train.add_argument(
        "--from-trial", default=None, metavar="STUDY:TRIAL_ID", help="hyperparameters of an Optuna trial"
    )
    train.add_argument("--storage", default=None, help="Optuna storage URL for --from-trial")
    train.add_argument(
        "--quiet", "-q", action="store_true", help="no progress (default: shown on a terminal)"
    )
    train.set_defaults(func=_cmd_train)

    rec = sub.add_parser("recommend", help="top-k movies a trained model recommends to a user")
    rec.add_argument("--model", required=True, help="a run folder or its model file (written by rlrec train)")
    rec.add_argument("--data", default=None, help="default: the data the model was trained on")
    rec.add_argument("--user", type=int, required=True, help="original userId")
    rec.add_argument("-k", type=int, default=10, help="how many movies (default 10)")
    rec.set_defaults(func=_cmd_recommend)

    plot = sub.add_parser("plot", help="learning curves of every run under a folder")
    plot.add_argument("runs_dir", help="a folder of TensorBoard runs (e.g. a --tensorboard-log folder)")
    plot.add_argument("-o", "--output", default="curves.png", help="the PNG to write (default curves.png)")
    plot.set_defaults(func=_cmd_plot)

    evaluate = sub.add_parser("evaluate", help="held-out ranking metrics of a model or a baseline")
    who = evaluate.add_mutually_exclusive_group(required=True)
    who.add_argument("--model", help="a run folder or its model file (written by rlrec train)")
    who.add_argument("--baseline", choices=list(BASELINES), help="a non-RL baseline: %(choices)s")
    evaluate.add_argument("--data", default=None, help="default: the run's own data (--model) or 'synthetic'")
    evaluate.add_argument("-k", type=int, default=10, help="the metrics' cut-off (default 10)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the random baseline (default 0)")
    evaluate.add_argument("--json", default=None, help="also write the metrics to this JSON file")
    evaluate.add_argument(
        "--quiet", "-q", action="store_true", help="no progress (default: shown on a terminal)"
    )
    evaluate.set_defaults(func=_cmd_evaluate)

    bench = sub.add_parser("benchmark", help="train learners, evaluate them and the baselines")
    bench.add_argument(
        "--data", default="synthetic", help="folder, .zip, dataset name or 'synthetic' (default)"
    )
    bench.add_argument(
        "--timesteps", type=int, default=None, help="budget of every entry (default: each YAML's n_timesteps)"
    )
    bench.add_argument(
        "--seed", type=int, default=0, help="seed of the learners, envs and baselines (default 0)"
    )
    bench.add_argument(
        "--algos", nargs="*", default=None, metavar="ENTRY",
        help=f"benchmark entries (default: all): {', '.join([*BENCHMARK_SETUPS, *ALIASES])}",
    )  # fmt: skip
    bench.add_argument(
        "--baselines", nargs="*", default=None, metavar="BASELINE",
        help=f"baselines (default: {' '.join(DEFAULT_BASELINES)}; --baselines alone: none); "
        f"known: {', '.join(BASELINES)}",
    )  # fmt: skip
    bench.add_argument("--out", default="benchmark_out", help="the report's folder (default benchmark_out)")
    bench.add_argument(
        "--quiet", "-q", action="store_true", help="no progress (default: shown on a terminal)"
    )
    bench.set_defaults(func=_cmd_benchmark)

    ope = sub.add_parser("ope", help="off-policy evaluation of a trained model on a logged Minari dataset")
    ope.add_argument("--dataset", required=True, help="a Minari dataset id written by rlrec data log")
    _policy_flags(ope, ("greedy", "epsilon-greedy", "softmax"), "greedy", "target")
    ope.add_argument("--truth", action="store_true", help="also the exact value in the recovered env")
    ope.add_argument("--seeds", type=int, default=0, help="with --truth: re-log N times for bias and RMSE")
    ope.add_argument("--gamma", type=float, default=1.0, help="discount of the per-decision estimators")
    ope.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of the intervals")
    ope.add_argument("--seed", type=int, default=0, help="seed of the reward model and bootstrap (default 0)")
    ope.add_argument("--quiet", "-q", action="store_true", help="no progress (default: shown on a terminal)")
    ope.set_defaults(func=_cmd_ope)

    tune = sub.add_parser("tune", help="Optuna hyperparameter search on held-out NDCG@10")
    tune.add_argument("--algo", required=True, choices=list(ALGOS), help="the learner: %(choices)s")
    tune.add_argument(
        "--data", default="synthetic", help="folder, .zip, dataset name or 'synthetic' (default)"
    )
    tune.add_argument("--n-trials", type=int, default=10, help="trials THIS worker runs (default 10)")
    tune.add_argument(
        "--storage", default=None, help="Optuna storage URL (default sqlite:///rlrec-tune.db in the cwd)"
    )
    tune.add_argument("--study-name", default=None, help="default <algo>-<data folder name>")
    tune.add_argument(
        "--timesteps", type=int, default=None, help="budget per trial (default: the YAML's n_timesteps)"
    )
    tune.add_argument(
        "--seed", type=int, default=0, help="seed of every trial's training and the sampler (default 0)"
    )
    tune.add_argument("--quiet", "-q", action="store_true", help="no progress (default: shown on a terminal)")
    tune.set_defaults(func=_cmd_tune)
    return parser


def _one_line_warnings(command: str) -> None:
    """Print warnings as ``rlrec <command>: warning: <first line>``, never with a source line."""

    def show(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
        text = str(message).strip().splitlines()[0] if str(message).strip() else category.__name__
        print(f"rlrec {command}: warning: {text}", file=sys.stderr)

    warnings.showwarning = show  # type: ignore[assignment]


def _error_message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None and not isinstance(exc, FileNotFoundError):
        # NotADirectoryError, FileExistsError, PermissionError ...: name the path and the reason.
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, NotADirectoryError | FileExistsError):
            reason += " (a part of the path is a regular file)"
        return f"{exc.filename}: {reason}"
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return message.strip("'\"") if isinstance(exc, KeyError) else message


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from rlrec.data.errors import DatasetError

    # Progress where a person waits: a terminal, unless --quiet (a pipe or a file gets none).
    show_progress(sys.stdout.isatty() and not getattr(args, "quiet", False))
    with warnings.catch_warnings():
        _one_line_warnings(args.command)
        try:
            return int(args.func(args))
        except KeyboardInterrupt:
            print("rlrec: interrupted", file=sys.stderr)
            return 128 + signal.SIGINT
        except BrokenPipeError:
            # `rlrec ... | head` closed our stdout: not an error of ours; silence the flush at exit.
            sys.stdout = open(os.devnull, "w")
            return 141
        except (CLIError, DatasetError, OSError, ValueError, KeyError) as exc:
            print(f"rlrec {args.command}: error: {_error_message(exc)}", file=sys.stderr)
            return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
