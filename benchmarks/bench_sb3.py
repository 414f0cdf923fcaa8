"""The SB3 issue's bar: SB3's algorithms on the session env against popularity and EASE.

Each (agent, seed) runs ``rlrec benchmark --algos AGENT --seed SEED`` in a fresh process (so that
its peak RSS is its own): the agent trains from scratch with its shipped recipe on the fit part
of the train split, ``--eval-freq``-style evaluations on the validation part pick the best model,
and that model ranks the test part once. Printed per agent: test NDCG@10 of every seed, mean and
spread, the ratio to popularity and to EASE (test, same run), wall seconds of training until the
validation NDCG@10 first reached 1.2x popularity's validation NDCG@10 (evaluations every tenth
of the budget, so the time is that of the first evaluation past the mark), and peak RSS.

    python benchmarks/bench_sb3.py --data ../shared/data/ml-latest-small-2016 \
        --agents sb3-dqn-session maskable-ppo-session --seeds 0 1 2

``--replay`` first fills a CompactReplayBuffer with 1M real transitions of the sb3-dqn recipe's env
and prints its size against SB3's own layout (``--agents`` may then be empty: ``--agents``).

``--timesteps`` cuts every budget (a quick look; the bar is for the shipped budgets).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


#: The five SB3 / sb3-contrib session entries (``--agents all``).
ALL_AGENTS = ("sb3-dqn-session", "qrdqn-session", "ppo-session", "a2c-session", "maskable-ppo-session")
#: Ablations (``--ablation``): the same entry with the action prior off, and with SB3's own policy
#: (no movie-scoring head, hence no prior and, for PPO, no masking from the observation).
SB3_POLICY = {"ppo": "MlpPolicy", "a2c": "MlpPolicy", "maskable-ppo": "MlpPolicy",
              "sb3-dqn": "rlrec.nn.UnseenDQNPolicy", "qrdqn": "rlrec.nn.UnseenQRDQNPolicy"}  # fmt: skip


def ablations(agent: str) -> dict[str, Any]:
    """``{name: LearnerSetup}`` of ``agent`` without its prior, and without its head."""
    from rlrec.agents.recipes import load_hyperparams, parse_policy_kwargs
    from rlrec.experiments.benchmark import BENCHMARK_SETUPS, LearnerSetup

    setup = BENCHMARK_SETUPS[agent]
    algo = setup.algo or agent
    recipe = load_hyperparams(algo, setup.env_id)
    kwargs_text = str(recipe.get("policy_kwargs", ""))
    for option in ("mask_observed=True, ", "mask_observed=True,", "tie_embeddings=True, "):
        kwargs_text = kwargs_text.replace(option, "")
    parse_policy_kwargs(kwargs_text)  # still valid for SB3's own policies
    return {
        f"{agent}:no-prior": LearnerSetup(setup.env_id, algo=algo, hyperparams={"callback": None}),
        f"{agent}:no-head": LearnerSetup(
            setup.env_id,
            algo=algo,
            hyperparams={"callback": None, "policy": SB3_POLICY[algo], "policy_kwargs": kwargs_text},
        ),
    }


def step0_ndcg(agent: str, data: str, seed: int, setups: dict[str, Any]) -> float | None:
    """Test NDCG@10 of ``agent``'s untrained policy with its prior set from the env it trains on
    (the fit part of train): what learning has to beat. None for a recipe without a prior."""
    from rlrec.data import load_movielens
    from rlrec.data.split import temporal_split, validation_split
    from rlrec.experiments.benchmark import prior_only_ndcg

    split = temporal_split(load_movielens(data))
    return prior_only_ndcg(setups[agent], validation_split(split.train).train, split, seed, algo=agent)


def _worker(args: argparse.Namespace) -> None:
    from rlrec.experiments.benchmark import BENCHMARK_SETUPS, run_benchmark

    setups = dict(BENCHMARK_SETUPS)
    base = args.agent.split(":")[0]
    setups.update(ablations(base) if ":" in args.agent else {})
    report = run_benchmark(
        args.data, out=args.out, timesteps=args.timesteps, seed=args.seed, algos=[args.agent], baselines=(),
        setups=setups,
    )  # fmt: skip
    row = report["results"][args.agent]
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row["step0_ndcg@10"] = step0_ndcg(args.agent, args.data, args.seed, setups)
    Path(args.out, "row.json").write_text(json.dumps(row))


def replay_megabytes(data: str, transitions: int = 1_000_000) -> tuple[float, float]:
    """(CompactReplayBuffer, SB3's ReplayBuffer) MB for ``transitions`` real session transitions:
    the sb3-dqn recipe's env (64 sessions, its env_kwargs), random actions, SB3's ``add``."""
    from stable_baselines3.common.buffers import ReplayBuffer

    from rlrec.agents.recipes import load_hyperparams, split_hyperparams
    from rlrec.data import load_movielens
    from rlrec.experiments.training import make_training_env
    from rlrec.nn import CompactReplayBuffer

    recipe = split_hyperparams("sb3-dqn", load_hyperparams("sb3-dqn", "rlrec/MovieLensSession-v0"))
    env = make_training_env("sb3-dqn", load_movielens(data), "rlrec/MovieLensSession-v0", recipe.env_kwargs,
                            recipe.n_envs, seed=0)  # fmt: skip
    buffer = CompactReplayBuffer(transitions, env.observation_space, env.action_space, "cpu", env.num_envs)
    rng = np.random.default_rng(0)
    obs = env.reset()
    for _ in range(transitions // env.num_envs):
        actions = rng.integers(0, env.action_space.n, size=env.num_envs)
        new_obs, rewards, dones, infos = env.step(actions)
        next_obs = new_obs.copy()
        for i in np.flatnonzero(dones):
            next_obs[i] = infos[i]["terminal_observation"]
        buffer.add(obs, next_obs, actions, rewards, dones, infos)
        obs = new_obs
    probe = ReplayBuffer(1000, env.observation_space, env.action_space, "cpu")
    arrays = (probe.observations, probe.next_observations, probe.actions, probe.rewards, probe.dones)
    sb3_bytes = sum(a.nbytes for a in arrays) / 1000 * transitions
    return buffer.nbytes / 2**20, sb3_bytes / 2**20


def _time_to(curve: list[dict[str, Any]], mark: float) -> float | None:
    for point in curve:
        if point["ndcg@10"] >= mark:
            return float(point["train_seconds"])
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="ml-latest-small-2016")
    parser.add_argument("--agents", nargs="*", default=["all"], help="entries, or 'all' (the five)")
    parser.add_argument("--ablation", nargs="*", default=[], help="entries to ablate at the first seed")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--timesteps", type=int, default=None)
    parser.add_argument("--out", default=None, help="keep each run's benchmark folder here")
    parser.add_argument("--replay", action="store_true", help="also fill 1M session transitions")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--agent", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return

    if args.replay:
        ours, theirs = replay_megabytes(args.data)
        print(
            f"replay, 1M session transitions: CompactReplayBuffer {ours:.0f} MB, "
            f"SB3's layout {theirs:,.0f} MB"
        )
    from rlrec.data import load_movielens
    from rlrec.data.split import temporal_split
    from rlrec.evaluation.protocol import evaluate_baseline

    split = temporal_split(load_movielens(args.data))
    baselines = {name: evaluate_baseline(name, split, k=10)["ndcg@10"] for name in ("popularity", "ease")}
    print(f"{args.data}: test NDCG@10 popularity {baselines['popularity']:.4f}, EASE {baselines['ease']:.4f}")
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_sb3_"))
    header = (
        "| agent | seed | NDCG@10 | x popularity | x EASE | step 0 (prior only) | x step 0 | best at step "
        "| s to 1.2x pop (val) | train s | peak RSS MB |"
    )
    print(header)
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    summary = {}
    agents = list(ALL_AGENTS) if args.agents == ["all"] else list(args.agents)
    runs = [(agent, seed) for agent in agents for seed in args.seeds]
    for agent in args.ablation:
        runs += [(f"{agent}:no-prior", args.seeds[0]), (f"{agent}:no-head", args.seeds[0])]
    for agent in dict.fromkeys(name for name, _ in runs):
        scores = []
        for seed in [seed for name, seed in runs if name == agent]:
            out = root / f"{agent}-seed{seed}"
            command = [sys.executable, __file__, "--worker", "--data", args.data, "--agent", agent,
                       "--seed", str(seed), "--out", str(out)]  # fmt: skip
            if args.timesteps is not None:
                command += ["--timesteps", str(args.timesteps)]
            subprocess.run(command, check=True)  # one process per run: its peak RSS is its own
            row = json.loads((out / "row.json").read_text())
            ndcg = row["ndcg@10"]
            scores.append(ndcg)
            mark = 1.2 * row["validation_references"]["popularity"]
            reached = _time_to(row["validation_curve"], mark)
            step0 = row.get("step0_ndcg@10")
            prior = "- | -" if step0 is None else f"{step0:.4f} | {ndcg / step0:.3f}"
            print(
                f"| {agent} | {seed} | {ndcg:.4f} | {ndcg / baselines['popularity']:.3f} | "
                f"{ndcg / baselines['ease']:.3f} | {prior} | {row['best_timesteps']} | "
                f"{'not reached' if reached is None else f'{reached:.0f}'} | {row['train_seconds']:.0f} | "
                f"{row['peak_rss_mb']:.0f} |",
                flush=True,
            )
        summary[agent] = scores
    print()
    for agent, scores in summary.items():
        mean = float(np.mean(scores))
        spread = f"{min(scores):.4f}-{max(scores):.4f}"
        print(
            f"{agent}: mean NDCG@10 {mean:.4f} over seeds {args.seeds} (range {spread}), "
            f"{mean / baselines['popularity']:.3f}x popularity, {mean / baselines['ease']:.3f}x EASE"
        )


if __name__ == "__main__":
    main()
