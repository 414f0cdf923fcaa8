"""The evaluation issue's bar: an RL agent trained from scratch against popularity and EASE.

Trains the bar agent of ``rlrec/hyperparams/bar.yml`` (a γ=0 DQN, i.e. a contextual bandit
learned by Q-regression on its own rewards) by interacting with
:class:`rlrec.envs.session_vector.MovieLensSessionVectorEnv` built on the TRAIN part of the
per-user temporal split, then ranks every user's unseen movies under the protocol
(``rlrec.evaluation``) and prints NDCG@10 and friends for the agent, popularity and EASE, all
from this run, with the agent's ratio to popularity. The bar: NDCG@10 >= 1.2 x popularity.

    python benchmarks/bench_bar.py --data ../shared/data/ml-latest-small-2016 --seed 0 --minutes 30

Measured (ml-latest-small-2016, bar.yml, 1e6 env steps, ~280 s of training on the shared 2-core
machine): NDCG@10 0.0954 / 0.1021 / 0.0915 for seeds 0 / 1 / 2 (popularity 0.0724, EASE 0.1077):
1.32 / 1.41 / 1.26 x popularity.

Training stops after the yml's ``n_timesteps`` env steps or ``--minutes``, whichever comes
first (the exploration schedule follows env steps, so a run that reaches ``n_timesteps`` gives
the same numbers for the same seed on the CPU; one cut by the clock says so).

The learner is written out here, CleanRL style, because ``rlrec.agents.DQNAgent`` does not yet
have what makes it fast and good on this env (a sparse first layer for non-compact
observations, input normalisation, dropout, learning from the fresh batch); those options are
requested for it. What the agent learns from is only the reward of the movies it
recommended in the env: the dataset's ratings reach it through the env alone.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from torch.nn import functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rlrec.data import load_movielens  # noqa: E402
from rlrec.envs.session_vector import MovieLensSessionVectorEnv  # noqa: E402
from rlrec.evaluation.metrics import evaluate_scores  # noqa: E402
from rlrec.evaluation.protocol import evaluate_baseline, protocol_description  # noqa: E402
from rlrec.evaluation.split import temporal_split  # noqa: E402
from rlrec.utils.seeding import seed_everything, set_torch_threads  # noqa: E402

ENV_ID = "rlrec/MovieLensSession-v0"
HYPERPARAMS = REPO / "rlrec" / "hyperparams" / "bar.yml"
#: The issue's bar: at least 20% above popularity.
BAR_RATIO = 1.2


def load_hyperparams(path: Path = HYPERPARAMS, env_id: str = ENV_ID) -> dict[str, Any]:
    """The ``env_id`` section of a zoo-format yml."""
    with open(path, encoding="utf-8") as handle:
        sections = yaml.safe_load(handle)
    if env_id not in sections:
        raise ValueError(f"{path}: no section for {env_id}")
    return dict(sections[env_id])


# --------------------------------------------------------------------------- Q-network
class SparseQNetwork(nn.Module):
    """``Q(obs, ·) = head(dropout(relu(W_in x / sqrt(|x|_0) + b)))`` with a sparse first layer.

    Observations are visible-movie vectors with ~100 non-zeros out of 10,329: the first layer
    reads only those rows (``embedding_bag``), and dividing by the square root of their count
    keeps the hidden scale the same for a half-hidden training history and a whole evaluation
    history (Mult-DAE's input normalisation, Liang et al. 2018). Input, head weights and head
    biases are embeddings with sparse gradients: a step only touches the rows of the visible
    movies and of the recommended ones (``SparseAdam``), not all 10,329 x width weights.
    """

    def __init__(self, n_movies: int, width: int, dropout: float) -> None:
        super().__init__()
        self.input = nn.Embedding(n_movies, width, sparse=True)
        nn.init.normal_(self.input.weight, 0.0, 1.0 / math.sqrt(width))
        self.input_bias = nn.Parameter(torch.zeros(width))
        self.head = nn.Embedding(n_movies, width, sparse=True)
        nn.init.uniform_(self.head.weight, -1.0 / math.sqrt(width), 1.0 / math.sqrt(width))
        self.head_bias = nn.Embedding(n_movies, 1, sparse=True)
        nn.init.zeros_(self.head_bias.weight)
        self.dropout = dropout

    def features(self, obs: np.ndarray) -> torch.Tensor:
        rows, cols = np.nonzero(obs)
        counts = np.bincount(rows, minlength=len(obs))
        offsets = np.zeros(len(obs), dtype=np.int64)
        np.cumsum(counts[:-1], out=offsets[1:])
        weights = obs[rows, cols] / np.sqrt(np.maximum(counts, 1))[rows]
        hidden = F.embedding_bag(
            torch.from_numpy(cols),
            self.input.weight,
            torch.from_numpy(offsets),
            mode="sum",
            per_sample_weights=torch.from_numpy(weights.astype(np.float32)),
            sparse=True,
        )
        return F.relu(hidden + self.input_bias)

    def q_all(self, features: torch.Tensor) -> torch.Tensor:
        return features @ self.head.weight.T + self.head_bias.weight[:, 0]

    def q_of(self, features: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``Q(obs_i, actions_i)`` without the other outputs; dropout applies here (training)."""
        kept = F.dropout(features, self.dropout, training=True) if self.dropout else features
        return (kept * self.head(actions)).sum(dim=1) + self.head_bias(actions)[:, 0]

    @torch.no_grad()
    def scores(self, obs: np.ndarray) -> np.ndarray:
        return self.q_all(self.features(obs)).numpy()


# ------------------------------------------------------------------------------ training
def random_allowed(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One uniformly random allowed movie per row (rejection sampling: masks are mostly True)."""
    n_movies = masks.shape[1]
    rows = np.arange(len(masks))
    out = rng.integers(0, n_movies, size=len(masks))
    bad = ~masks[rows, out]
    while bad.any():
        out[bad] = rng.integers(0, n_movies, size=int(bad.sum()))
        bad = ~masks[rows, out]
    return out


def linear_schedule(start: float, end: float, fraction: float, progress: float) -> float:
    """SB3's exploration schedule: ``start -> end`` over the first ``fraction`` of training."""
    return end if progress >= fraction else start + (end - start) * progress / fraction


def learning_rate_at(value: str | float, progress: float) -> float:
    """The zoo's ``lin_<x>``: ``x`` decaying linearly to 0 over training; a number: constant."""
    if isinstance(value, str) and value.startswith("lin_"):
        return float(value[4:]) * (1.0 - progress)
    return float(value)


def train_bar_agent(
    env: MovieLensSessionVectorEnv,
    hp: dict[str, Any],
    seed: int,
    minutes: float,
    log_every_s: float = 60.0,
    evaluate: Any = None,
) -> tuple[SparseQNetwork, dict[str, Any]]:
    """γ=0 DQN: act ε-greedy on the masked Q-values, regress Q(s, a) on the reward just earned.

    Every iteration steps all ``n_envs`` sessions and makes one gradient step on that fresh
    batch (on-policy data, no replay: with γ=0 the target is the reward, and fresh batches cost
    nothing to store).
    """
    if float(hp.get("gamma", 0.0)) != 0.0:
        raise ValueError(f"{HYPERPARAMS}: gamma must be 0 for this learner (got {hp['gamma']})")
    rng = seed_everything(seed)
    set_torch_threads(1)
    net = SparseQNetwork(env.n_movies, int(hp["net_arch"][0]), float(hp.get("dropout", 0.0)))
    sparse_params = [net.input.weight, net.head.weight, net.head_bias.weight]
    sparse_opt = torch.optim.SparseAdam(sparse_params, lr=learning_rate_at(hp["learning_rate"], 0.0))
    dense_opt = torch.optim.Adam([net.input_bias], lr=learning_rate_at(hp["learning_rate"], 0.0))
    total = int(float(hp["n_timesteps"]))
    started = time.perf_counter()
    next_log = started + log_every_s
    obs, _ = env.reset(seed=seed)
    steps, hits = 0, 0.0
    while steps < total and time.perf_counter() - started < minutes * 60:
        epsilon = linear_schedule(
            float(hp["exploration_initial_eps"]),
            float(hp["exploration_final_eps"]),
            float(hp["exploration_fraction"]),
            steps / total,
        )
        for group in (*sparse_opt.param_groups, *dense_opt.param_groups):
            group["lr"] = learning_rate_at(hp["learning_rate"], steps / total)
        masks = env.action_masks()
        features = net.features(obs)
        with torch.no_grad():
            q = net.q_all(features).numpy()
        actions = np.where(masks, q, -np.inf).argmax(axis=1)
        explore = rng.random(len(actions)) < epsilon
        if explore.any():
            actions[explore] = random_allowed(masks[explore], rng)

        obs, rewards, _, _, _ = env.step(actions)
        q_taken = net.q_of(features, torch.from_numpy(actions))
        loss = F.smooth_l1_loss(q_taken, torch.from_numpy(rewards.astype(np.float32)))
        sparse_opt.zero_grad()
        dense_opt.zero_grad()
        loss.backward()
        sparse_opt.step()
        dense_opt.step()

        steps += env.num_envs
        hits += float(rewards.sum())
        if time.perf_counter() >= next_log:
            line = f"  {steps:>9,} steps {time.perf_counter() - started:6.0f}s eps {epsilon:.2f}"
            if evaluate is not None:
                line += f" ndcg@10 {evaluate(net)['ndcg@10']:.4f}"
            print(line, flush=True)
            next_log = time.perf_counter() + log_every_s
    seconds = time.perf_counter() - started
    info = {
        "timesteps": steps,
        "train_seconds": round(seconds, 1),
        "cut_by_clock": steps < total,
        "hit_rate": round(hits / max(steps, 1), 4),
    }
    return net, info


# ------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    home = Path(os.environ.get("RLREC_DATA", REPO.parent / "shared" / "data"))
    parser.add_argument("--data", default=str(home / "ml-latest-small-2016"), help="MovieLens folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=30.0, help="wall-clock cap on training")
    parser.add_argument("--timesteps", type=float, default=None, help="replace the yml's n_timesteps")
    parser.add_argument("--hyperparams", default=str(HYPERPARAMS), help="zoo-format yml")
    parser.add_argument("--log-every", type=float, default=120.0, help="seconds between progress lines")
    args = parser.parse_args(argv)

    hp = load_hyperparams(Path(args.hyperparams))
    if args.timesteps is not None:
        hp["n_timesteps"] = args.timesteps
    dataset = load_movielens(args.data)
    split = temporal_split(dataset)
    print(f"data {dataset.name}: {protocol_description(split, 10)}")
    print(f"hyperparameters ({args.hyperparams}): {hp}")

    results: dict[str, dict[str, float]] = {}
    for name in ("popularity", "ease"):
        results[name] = evaluate_baseline(name, split, seed=args.seed)

    env = MovieLensSessionVectorEnv(
        split.train, num_envs=int(hp["n_envs"]), autoreset_mode="same_step", **dict(hp["env_kwargs"])
    )

    def evaluate(net: SparseQNetwork) -> dict[str, float]:
        return evaluate_scores(lambda users: net.scores(env.observations(users)), split, k=10)

    net, info = train_bar_agent(env, hp, args.seed, args.minutes, args.log_every, evaluate)
    results["bar-dqn"] = evaluate(net)
    results["bar-dqn"]["train_seconds"] = info["train_seconds"]

    print(f"\nbar agent: {info['timesteps']:,} env steps in {info['train_seconds']:.0f}s "
          f"(cut by the clock: {info['cut_by_clock']}), training hit rate {info['hit_rate']:.3f}")
    keys = ["ndcg@10", "precision@10", "recall@10", "hit_rate@10", "mrr@10", "coverage@10"]
    print(f"{'model':<12}" + "".join(f"{k:>14}" for k in keys) + f"{'fit s':>9}")
    for name, metrics in results.items():
        row = "".join(f"{metrics[k]:>14.4f}" for k in keys)
        print(f"{name:<12}{row}{metrics['train_seconds']:>9.1f}")
    ratio = results["bar-dqn"]["ndcg@10"] / results["popularity"]["ndcg@10"]
    ease_ratio = results["bar-dqn"]["ndcg@10"] / results["ease"]["ndcg@10"]
    verdict = "PASS" if ratio >= BAR_RATIO else "FAIL"
    print(f"\nNDCG@10 ratio to popularity: {ratio:.3f} (bar {BAR_RATIO}: {verdict})")
    print(f"NDCG@10 ratio to EASE: {ease_ratio:.3f}")
    return 0 if ratio >= BAR_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
