"""Train the three mission learners (tabular Q-learning, our DQN, SB3's DQN) side by side.

Same data, same seed, one TensorBoard folder, one PNG of learning curves::

    python scripts/train_all.py --data ml-latest-small --timesteps 20000 --seed 0 --out runs/train_all

Run again into the same ``--out`` with ``--force`` (each run then replaces its predecessor).

Everything here is a call into the library (``rlrec.experiments.training.train``,
``rlrec.plotting.plot_learning_curves``); copy the script and change what you need.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from rlrec.experiments.training import train
from rlrec.plotting import plot_learning_curves

MISSION_ALGOS = ("qlearning", "dqn", "sb3-dqn")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="synthetic", help="folder, .zip, dataset name or 'synthetic'")
    parser.add_argument("--timesteps", type=int, default=None, help="default: each algo's YAML n_timesteps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", default="runs/train_all", help="models in OUT/models/<algo>, TensorBoard in OUT/tb"
    )
    parser.add_argument("--algos", nargs="*", default=list(MISSION_ALGOS))
    parser.add_argument("--progress", action="store_true", help="show a progress bar")
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace the runs (and TensorBoard logs) a previous call left in OUT",
    )
    args = parser.parse_args(argv)

    out = Path(args.out)
    tensorboard_log = out / "tb"
    if args.force:  # the new runs' curves must not mix with the replaced ones'
        shutil.rmtree(tensorboard_log, ignore_errors=True)
    for algo in args.algos:
        print(f"== {algo}", flush=True)
        try:
            result = train(
                algo,
                data=args.data,
                timesteps=args.timesteps,
                seed=args.seed,
                tensorboard_log=tensorboard_log,
                output=out / "models",
                progress=args.progress,
                force=args.force,
            )
        except (ValueError, OSError) as exc:
            print(f"train_all.py: error: {exc}", file=sys.stderr)
            return 2
        seconds = result.config["train_seconds"]
        print(f"   {result.timesteps} timesteps in {seconds:.1f} s -> {result.model_path}")
        if result.interrupted:
            print(
                f"interrupted; checkpoint in {result.run_dir} (continue with rlrec train --resume)",
                file=sys.stderr,
            )
            return 130
    curves = plot_learning_curves(tensorboard_log, out / "curves.png")
    print(f"learning curves: {curves}")
    print(f"TensorBoard:     tensorboard --logdir {tensorboard_log}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
