"""`make demo`: the three mission learners, briefly, on the embedded synthetic data (offline).

Prints the data's counts, trains tabular Q-learning, our DQN and SB3's DQN with the same seed, writes
their TensorBoard runs and a PNG of the learning curves under ``demo_out/``, and says where they are.
Then a held-out benchmark of the same learners and of SB3's PPO with its session recipe, against
random and popularity, and a last line: PPO against popularity. ``demo_out/`` is the demo's
own folder, replaced by each run (the README gives the measured wall time).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from rlrec.data import load_movielens
from rlrec.data.split import temporal_split
from rlrec.experiments.benchmark import (
    BENCHMARK_SETUPS,
    LearnerSetup,
    format_table,
    prior_only_ndcg,
    run_benchmark,
)
from rlrec.experiments.training import train
from rlrec.plotting import plot_learning_curves

DATA = "synthetic"
#: Budgets that keep the demo within a minute or two on 2 CPU cores. The DQNs' replay starts after
#: 500 steps so that they also learn in so short a run.
BUDGETS: dict[str, tuple[int, dict[str, object]]] = {
    "qlearning": (20_000, {}),
    "dqn": (4_000, {"learning_starts": 500}),
    "sb3-dqn": (4_000, {"learning_starts": 500}),
}
#: Per-learner budget of the demo's benchmark: seconds, not the shipped budgets (`rlrec benchmark`).
BENCHMARK_TIMESTEPS = 4_000
#: SB3's PPO with its session recipe (ppo.yml: rlrec.nn's catalogue policy and action prior), at a
#: budget of a few tens of seconds, its stopping step chosen on validation and then retrained on
#: all of train up to that step (``refit``, EASE's protocol); the last line compares it with
#: popularity and with its own untrained policy (the prior alone).
SESSION_AGENT, SESSION_TIMESTEPS = "ppo-session", 20_000
SESSION_SETUP = LearnerSetup(BENCHMARK_SETUPS[SESSION_AGENT].env_id, algo="ppo", refit=True)
#: The baselines of the demo's table. EASE, EDLAE and ALS are in `rlrec benchmark`: their
#: hyperparameters are chosen on validation, which alone takes longer than the whole demo.
BASELINES = ("random", "popularity")
#: A file that marks a folder as the demo's own, so that a rerun may replace it.
MARKER = ".rlrec-demo"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="seed of every learner (default 0)")
    parser.add_argument("--out", default="demo_out", help="the demo's own folder, replaced by each run")
    parser.add_argument("--data", default=DATA, help="the data (default: the embedded synthetic world)")
    parser.add_argument(
        "--budget-scale",
        type=float,
        default=1.0,
        help="multiply every training budget (default 1; a quick check: 0.05)",
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.exists() and not (out / MARKER).exists() and any(out.iterdir()):
        print(
            f"demo: error: --out {out} holds files the demo did not write; choose another --out",
            file=sys.stderr,
        )
        return 2
    # The demo owns its folder: each run replaces the previous one.
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    (out / MARKER).write_text("written by scripts/demo.py; replaced by the next run\n")
    tensorboard_log = out / "tb"

    scale = args.budget_scale
    info = load_movielens(args.data).summary()
    print(f"data: {info['name']} (generated offline, seed-stable)")
    counts = f"users {info['users']:,}  movies {info['movies']:,}  ratings {info['ratings']:,}"
    print(f"  {counts}  density {info['density']:.2%}")

    started = time.perf_counter()
    for algo, (timesteps, overrides) in BUDGETS.items():
        result = train(
            algo,
            data=args.data,
            hyperparams=overrides,
            timesteps=max(1, int(timesteps * scale)),
            seed=args.seed,
            tensorboard_log=tensorboard_log,
            output=out / "models",
        )
        seconds = result.config["train_seconds"]
        print(f"{algo:>10}: {result.timesteps:,} timesteps in {seconds:.1f} s -> {result.model_path}")
        if result.interrupted:
            print(f"interrupted; checkpoint in {result.run_dir}", file=sys.stderr)
            return 130

    curves = plot_learning_curves(tensorboard_log, out / "curves.png", title="rlrec demo (synthetic data)")
    print(f"learning curves: {curves}")
    print(f"TensorBoard:     tensorboard --logdir {tensorboard_log}")
    print(f"a recommendation: rlrec recommend --model {out / 'models' / 'sb3-dqn'} --user 1 -k 5")

    # The held-out comparison: the same learners trained on the train split (benchmark setups: rating
    # reward, gamma 0), evaluated with the baselines under the ranking protocol.
    print("benchmark (per-user temporal split, NDCG@10 and friends on held-out ratings):")
    report = run_benchmark(
        args.data,
        out / "benchmark",
        timesteps={
            **dict.fromkeys(BUDGETS, max(1, int(BENCHMARK_TIMESTEPS * scale))),
            SESSION_AGENT: max(1, int(SESSION_TIMESTEPS * scale)),
        },
        seed=args.seed,
        algos=[*BUDGETS, SESSION_AGENT],
        baselines=BASELINES,
        references=("popularity",),
        setups={**BENCHMARK_SETUPS, SESSION_AGENT: SESSION_SETUP},
    )
    results = report["results"]
    print(format_table(results, k=10))
    print(f"benchmark files:  {out / 'benchmark'} (benchmark.json, benchmark.md, curves.png)")

    split = temporal_split(load_movielens(args.data))
    untrained = prior_only_ndcg(SESSION_SETUP, split.train, split, args.seed)
    print(f"demo done in {time.perf_counter() - started:.0f} s")
    agent, popularity = results[SESSION_AGENT]["ndcg@10"], results["popularity"]["ndcg@10"]
    verdict = "above" if agent > popularity else "not above"
    print(
        f"{SESSION_AGENT} (SB3 PPO, session recipe): held-out NDCG@10 {agent:.4f}, {verdict} popularity's "
        f"{popularity:.4f} ({agent / popularity:.2f}x); untrained, its prior alone scores {untrained:.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
