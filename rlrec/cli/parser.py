"""The ``rlrec`` argument parser: every command, flag and help text, and nothing that runs them.

It imports only what its help texts list (the learners, entries and baselines by name), so
``rlrec --help`` does not pay for torch; :mod:`rlrec.cli.commands` runs what it parses.
"""

from __future__ import annotations

import argparse
from importlib import metadata

from rlrec.agents.registry import ALGOS, DEFAULT_ENV_ID
from rlrec.evaluation.baselines import BASELINES
from rlrec.experiments.entries import ALIASES, BENCHMARK_SETUPS, DEFAULT_BASELINES

__all__ = ["build_parser"]


def _policy_flags(parser: argparse.ArgumentParser, choices: tuple[str, ...], default: str, role: str) -> None:
    parser.add_argument("--policy", choices=choices, default=default, help=f"the {role} policy ({default})")
    parser.add_argument("--model", default=None, help="a trained run (folder or model file) to score movies")
    parser.add_argument("--epsilon", type=float, default=0.1, help="exploration of epsilon-greedy (0.1)")
    parser.add_argument("--temperature", type=float, default=1.0, help="of the softmax policies (1.0)")


def _version() -> str:
    try:
        return metadata.version("rlrec")
    except metadata.PackageNotFoundError:  # a source tree that was not installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlrec", description="MovieLens as an RL recommendation benchmark.")
    parser.add_argument("--version", action="version", version=f"rlrec {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="inspect or download MovieLens data")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    info = data_sub.add_parser("info", help="users, movies, ratings, rating range and density")
    info.add_argument("source", help="folder, .zip, dataset name or 'synthetic'")
    info.set_defaults(run="data_info")
    compare = data_sub.add_parser(
        "compare", help="two sources side by side: popularity and activity Gini, rating shares, drift"
    )
    compare.add_argument("a", help="folder, .zip, dataset name or 'synthetic[:...]'")
    compare.add_argument("b", help="the other source, e.g. synthetic:like=ml-latest-small")
    compare.set_defaults(run="data_compare")
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
    log.set_defaults(run="data_log")
    fetch = data_sub.add_parser("fetch", help="download an official GroupLens release into the data home")
    fetch.add_argument(
        "name", help="ml-latest-small, ml-latest, ml-100k, ml-1m, ml-10m, ml-20m, ml-25m, ml-32m"
    )
    fetch.add_argument("--data-home", default=None, help="default: $RLREC_DATA or ~/.cache/rlrec")
    fetch.add_argument("--base-url", default=None, help=argparse.SUPPRESS)
    fetch.set_defaults(run="data_fetch")

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
        "--device", default=None, choices=("auto", "cpu", "cuda"),
        help="where the learner's networks run (default: the YAML's, else auto = CUDA when available); "
        "recorded in run.json",
    )  # fmt: skip
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
    train.set_defaults(run="train")

    rec = sub.add_parser("recommend", help="top-k movies a trained model recommends to a user")
    rec.add_argument("--model", required=True, help="a run folder or its model file (written by rlrec train)")
    rec.add_argument("--data", default=None, help="default: the data the model was trained on")
    rec.add_argument("--user", type=int, required=True, help="original userId")
    rec.add_argument("-k", type=int, default=10, help="how many movies (default 10)")
    rec.set_defaults(run="recommend")

    plot = sub.add_parser("plot", help="learning curves of every run under a folder")
    plot.add_argument("runs_dir", help="a folder of TensorBoard runs (e.g. a --tensorboard-log folder)")
    plot.add_argument("-o", "--output", default="curves.png", help="the PNG to write (default curves.png)")
    plot.set_defaults(run="plot")

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
    evaluate.set_defaults(run="evaluate")

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
    bench.add_argument(
        "--device", default=None, choices=("auto", "cpu", "cuda"),
        help="where every learner's networks run (default: each YAML's, else auto); recorded in run.json",
    )  # fmt: skip
    bench.add_argument(
        "--development", action="store_true",
        help="score on the validation part instead of test: the whole protocol on the train part "
        "alone, for choosing entries and settings; the test part is never read",
    )  # fmt: skip
    bench.set_defaults(run="benchmark")

    ope = sub.add_parser("ope", help="off-policy evaluation of a trained model on a logged Minari dataset")
    ope.add_argument("--dataset", required=True, help="a Minari dataset id written by rlrec data log")
    _policy_flags(ope, ("greedy", "epsilon-greedy", "softmax"), "greedy", "target")
    ope.add_argument("--truth", action="store_true", help="also the exact value in the recovered env")
    ope.add_argument("--seeds", type=int, default=0, help="with --truth: re-log N times for bias and RMSE")
    ope.add_argument("--gamma", type=float, default=1.0, help="discount of the per-decision estimators")
    ope.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of the intervals")
    ope.add_argument("--seed", type=int, default=0, help="seed of the reward model and bootstrap (default 0)")
    ope.add_argument("--quiet", "-q", action="store_true", help="no progress (default: shown on a terminal)")
    ope.set_defaults(run="ope")

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
    tune.set_defaults(run="tune")
    return parser
