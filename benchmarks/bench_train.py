"""Training speed of our learners against SB3's DQN on ml-latest-small-2016.

Prints, for the same hyperparameters (network, batch, train_freq, learning_starts, target
interval), the env steps per second and the peak RSS of our ``DQNAgent`` and of SB3's plain
``MlpPolicy`` ``DQN``, each trained in its own subprocess (so that peak memory is each one's own),
and their ratio, at each replay size of ``--buffer-sizes`` (10k and 100k transitions: where an
edge comes from shows there, as SB3's dense buffer costs more the larger it is); the tabular
Q-learning updates per second (one at a time, as its learning loop makes them); and the bytes
of a replay buffer of 1M ``MovieLens-v0`` transitions, compact vs SB3's layout.

    python benchmarks/bench_train.py                 # 20,000 steps each, buffers 10k and 100k
    python benchmarks/bench_train.py --steps 5000 --data ../shared/data/ml-latest-small-2016
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RELEASE = "ml-latest-small-2016"
#: The hyperparameters both DQNs get (SB3's names; ``buffer_size`` from ``--buffer-sizes``);
#: everything else is each library's default.
HYPERPARAMS: dict[str, Any] = {
    "learning_rate": 1e-4,
    "learning_starts": 100,
    "batch_size": 32,
    "tau": 1.0,
    "gamma": 0.99,
    "train_freq": 4,
    "gradient_steps": 1,
    "target_update_interval": 10_000,
    "exploration_fraction": 0.1,
    "exploration_initial_eps": 1.0,
    "exploration_final_eps": 0.05,
    "max_grad_norm": 10.0,
}
NET_ARCH = [64]


def default_data() -> Path:
    home = Path(os.environ.get("RLREC_DATA", REPO.parent / "shared" / "data"))
    return home / RELEASE


def make_env(data: Path) -> Any:
    import gymnasium

    import rlrec  # noqa: F401 - registers the envs
    from rlrec.data import load_movielens

    return gymnasium.make("rlrec/MovieLens-v0", data=load_movielens(data))


# ------------------------------------------------------------------ one learner, in a child
def run_child(
    which: str, data: Path, steps: int, seed: int, threads: int, buffer_size: int
) -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    env = make_env(data)
    hyperparams = {**HYPERPARAMS, "buffer_size": buffer_size}
    if which == "ours":
        from rlrec.agents.dqn import DQNAgent

        model: Any = DQNAgent(env, net_arch=NET_ARCH, seed=seed, device="cpu", **hyperparams)
    else:
        from stable_baselines3 import DQN

        model = DQN(
            "MlpPolicy", env, policy_kwargs={"net_arch": NET_ARCH}, seed=seed, device="cpu", **hyperparams
        )
    start = time.perf_counter()
    model.learn(steps)
    seconds = time.perf_counter() - start
    # ru_maxrss is in KiB on Linux.
    return {
        "which": which,
        "buffer_size": buffer_size,
        "steps": steps,
        "seconds": seconds,
        "steps_per_s": steps / seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_in_subprocess(which: str, args: argparse.Namespace, buffer_size: int) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--child",
        which,
        "--data",
        str(args.data),
        "--steps",
        str(args.steps),
        "--seed",
        str(args.seed),
        "--threads",
        str(args.threads),
        "--buffer-sizes",
        str(buffer_size),
    ]
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO)
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- tabular
def bench_tabular(n_states: int, n_actions: int, seed: int) -> dict[str, float]:
    from rlrec.agents.tabular_q import QLearningAgent

    agent = QLearningAgent(None, n_states=n_states, n_actions=n_actions, seed=seed, _key_mode="env")
    rng = np.random.default_rng(seed)
    n = 200_000
    states = rng.integers(n_states, size=n)
    actions = rng.integers(n_actions, size=n)
    rewards = rng.uniform(0.5, 5.0, size=n)
    next_states = rng.integers(n_states, size=n)
    terminated = rng.random(n) < 0.02
    # Plain Python scalars, as the learn loop passes them.
    rows = list(
        zip(states.tolist(), actions.tolist(), rewards.tolist(), next_states.tolist(), terminated.tolist())
    )
    start = time.perf_counter()
    for s, a, r, s2, done in rows:
        agent.update(s, a, r, s2, done)
    single = n / (time.perf_counter() - start)

    return {"single_per_s": single}


# ----------------------------------------------------------------------- replay memory
def buffer_bytes(data: Path, capacity: int) -> dict[str, float]:
    import numpy as np
    from stable_baselines3.common.buffers import ReplayBuffer

    from rlrec.nn import CompactReplayBuffer

    env = make_env(data)
    base = env.unwrapped
    # MovieLens-v0 names its states (the user): our DQN keeps 1M transitions as state indices.
    compact = CompactReplayBuffer(
        capacity, env.observation_space, env.action_space, device="cpu", observations_fn=base.observations
    )
    chunk = np.arange(10_000) % base.n_states
    for _ in range(capacity // len(chunk)):
        compact.add_transitions(
            None,
            None,
            chunk,
            np.zeros(len(chunk)),
            np.zeros(len(chunk), bool),
            chunk,
            (chunk + 1) % base.n_states,
        )  # type: ignore[arg-type]
    # SB3's layout measured on a small buffer and scaled: allocating 1M x 2 x 10,329 floats is 83 GB.
    probe = 1000
    sb3 = ReplayBuffer(probe, env.observation_space, env.action_space, device="cpu")
    arrays = (sb3.observations, sb3.next_observations, sb3.actions, sb3.rewards, sb3.dones, sb3.timeouts)
    per_transition = sum(a.nbytes for a in arrays) / probe
    return {"compact_bytes": compact.nbytes, "sb3_bytes": per_transition * capacity}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=None, help=f"the {RELEASE} folder (default: $RLREC_DATA/{RELEASE})"
    )
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of both learners")
    parser.add_argument(
        "--buffer-sizes", type=int, nargs="+", default=[10_000, 100_000], help="replay sizes compared"
    )
    parser.add_argument("--skip-sb3", action="store_true", help="only our learners (SB3 takes minutes)")
    parser.add_argument("--child", choices=("ours", "sb3"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.data = args.data or default_data()
    if not (args.data / "ratings.csv").is_file():
        print(f"--data: {args.data} has no ratings.csv", file=sys.stderr)
        return 2
    if args.child:
        print(
            json.dumps(
                run_child(args.child, args.data, args.steps, args.seed, args.threads, args.buffer_sizes[0])
            )
        )
        return 0

    print(f"data: {args.data}   steps: {args.steps:,}   torch threads: {args.threads}")
    print(
        f"hyperparameters (both): net_arch={NET_ARCH} " + " ".join(f"{k}={v}" for k, v in HYPERPARAMS.items())
    )
    for buffer_size in args.buffer_sizes:
        ours = run_in_subprocess("ours", args, buffer_size)
        print(
            f"buffer {buffer_size:>9,}  our DQNAgent: {ours['steps_per_s']:8.1f} env steps/s   "
            f"peak RSS {ours['peak_rss_mb']:7.1f} MB"
        )
        if args.skip_sb3:
            continue
        sb3 = run_in_subprocess("sb3", args, buffer_size)
        print(
            f"buffer {buffer_size:>9,}  SB3 DQN     : {sb3['steps_per_s']:8.1f} env steps/s   "
            f"peak RSS {sb3['peak_rss_mb']:7.1f} MB"
        )
        print(
            f"buffer {buffer_size:>9,}  speed ratio ours / SB3: "
            f"{ours['steps_per_s'] / sb3['steps_per_s']:.2f}x   "
            f"RSS ratio SB3 / ours: {sb3['peak_rss_mb'] / ours['peak_rss_mb']:.1f}x"
        )

    sizes = buffer_bytes(args.data, 1_000_000)
    print(
        f"replay buffer, 1M transitions: compact {sizes['compact_bytes'] / 2**20:.1f} MiB   "
        f"SB3 {sizes['sb3_bytes'] / 2**30:.1f} GiB   "
        f"ratio {sizes['sb3_bytes'] / sizes['compact_bytes']:,.0f}x"
    )

    env = make_env(args.data)
    tab = bench_tabular(env.unwrapped.n_states, env.unwrapped.n_movies, args.seed)
    print(
        f"tabular Q updates/s ({env.unwrapped.n_states} x {env.unwrapped.n_movies} table): "
        f"one at a time {tab['single_per_s']:,.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
