"""`make demo`: the three mission learners, briefly, on the embedded synthetic data (offline, ~1-2 min).

Prints the data's counts, trains tabular Q-learning, our DQN and SB3's DQN with the same seed, writes
their TensorBoard runs and a PNG of the learning curves under ``demo_out/``, and says where they are.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from rlrec.agents.training import train
from rlrec.data import load_movielens
from rlrec.evaluation.benchmark import format_table, run_benchmark
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
#: SB3's DQN with its session recipe (rlrec's components, sb3-dqn.yml): the RL agent that beats
#: popularity in the table, at a budget of a few tens of seconds.
SESSION_AGENT, SESSION_TIMESTEPS = "sb3-dqn-session", 40_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="demo_out")
    args = parser.parse_args(argv)
    out = Path(args.out)
    tensorboard_log = out / "tb"

    info = load_movielens(DATA).summary()
    print(f"data: {info['name']} (generated offline, seed-stable)")
    counts = f"users {info['users']:,}  movies {info['movies']:,}  ratings {info['ratings']:,}"
    print(f"  {counts}  density {info['density']:.2%}")

    started = time.perf_counter()
    for algo, (timesteps, overrides) in BUDGETS.items():
        result = train(
            algo,
            data=DATA,
            hyperparams=overrides,
            timesteps=timesteps,
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
    # The demo owns this folder; a rerun replaces it (the benchmark refuses to mix two runs' curves).
    shutil.rmtree(out / "benchmark", ignore_errors=True)
    report = run_benchmark(
        DATA,
        out / "benchmark",
        timesteps={**dict.fromkeys(BUDGETS, BENCHMARK_TIMESTEPS), SESSION_AGENT: SESSION_TIMESTEPS},
        seed=args.seed,
        algos=[*BUDGETS, SESSION_AGENT],
    )
    print(format_table(report["results"], k=10))
    print(f"benchmark files:  {out / 'benchmark'} (benchmark.json, benchmark.md, curves.png)")

    print(f"demo done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
