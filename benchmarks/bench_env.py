"""Steps per second of the MovieLens envs against a naive reference and the memory-bandwidth bound.

    python benchmarks/bench_env.py [--data PATH] [--seconds 1.0]

Prints, on ml-latest-small-2016 (``$RLREC_DATA/ml-latest-small-2016`` or ``--data``) with
uniformly random actions:

* the single env, raw and through ``gymnasium.make``;
* the vector env at 1, 16, 64 and 256 sub-envs, profile and embedding observations
  (env-steps/s = sub-envs x vector steps/s);
* a naive reference: the same step semantics done the straightforward way (a pandas filter
  of the ratings table and a profile rebuilt at every step), and every figure's ratio to it;
* the memory-bandwidth bound measured in the same run: a plain numpy gather of the same
  number of profile rows into a preallocated array, and each profile figure's ratio to it.

Targets (same-run ratios): single env >= 100x naive; vector env with profile observations
within 2x of the bandwidth bound at 256 envs; embedding observations >= 1000x naive per
env-step. The script prints; it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium
import numpy as np
import pandas as pd

import rlrec  # noqa: F401  (registers the env ids)
from rlrec.data import load_movielens
from rlrec.data.dataset import FALLBACK_MEAN, RatingsDataset
from rlrec.envs.movielens import MovieLensEnv, MovieLensVectorEnv

ENV_COUNTS = (1, 16, 64, 256)


class NaiveEnv:
    """The seed's step semantics written the obvious way: pandas per step, profile per step."""

    def __init__(self, dataset: RatingsDataset) -> None:
        rows = np.repeat(dataset.user_ids, dataset.user_counts)
        self.ratings = pd.DataFrame(
            {
                "userId": rows,
                "movieId": dataset.movie_ids[dataset.ratings.indices],
                "rating": dataset.ratings.data,
            }
        )
        self.user_ids = dataset.user_ids
        self.movie_ids = dataset.movie_ids
        self.position = 0

    def profile(self, user_id: int) -> np.ndarray:
        mine = self.ratings[self.ratings["userId"] == user_id]
        mean = mine["rating"].mean() if len(mine) else FALLBACK_MEAN
        profile = np.full(len(self.movie_ids), mean, dtype=np.float32)
        profile[np.searchsorted(self.movie_ids, mine["movieId"].to_numpy())] = mine["rating"].to_numpy()
        return profile

    def reset(self) -> np.ndarray:
        self.position = 0
        return self.profile(int(self.user_ids[0]))

    def step(self, action: int) -> tuple[np.ndarray, float, bool]:
        user_id = int(self.user_ids[self.position])
        mine = self.ratings[self.ratings["userId"] == user_id]
        hit = mine[mine["movieId"] == self.movie_ids[action]]
        if len(hit):
            reward, done = float(hit["rating"].iloc[0]), True
        else:
            reward, done = (float(mine["rating"].mean()) if len(mine) else FALLBACK_MEAN), False
        self.position = (self.position + 1) % len(self.user_ids)
        return self.profile(int(self.user_ids[self.position])), reward, done


def rate(step: Callable[[int], object], seconds: float, batch: int = 64) -> float:
    """Calls per second of ``step(i)``, measured for about ``seconds`` (after one warm-up batch)."""
    for i in range(batch):
        step(i)
    calls, start = 0, time.perf_counter()
    while True:
        for i in range(batch):
            step(calls + i)
        calls += batch
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls / elapsed


def single_env_rate(env: gymnasium.Env, actions: np.ndarray, seconds: float, seed: int = 0) -> float:
    env.reset(seed=seed)

    def step(i: int) -> None:
        _, _, terminated, truncated, _ = env.step(actions[i % len(actions)])
        if terminated or truncated:
            env.reset()

    return rate(step, seconds)


def vector_rate(env: MovieLensVectorEnv, actions: np.ndarray, seconds: float, seed: int = 0) -> float:
    env.reset(seed=seed)
    return rate(lambda i: env.step(actions[i % len(actions)]), seconds, batch=8)


def gather_rate(cache: np.ndarray, n_rows: int, seconds: float, seed: int = 0) -> float:
    """Gathers per second of ``n_rows`` random rows of ``cache`` into a preallocated array."""
    users = np.random.default_rng(seed).integers(0, len(cache), size=(64, n_rows))
    out = np.empty((n_rows, cache.shape[1]), dtype=cache.dtype)
    return rate(lambda i: np.take(cache, users[i % 64], axis=0, out=out), seconds, batch=8)


def main() -> None:
    default = Path(os.environ.get("RLREC_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data", default=str(default / "ml-latest-small-2016"), help="MovieLens folder or name"
    )
    parser.add_argument("--seconds", type=float, default=1.0, help="time spent on each measurement")
    parser.add_argument("--seed", type=int, default=0, help="seeds the actions and the envs")
    args = parser.parse_args()

    dataset = load_movielens(args.data)
    sizes = f"{dataset.n_users} users x {dataset.n_movies} movies, {dataset.n_ratings} ratings"
    print(f"data: {dataset.name}: {sizes}")
    rng = np.random.default_rng(args.seed)
    actions = rng.integers(0, dataset.n_movies, size=4096)

    naive = NaiveEnv(dataset)
    naive.reset()
    naive_rate = rate(lambda i: naive.step(int(actions[i % len(actions)])), args.seconds, batch=8)
    print(f"{'naive (pandas filter + profile per step)':48s} {naive_rate:12,.0f} steps/s")

    def show(label: str, value: float, bound: float | None = None) -> None:
        line = f"{label:48s} {value:12,.0f} steps/s  {value / naive_rate:9,.0f}x naive"
        if bound is not None:
            line += f"  {value / bound:5.2f} of bandwidth bound"
        print(line)

    show("MovieLensEnv (raw)", single_env_rate(MovieLensEnv(dataset), actions, args.seconds, args.seed))
    made = gymnasium.make("rlrec/MovieLens-v0", data=dataset)
    show(
        "gymnasium.make (checker, order, time limit)", single_env_rate(made, actions, args.seconds, args.seed)
    )

    cache = MovieLensEnv(dataset).world.profiles.dense
    assert cache is not None, "the profile cache must fit the default memory budget for this benchmark"
    for observation in ("profile", "embedding"):
        for n_envs in ENV_COUNTS:
            env = MovieLensVectorEnv(
                dataset, num_envs=n_envs, observation=observation, max_episode_steps=1000
            )
            batched = rng.integers(0, dataset.n_movies, size=(256, n_envs))
            env_steps = n_envs * vector_rate(env, batched, args.seconds, args.seed)
            bound = (
                n_envs * gather_rate(cache, n_envs, args.seconds, args.seed)
                if observation == "profile"
                else None
            )
            show(f"vector env, {observation}, {n_envs:3d} envs (env-steps)", env_steps, bound)
            if bound is not None:
                print(f"{'  bandwidth bound (numpy gather, same rows)':48s} {bound:12,.0f} rows/s")
    print("targets: single env >= 100x naive; profile vector env at 256 envs >= 0.5 of the bound;")
    print("         embedding vector env >= 1000x naive per env-step")


if __name__ == "__main__":
    main()
