"""How rlrec holds up at MovieLens 25M / 32M size: load time, peak memory, env speed.

A synthetic data set of the chosen size is generated (``make_synthetic``) and written to disk in
the GroupLens CSV layout (``write_movielens_csv``); then a FRESH process loads it with
``load_movielens`` and measures:

* load time of ``ratings.csv`` + ``movies.csv`` (target: <= 60 s at ml-25m size);
* peak resident memory of that process (``VmHWM`` of /proc/self/status; target: <= 8 GB), after
  loading and after everything below;
* ``rlrec/MovieLens-v0`` steps per second with profile observations built on demand from the CSR
  matrix (the dense users x movies matrix would take 40 GB at ml-25m size, so it is never built)
  and with SVD embedding observations (plus the time to fit the embeddings);
* time to build one user's profile observation, alone and in a batch of 256.

``--learn`` instead trains a session agent on the 25M-rating world and ranks its test part against
popularity (see ``learn``; the README has the figures).

Generation and measurement run in separate processes so that the peak memory is that of loading
and stepping, not of generating. Not run by the tests (minutes, GBs); run it by hand::

    python benchmarks/bench_scale.py --scale ml-25m
    python benchmarks/bench_scale.py --scale small            # seconds, a smoke run
    python benchmarks/bench_scale.py --scale ml-25m --workdir /tmp/ml25m-synth   # keep the CSVs

Measured once with ``--scale ml-25m`` on this project's 2-core VM, shared with other jobs (load
average ~6, so wall times are pessimistic), 9 min in all:

=================================  ==========================================
generate (make_synthetic)          425 s, peak RSS 1.55 GiB
write CSV (write_movielens_csv)    21.7 s, 704 MiB
load_movielens                     47.4 s (target <= 60 s)
peak RSS after load / at the end   3.06 GiB / 3.33 GiB (target <= 8 GB)
profile env                        built in 0.44 s (no dense cache), 17,000 steps/s
profile observation                0.040 ms per user; 0.072 ms per user in a batch of 256
embedding env (32-dim SVD)         built in 49.8 s, 87,000 steps/s (5.1x the profile env)
=================================  ==========================================
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

#: (users, movies, ratings) of the GroupLens releases the synthetic data imitates.
SCALES: dict[str, tuple[int, int, int]] = {
    "small": (610, 9_742, 100_836),
    "ml-25m": (162_541, 62_423, 25_000_095),
    "ml-32m": (200_948, 87_585, 32_000_204),
}
LOAD_TARGET_S = 60.0
RSS_TARGET_GB = 8.0


def peak_rss_bytes() -> int:
    """High-water mark of this process's resident memory (``VmHWM``), in bytes."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmHWM not found in /proc/self/status (Linux only)")


# --------------------------------------------------------------------------- phases (child processes)
def generate(scale: str, folder: Path, seed: int) -> dict[str, Any]:
    from rlrec.data import make_synthetic, write_movielens_csv

    n_users, n_movies, n_ratings = SCALES[scale]
    started = time.perf_counter()
    dataset = make_synthetic(n_users=n_users, n_movies=n_movies, n_ratings=n_ratings, seed=seed, name=scale)
    generated = time.perf_counter()
    write_movielens_csv(dataset, folder)
    written = time.perf_counter()
    return {
        "generate_s": generated - started,
        "write_s": written - generated,
        "csv_bytes": sum(path.stat().st_size for path in folder.glob("*.csv")),
        "generate_peak_rss": peak_rss_bytes(),
    }


def _steps_per_second(env: Any, n_steps: int, seed: int) -> float:
    import numpy as np

    rng = np.random.default_rng(seed)
    actions = rng.integers(0, env.action_space.n, size=n_steps)
    env.reset(seed=seed)
    started = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(int(action))
        if terminated or truncated:
            env.reset()
    return n_steps / (time.perf_counter() - started)


def _bound_per_second(dataset: Any, n_steps: int, seed: int) -> float:
    """What any env handing out fresh profiles must do per step, and nothing else: allocate one
    ``np.full(n_movies, mean)`` row and scatter a random user's ratings into it."""
    import numpy as np

    rng = np.random.default_rng(seed)
    users = rng.integers(0, dataset.n_users, size=n_steps)
    indptr, indices, data = dataset.ratings.indptr, dataset.ratings.indices, dataset.ratings.data
    means, n_movies = dataset.user_means, dataset.n_movies
    started = time.perf_counter()
    for user in users.tolist():
        row = np.full(n_movies, means[user], dtype=np.float32)
        start, stop = indptr[user], indptr[user + 1]
        row[indices[start:stop]] = data[start:stop]
    return n_steps / (time.perf_counter() - started)


def measure(folder: Path, n_steps: int, seed: int) -> dict[str, Any]:
    import gymnasium
    import numpy as np

    import rlrec  # noqa: F401  (registers the envs)
    from rlrec.data import load_movielens

    out: dict[str, Any] = {}
    started = time.perf_counter()
    dataset = load_movielens(folder)
    out["load_s"] = time.perf_counter() - started
    out["users"], out["movies"], out["ratings"] = dataset.n_users, dataset.n_movies, dataset.n_ratings
    out["rss_after_load"] = peak_rss_bytes()

    started = time.perf_counter()
    env = gymnasium.make("rlrec/MovieLens-v0", data=dataset, observation="profile", disable_env_checker=True)
    out["profile_env_build_s"] = time.perf_counter() - started
    world: Any = env.unwrapped
    # Must be False at ml-25m size: profiles are then built on demand from the CSR matrix.
    out["profile_dense_cache"] = bool(world.world.profiles.cached)
    out["profile_steps_per_s"] = _steps_per_second(env, n_steps, seed)
    out["profile_bound_per_s"] = _bound_per_second(dataset, n_steps, seed)
    rng = np.random.default_rng(seed)
    users = rng.integers(0, dataset.n_users, size=256)
    started = time.perf_counter()
    for user in users:
        world.observations(np.array([user]))
    out["profile_obs_ms_per_user"] = 1e3 * (time.perf_counter() - started) / len(users)
    started = time.perf_counter()
    world.observations(users)
    out["profile_obs_ms_per_user_batch256"] = 1e3 * (time.perf_counter() - started) / len(users)
    env.close()
    del env, world

    started = time.perf_counter()
    env = gymnasium.make(
        "rlrec/MovieLens-v0", data=dataset, observation="embedding", disable_env_checker=True
    )
    out["embedding_env_build_s"] = time.perf_counter() - started
    out["embedding_steps_per_s"] = _steps_per_second(env, n_steps, seed)
    env.close()
    out["peak_rss"] = peak_rss_bytes()
    return out


# --------------------------------------------------------------------------- learning at scale
#: The 25M-rating world ``--learn`` trains on (the issue's sizes: ml-25m's, rounded).
LEARN_WORLD = {"n_users": 162_000, "n_movies": 62_000, "n_ratings": 25_000_000}
LEARN_TARGET_S = 3600.0


class StopAfterSeconds(BaseCallback):
    """Stops training once ``seconds`` of wall time have passed since training started (validation
    rankings included: they are part of what it takes to train this way)."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = float(seconds)
        self.started = time.perf_counter()

    def _on_training_start(self) -> None:
        self.started = time.perf_counter()

    def _on_step(self) -> bool:
        return time.perf_counter() - self.started < self.seconds


class StopAtStep(BaseCallback):
    """Stops training once the learner has taken ``steps`` env steps (SB3's ``num_timesteps``)."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = int(steps)

    def _on_step(self) -> bool:
        return int(self.num_timesteps) < self.steps


def learn(args: argparse.Namespace) -> dict[str, Any]:
    """Train ``args.algo`` on the 25M world's temporal split and rank its test part against popularity.

    Two phases, as the benchmark's baselines pick their epochs: (1) train on the fit part of train,
    rank a sample of the validation part every ``budget / evaluations`` steps and stop after
    ``--patience`` rankings without a new best (or at half the time budget); (2) train again, same
    seed and schedule, on all of train up to the step validation chose, so that the agent has seen
    the ratings popularity has. The test part is ranked once, by that model. ``train_s`` is both
    phases' wall time, validation rankings included.
    """
    from rlrec.agents.recipes import load_hyperparams, split_hyperparams
    from rlrec.data import make_synthetic
    from rlrec.data.split import temporal_split
    from rlrec.envs import SESSION_ID
    from rlrec.evaluation.baselines import make_baseline
    from rlrec.evaluation.metrics import evaluate_scores, relevant_users
    from rlrec.evaluation.protocol import evaluate_model
    from rlrec.experiments.manager import RunSpec, run_experiment

    world = dict(LEARN_WORLD)
    if args.scale == "small":
        world = dict(zip(("n_users", "n_movies", "n_ratings"), SCALES["small"], strict=True))
    started = time.perf_counter()
    dataset = make_synthetic(**world, seed=args.seed, name="synthetic-25m")
    generate_s = time.perf_counter() - started
    split = temporal_split(dataset)
    print(f"world: {dataset.n_users:,} users, {dataset.n_movies:,} movies, {dataset.n_ratings:,} ratings, "
          f"generated in {generate_s:.1f} s", flush=True)  # fmt: skip
    overrides = {key: _number(value) for key, value in (kv.split("=", 1) for kv in args.hyperparams)}
    recipe = load_hyperparams(args.algo, SESSION_ID, overrides)
    # Both phases run the same schedule (a linear learning rate decays over this budget).
    budget = int(args.timesteps or split_hyperparams(args.algo, recipe).n_timesteps)
    common = {"data": split.train, "env_id": SESSION_ID, "hyperparams": overrides, "timesteps": budget,
              "seed": args.seed, "holdout": False, "checkpoint_freq": None, "force": True}  # fmt: skip

    validation: dict[str, Any] = {}
    best_steps, validation_s = args.refit_at, 0.0
    if best_steps is None:
        scores: list[float] = []

        def keep_validation(steps: int, metrics: dict[str, float]) -> bool:
            scores.append(metrics["ndcg@10"])
            print(f"  validation at {steps:,} steps: ndcg@10 {scores[-1]:.4f}", flush=True)
            return len(scores) - 1 - int(np.argmax(scores)) < args.patience

        started = time.perf_counter()
        phase = run_experiment(
            RunSpec(
                args.algo,
                **common,
                n_evaluations=args.evaluations,
                eval_users=args.eval_users,
                references=("popularity",),
                output=Path(args.out) / "validation",
                keep_best=False,
                on_result=keep_validation,
                callbacks=[StopAfterSeconds(args.budget_s / 2)],
            )
        )
        validation_s, chosen = time.perf_counter() - started, phase.validation
        assert chosen is not None
        best_steps, best = chosen.best or (0, {})
        validation = {
            "validation_timesteps": phase.train.timesteps,
            "validation_ndcg@10": best.get("ndcg@10"),
            "validation_popularity_ndcg@10": (chosen.references or {}).get("popularity"),
        }
        print(f"  chosen: {best_steps:,} steps; training again on all of train", flush=True)
    started = time.perf_counter()
    refit = run_experiment(
        RunSpec(
            args.algo,
            **common,
            eval_freq=0,
            output=Path(args.out) / "refit",
            callbacks=[StopAtStep(best_steps), StopAfterSeconds(args.budget_s - validation_s)],
        )
    ).train
    refit_s = time.perf_counter() - started
    test_users = None
    if args.test_users:
        judged = relevant_users(split)
        rng = np.random.default_rng(args.seed)
        test_users = np.sort(rng.choice(judged, min(args.test_users, len(judged)), replace=False))
    env_kwargs = split_hyperparams(args.algo, recipe).env_kwargs
    agent = evaluate_model(refit.model, split, env_id=SESSION_ID, env_kwargs=env_kwargs, users=test_users)
    popularity = make_baseline("popularity").fit(split.train)
    reference = evaluate_scores(popularity.score, split, users=test_users)
    return {
        "world": world,
        "generate_s": generate_s,
        "algo": args.algo,
        "budget_timesteps": budget,
        **validation,
        "best_timesteps": int(best_steps),
        "refit_timesteps": refit.timesteps,
        "validation_s": validation_s,
        "refit_s": refit_s,
        "train_s": validation_s + refit_s,
        "test_users": agent["n_users"],
        "agent_ndcg@10": agent["ndcg@10"],
        "popularity_ndcg@10": reference["ndcg@10"],
        "peak_rss": peak_rss_bytes(),
    }


def _number(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


# --------------------------------------------------------------------------- driver
def _child(*args: str) -> dict[str, Any]:
    """Run this script's ``--phase`` in a fresh interpreter and return its JSON answer."""
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"bench_scale: phase {args[1]} failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _gb(value: float) -> str:
    return f"{value / 2**30:.2f} GiB"


def report(scale: str, gen: dict[str, Any] | None, res: dict[str, Any]) -> None:
    """Print the figures, one per line, with the targets."""
    load_ok = "ok" if res["load_s"] <= LOAD_TARGET_S else "OVER"
    rss_ok = "ok" if res["peak_rss"] <= RSS_TARGET_GB * 1e9 else "OVER"
    rows: list[tuple[str, str]] = []
    if gen is not None:
        rows += [
            (
                "generate (make_synthetic)",
                f"{gen['generate_s']:.1f} s, peak RSS {_gb(gen['generate_peak_rss'])}",
            ),
            (
                "write CSV (write_movielens_csv)",
                f"{gen['write_s']:.1f} s, {gen['csv_bytes'] / 2**20:,.0f} MiB",
            ),
        ]
    rows += [
        ("load_movielens", f"{res['load_s']:.1f} s (target <= {LOAD_TARGET_S:.0f} s: {load_ok})"),
        ("peak RSS after load", _gb(res["rss_after_load"])),
        ("peak RSS at the end", f"{_gb(res['peak_rss'])} (target <= {RSS_TARGET_GB:.0f} GB: {rss_ok})"),
        (
            "profile env: build",
            f"{res['profile_env_build_s']:.2f} s, dense cache: {res['profile_dense_cache']}",
        ),
        ("profile env: steps/s", f"{res['profile_steps_per_s']:,.0f}"),
        ("bound (np.full + scatter)/s", f"{res['profile_bound_per_s']:,.0f}"),
        (
            "profile env / bound",
            f"{res['profile_steps_per_s'] / res['profile_bound_per_s']:.2f} (target >= 0.8)",
        ),
        ("profile obs, one user", f"{res['profile_obs_ms_per_user']:.3f} ms"),
        ("profile obs, per user in 256", f"{res['profile_obs_ms_per_user_batch256']:.3f} ms"),
        ("embedding env: build (SVD)", f"{res['embedding_env_build_s']:.2f} s"),
        ("embedding env: steps/s", f"{res['embedding_steps_per_s']:,.0f}"),
        ("embedding / profile steps/s", f"{res['embedding_steps_per_s'] / res['profile_steps_per_s']:.1f}x"),
    ]
    sizes = f"{res['users']:,} users, {res['movies']:,} movies, {res['ratings']:,} ratings"
    print(f"bench_scale --scale {scale}: {sizes}")
    for label, value in rows:
        print(f"  {label:<32} {value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="ml-25m")
    parser.add_argument(
        "--workdir", default=None, help="keep the CSVs here (reused when present); default: temp"
    )
    parser.add_argument("--steps", type=int, default=2000, help="env steps timed per observation kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    parser.add_argument("--phase", choices=["generate", "measure"], default=None, help=argparse.SUPPRESS)
    parser.add_argument("--folder", default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--learn", action="store_true",
        help="train a session agent on the 25M-rating world (--scale small: a smoke run) and rank test",
    )  # fmt: skip
    parser.add_argument("--algo", default="ppo", help="--learn: the learner (session recipe), default ppo")
    parser.add_argument("--timesteps", type=int, default=None, help="--learn: budget (default the recipe's)")
    parser.add_argument(
        "--budget-s", type=float, default=LEARN_TARGET_S,
        help="--learn: wall seconds for both phases (validation at most half)",
    )  # fmt: skip
    parser.add_argument("--evaluations", type=int, default=8, help="--learn: validation rankings at most")
    parser.add_argument(
        "--patience", type=int, default=2, help="--learn: rankings without a new best before stopping"
    )
    parser.add_argument("--eval-users", type=int, default=5000, help="--learn: users per validation ranking")
    parser.add_argument("--test-users", type=int, default=0, help="--learn: test users (0: all)")
    parser.add_argument(
        "--hyperparams", nargs="*", default=[], metavar="K=V", help="--learn: recipe overrides"
    )
    parser.add_argument("--out", default="bench_scale_out", help="--learn: folder of the run")
    parser.add_argument(
        "--refit-at", type=int, default=None, metavar="STEPS",
        help="--learn: skip validation; train on all of train to this step (chosen by an earlier run)",
    )  # fmt: skip
    args = parser.parse_args(argv)

    if args.learn:
        res = learn(args)
        print(json.dumps(res))
        if args.json:
            Path(args.json).write_text(json.dumps(res, indent=2))
        print(
            f"scale-learn: agent {res['agent_ndcg@10']:.4f} popularity {res['popularity_ndcg@10']:.4f} "
            f"train_s {res['train_s']:.0f} peak_rss_gb {res['peak_rss'] / 1e9:.2f}"
        )
        return 0
    if args.phase == "generate":
        print(json.dumps(generate(args.scale, Path(args.folder), args.seed)))
        return 0
    if args.phase == "measure":
        print(json.dumps(measure(Path(args.folder), args.steps, args.seed)))
        return 0

    common = ["--folder", "", "--seed", str(args.seed)]
    with tempfile.TemporaryDirectory(prefix="rlrec-bench-scale-") as tmp:
        folder = Path(args.workdir) if args.workdir else Path(tmp) / args.scale
        folder.mkdir(parents=True, exist_ok=True)
        common[1] = str(folder)
        gen = None
        if not ((folder / "ratings.csv").is_file() and (folder / "movies.csv").is_file()):
            gen = _child("--phase", "generate", "--scale", args.scale, *common)
        res = _child("--phase", "measure", "--steps", str(args.steps), *common)
    report(args.scale, gen, res)
    if args.json:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from rlrec.utils.io import save_json

        save_json(
            args.json, {"scale": args.scale, "generate": gen, "measure": res, "cpu_count": os.cpu_count()}
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
