"""The evaluation issue's bar: an RL agent trained from scratch against popularity and EASE.

Trains ``rlrec.agents.DQNAgent`` with the ``rlrec/MovieLensSession-v0`` section of
``rlrec/hyperparams/dqn.yml`` (the bar recipe: a γ=0 DQN, i.e. a contextual bandit learned by
Q-regression on its own rewards, no replay, SparseAdam) by interacting with
:class:`rlrec.envs.session.MovieLensSessionVectorEnv` built on the TRAIN part of the
per-user temporal split, then ranks every user's unseen movies under the protocol
(``rlrec.evaluation``) and prints NDCG@10 and friends for the agent, popularity and EASE, all
from this run, with the agent's ratio to popularity. The bar: NDCG@10 >= 1.2 x popularity.

    python benchmarks/bench_bar.py --data ../shared/data/ml-latest-small-2016 --seed 0 --minutes 30

Training stops after the yml's ``n_timesteps`` env steps or ``--minutes``, whichever comes
first (the exploration and learning-rate schedules follow env steps, so a run that reaches
``n_timesteps`` gives the same numbers for the same seed on the CPU; one cut by the clock says
so). The same agent is what ``rlrec train --algo dqn --env rlrec/MovieLensSession-v0`` and
``rlrec benchmark --algos dqn-session`` train. What the agent learns from is only the reward of
the movies it recommended in the env: the dataset's ratings reach it through the env alone.

Measured (the command above, seed 0, one thread on the shared 2-core machine): 1,500,032 env
steps in 540 s; NDCG@10 0.0886 against popularity 0.0724 (ratio 1.223: PASS) and EASE 0.1077
(0.823). The curve peaks near 0.092 around 0.7-1.0M steps and then eases off.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rlrec.agents.dqn import DQNAgent  # noqa: E402
from rlrec.agents.factory import make_model  # noqa: E402
from rlrec.agents.recipes import load_hyperparams, split_hyperparams  # noqa: E402
from rlrec.data import load_movielens  # noqa: E402
from rlrec.data.split import Split, temporal_split  # noqa: E402
from rlrec.evaluation.metrics import evaluate_scores  # noqa: E402
from rlrec.evaluation.protocol import evaluate_baseline, protocol_description  # noqa: E402
from rlrec.experiments.training import make_training_env  # noqa: E402
from rlrec.utils.seeding import set_torch_threads  # noqa: E402

ENV_ID = "rlrec/MovieLensSession-v0"
#: The issue's bar: at least 20% above popularity.
BAR_RATIO = 1.2


class ClockAndLog(BaseCallback):
    """Stop training after ``minutes``; every ``log_every_s`` seconds print the step count and
    ``evaluate(model)``'s NDCG@10 (when given)."""

    def __init__(self, minutes: float, log_every_s: float, evaluate: Any = None) -> None:
        super().__init__()
        self.deadline = time.perf_counter() + minutes * 60
        self.log_every_s = log_every_s
        self.evaluate = evaluate
        self.started = time.perf_counter()
        self.next_log = self.started + log_every_s
        self.cut_by_clock = False

    def _on_step(self) -> bool:
        now = time.perf_counter()
        if now >= self.next_log:
            line = f"  {self.num_timesteps:>9,} steps {now - self.started:6.0f}s"
            epsilon = float(getattr(self.model, "exploration_rate", float("nan")))
            line += f" eps {epsilon:.2f}"
            if self.evaluate is not None:
                line += f" ndcg@10 {self.evaluate(self.model)['ndcg@10']:.4f}"
            print(line, flush=True)
            self.next_log = time.perf_counter() + self.log_every_s
        self.cut_by_clock = now >= self.deadline
        return not self.cut_by_clock


def evaluate_agent(agent: DQNAgent, env: Any, split: Split) -> dict[str, float]:
    """The protocol's metrics of ``agent``: its Q-values for each user's WHOLE train history, in
    the session env's encoding (what ``rlrec benchmark`` computes through ``score_movies``)."""
    return evaluate_scores(lambda users: agent.q_values(env.observations(users)), split, k=10)


def train_bar_agent(
    split: Split, hp: dict[str, Any], seed: int, minutes: float, log_every_s: float = 60.0
) -> tuple[DQNAgent, dict[str, Any]]:
    """Train ``DQNAgent`` on ``split.train`` with the zoo-format hyperparameters ``hp``."""
    set_torch_threads(1)
    run = split_hyperparams("dqn", hp)
    env = make_training_env("dqn", split.train, ENV_ID, run.env_kwargs, run.n_envs, seed)
    agent = make_model("dqn", env, run.model_kwargs, seed=seed)
    clock = ClockAndLog(minutes, log_every_s, lambda model: evaluate_agent(model, env, split))
    started = time.perf_counter()
    agent.learn(int(run.n_timesteps or 0), callback=clock)
    seconds = time.perf_counter() - started
    rewards = [r for r, _ in agent.ep_info_buffer]
    info = {
        "timesteps": agent.num_timesteps,
        "train_seconds": round(seconds, 1),
        "cut_by_clock": clock.cut_by_clock,
        "ep_rew_mean": float(np.mean(rewards)) if rewards else 0.0,
        "env": env,
    }
    return agent, info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    home = Path(os.environ.get("RLREC_DATA", REPO.parent / "shared" / "data"))
    parser.add_argument("--data", default=str(home / "ml-latest-small-2016"), help="MovieLens folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=30.0, help="wall-clock cap on training")
    parser.add_argument("--timesteps", type=float, default=None, help="replace the yml's n_timesteps")
    parser.add_argument("--log-every", type=float, default=120.0, help="seconds between progress lines")
    args = parser.parse_args(argv)

    overrides = {} if args.timesteps is None else {"n_timesteps": args.timesteps}
    hp = load_hyperparams("dqn", ENV_ID, overrides)
    dataset = load_movielens(args.data)
    split = temporal_split(dataset)
    print(f"data {dataset.name}: {protocol_description(split, 10)}")
    print(f"hyperparameters (rlrec/hyperparams/dqn.yml, {ENV_ID}): {hp}")

    results: dict[str, dict[str, float]] = {}
    for name in ("popularity", "ease"):
        results[name] = evaluate_baseline(name, split, seed=args.seed)

    agent, info = train_bar_agent(split, hp, args.seed, args.minutes, args.log_every)
    results["bar-dqn"] = evaluate_agent(agent, info["env"], split)
    results["bar-dqn"]["train_seconds"] = info["train_seconds"]

    print(
        f"\nbar agent (DQNAgent): {info['timesteps']:,} env steps in {info['train_seconds']:.0f}s "
        f"(cut by the clock: {info['cut_by_clock']}), last episodes' mean return {info['ep_rew_mean']:.2f}"
    )
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
