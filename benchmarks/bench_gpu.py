"""CPU against GPU in one run: env steps/s, training env-steps/s, wall time to 1.2x popularity.

Three parts, each on every device asked for (``--devices cpu cuda``; ``cuda`` is skipped with a
line saying so when torch sees no GPU):

* ``env``: steps/s of ``rlrec/MovieLensSession-v0`` at 256 / 4,096 / 16,384 sessions, random
  valid actions drawn beforehand: the NumPy backend (the CPU only) and the torch backend on each
  device. A step is ``step`` plus the same-step resets it triggers.
* ``train``: env-steps/s of ``dqn-session``, ``sb3-dqn-session`` and ``ppo-session`` (the
  benchmark entries, their shipped recipes) over ``--train-steps`` steps, validation off; on a
  GPU the learner's networks there (``device``) and its env on the torch backend there too.
* ``bar``: training seconds (validation rankings excluded) until the entry's validation
  NDCG@10 first reaches 1.2x popularity's on the same validation users (ranked every
  ``--eval-every`` steps), stopping there; ``not reached`` after ``--bar-steps``.

    python benchmarks/bench_gpu.py --data ../shared/data/ml-latest-small-2016
    python benchmarks/bench_gpu.py --parts env --devices cpu          # a minute, no GPU needed

The printed table names the hardware (CPU model and count, GPU name). Figures belong in the
README with that line; nothing here is timed by the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import torch

from rlrec.data import load_movielens
from rlrec.data.split import temporal_split, validation_split
from rlrec.envs import SESSION_ID
from rlrec.evaluation.protocol import evaluate_baseline
from rlrec.experiments.entries import BENCHMARK_SETUPS
from rlrec.experiments.manager import RunSpec, run_experiment

SESSIONS = (256, 4096, 16_384)
TRAIN_ENTRIES = ("dqn-session", "sb3-dqn-session", "ppo-session")
BAR = 1.2


def hardware() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu} x {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads), {gpu}"
    )


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


# --------------------------------------------------------------------------------- env
def env_steps_per_second(
    data: Any, n_sessions: int, backend: str, device: str, steps: int, seed: int
) -> float:
    """Session env steps per second (``n_sessions`` sessions stepped ``steps`` times, same-step resets)."""
    extra = {} if backend == "numpy" else {"device": device}
    venv = gymnasium.make_vec(
        SESSION_ID, num_envs=n_sessions, vectorization_mode="vector_entry_point", data=data,
        autoreset_mode="same_step", backend=backend, hidden_fraction=0.8, observation="binary", **extra,
    )  # fmt: skip
    venv.reset(seed=seed)
    rng = np.random.default_rng(seed)
    n_movies = venv.unwrapped.n_movies if hasattr(venv, "unwrapped") else venv.n_movies
    draws = rng.integers(0, n_movies, size=(8, n_sessions))
    actions = [torch.as_tensor(row, device=device) if backend == "torch" else row for row in draws]
    venv.step(actions[0])  # warm-up (allocations, kernels)
    _sync(device)
    started = time.perf_counter()
    for i in range(steps):
        venv.step(actions[i % len(actions)])
    _sync(device)
    seconds = time.perf_counter() - started
    venv.close()
    return steps * n_sessions / seconds


# ------------------------------------------------------------------------------- learners
def _spec(
    entry: str, data: Any, device: str, seed: int, out: Path, backend: str | None = None, **options: Any
) -> RunSpec:
    """The entry's run on ``device``; its env on the torch backend off the CPU (or as ``backend`` says)."""
    setup = BENCHMARK_SETUPS[entry]
    env_kwargs = dict(setup.env_kwargs)
    backend = backend or ("numpy" if device == "cpu" else "torch")
    if backend == "torch":
        env_kwargs["backend"] = "torch"
    return RunSpec(
        setup.algo or entry,
        data=data,
        env_id=setup.env_id,
        env_kwargs=env_kwargs,
        hyperparams=setup.hyperparams,
        seed=seed,
        holdout=False,
        output=out / f"{entry}-{device}-{backend}",
        checkpoint_freq=None,
        force=True,
        device=device,
        **options,
    )


def train_steps_per_second(
    entry: str, data: Any, device: str, backend: str, steps: int, seed: int, out: Path
) -> float:
    spec = _spec(entry, data, device, seed, out, backend, timesteps=steps, eval_freq=0)
    started = time.perf_counter()
    result = run_experiment(spec).train
    _sync(device)
    return result.timesteps / (time.perf_counter() - started)


def seconds_to_bar(
    entry: str, data: Any, device: str, budget: int, eval_every: int, seed: int, out: Path
) -> tuple[float | None, int | None]:
    """Training seconds (and steps) until validation NDCG@10 >= 1.2x popularity's; None: not reached."""
    # The validation part run_experiment carves from ``data``, and popularity's level on it.
    popularity = float(evaluate_baseline("popularity", validation_split(data))["ndcg@10"])
    mark = BAR * popularity
    spec = _spec(
        entry, data, device, seed, out, timesteps=budget, eval_freq=eval_every,
        references={"popularity": popularity}, on_result=lambda steps, metrics: metrics["ndcg@10"] < mark,
    )  # fmt: skip
    validation = run_experiment(spec).validation
    assert validation is not None
    steps, metrics = validation.evaluations[-1]
    return (validation.train_seconds[-1], steps) if metrics["ndcg@10"] >= mark else (None, None)


# ---------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="synthetic", help="data set (default the synthetic default world)")
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"], choices=("cpu", "cuda"))
    parser.add_argument(
        "--parts", nargs="+", default=["env", "train", "bar"], choices=("env", "train", "bar")
    )
    parser.add_argument("--sessions", nargs="+", type=int, default=list(SESSIONS))
    parser.add_argument(
        "--env-steps", type=int, default=120, help="steps timed per env configuration (> 50: resets)"
    )
    parser.add_argument("--entries", nargs="+", default=list(TRAIN_ENTRIES))
    parser.add_argument("--train-steps", type=int, default=100_000)
    parser.add_argument("--bar-steps", type=int, default=1_000_000, help="budget of the time-to-1.2x runs")
    parser.add_argument("--eval-every", type=int, default=20_000, help="steps between validation rankings")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="bench_gpu_out")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    devices = [d for d in args.devices if d == "cpu" or torch.cuda.is_available()]
    print(f"bench_gpu on {hardware()}")
    if len(devices) < len(args.devices):
        print("  cuda: skipped, torch sees no GPU on this machine")
    dataset = load_movielens(args.data)
    train = temporal_split(dataset).train
    out = Path(args.out)
    figures: dict[str, Any] = {"hardware": hardware(), "data": dataset.name}
    if "env" in args.parts:
        print(f"env steps/s, {SESSION_ID} on {dataset.name} ({dataset.n_movies:,} movies):")
        for n in args.sessions:
            runs = [("numpy", "cpu")] + [("torch", device) for device in devices]
            for backend, device in runs:
                rate = env_steps_per_second(train, n, backend, device, args.env_steps, args.seed)
                figures[f"env/{n}/{backend}/{device}"] = rate
                print(f"  {n:>6} sessions  {backend:<5} {device:<4} {rate:>14,.0f} steps/s", flush=True)
    if "train" in args.parts:
        print(f"training env-steps/s ({args.train_steps:,} steps, validation off):")
        # On the CPU both backends: what the host crossing of the torch backend costs there.
        runs = [("cpu", "numpy"), ("cpu", "torch")] + [(d, "torch") for d in devices if d != "cpu"]
        for entry in args.entries:
            for device, backend in runs:
                rate = train_steps_per_second(entry, train, device, backend, args.train_steps, args.seed, out)
                figures[f"train/{entry}/{device}/{backend}"] = rate
                print(f"  {entry:<18} {device:<4} {backend:<5} {rate:>10,.0f} steps/s", flush=True)
    if "bar" in args.parts:
        print(
            f"training seconds to {BAR}x popularity on validation (ranked every {args.eval_every:,} steps):"
        )
        for entry in args.entries:
            for device in devices:
                seconds, steps = seconds_to_bar(
                    entry, train, device, args.bar_steps, args.eval_every, args.seed, out
                )
                figures[f"bar/{entry}/{device}"] = {"seconds": seconds, "steps": steps}
                shown = "not reached" if seconds is None else f"{seconds:8.1f} s at {steps:,} steps"
                print(f"  {entry:<18} {device:<4} {shown}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
