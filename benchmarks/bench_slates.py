"""PPO on slates (``rlrec/MovieLensSlate-v0``) against the popularity slate, in expected clicks per step.

For each source (ml-latest-small-2016 with the simulated user, and the synthetic default whose user
is the world's true preference), it trains PPO with the shipped slate recipe (``ppo.yml``, section
``rlrec/MovieLensSlate-v0``: ``rlrec.nn.SlatePolicy``) on the train part of the temporal split,
then rolls the trained policy and the popularity slate (the most rated movies a session may still
show) over the same sessions and prints the mean expected clicks per step of each
(:func:`rlrec.evaluation.slates.expected_clicks_per_step`: exact under the user model), the
ratio, and the policy's NDCG@10 under the usual ranking protocol.

    python benchmarks/bench_slates.py                        # both sources, seed 0
    python benchmarks/bench_slates.py --sources synthetic --timesteps 20000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    home = Path(os.environ.get("RLREC_DATA") or REPO.parent / "shared" / "data")
    parser.add_argument("--sources", nargs="*", default=[str(home / "ml-latest-small-2016"), "synthetic"])
    parser.add_argument("--timesteps", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from rlrec.agents.recipes import load_hyperparams, split_hyperparams
    from rlrec.data import load_movielens
    from rlrec.data.split import temporal_split
    from rlrec.envs import SLATE_ID
    from rlrec.evaluation.protocol import evaluate_model
    from rlrec.evaluation.slates import expected_clicks_per_step, model_slates, popularity_slates
    from rlrec.experiments.training import train

    env_kwargs = split_hyperparams("ppo", load_hyperparams("ppo", SLATE_ID)).env_kwargs
    print("| source | PPO expected clicks / step | popularity slate | ratio | PPO NDCG@10 | train s |")
    print("|---|---:|---:|---:|---:|---:|")
    for source in args.sources:
        split = temporal_split(load_movielens(source))
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as output:
            result = train("ppo", data=split.train, env_id=SLATE_ID, timesteps=args.timesteps,
                           seed=args.seed, output=output, checkpoint_freq=None)  # fmt: skip
        seconds = time.perf_counter() - started
        sessions = {"data": split.train, "env_kwargs": env_kwargs, "seed": 1000 + args.seed}
        learned = expected_clicks_per_step(model_slates(result.model), **sessions)
        popular = expected_clicks_per_step(
            popularity_slates(split.train.movie_counts, int(env_kwargs.get("slate_size", 10))), **sessions
        )
        ndcg = evaluate_model(result.model, split, env_id=SLATE_ID, env_kwargs=env_kwargs)["ndcg@10"]
        name = Path(source).name
        ratio = learned / popular
        print(f"| {name} | {learned:.3f} | {popular:.3f} | {ratio:.2f} | {ndcg:.4f} | {seconds:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
