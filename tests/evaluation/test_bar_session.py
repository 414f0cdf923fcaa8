"""``rlrec benchmark --algos dqn-session``: the bar recipe (dqn.yml's session section) end to end."""

from __future__ import annotations

import json

import numpy as np

from rlrec.agents.dqn import DQNAgent
from rlrec.agents.recipes import load_hyperparams
from rlrec.cli import main
from rlrec.data import load_movielens
from rlrec.data.split import temporal_split
from rlrec.envs.session import MovieLensSessionVectorEnv
from rlrec.evaluation.metrics import evaluate_scores
from rlrec.experiments.benchmark import BENCHMARK_SETUPS

SMALL = "synthetic:n_users=60,n_movies=200,n_ratings=3000"


def test_dqn_session_setup_is_the_yml_recipe():
    setup = BENCHMARK_SETUPS["dqn-session"]
    assert (setup.algo, setup.env_id, setup.hyperparams) == ("dqn", "rlrec/MovieLensSession-v0", {})
    hp = load_hyperparams("dqn", "rlrec/MovieLensSession-v0")
    assert hp["buffer_size"] == 0 and hp["gamma"] == 0.0 and hp["n_envs"] == 64
    assert hp["env_kwargs"]["observation"] == "binary"


def test_benchmark_dqn_session_end_to_end(tmp_path):
    out = tmp_path / "out"
    argv = ["benchmark", "--data", SMALL, "--timesteps", "640", "--algos", "dqn-session", "--out", str(out)]
    assert main(argv) == 0
    report = json.loads((out / "benchmark.json").read_text())
    row = report["results"]["dqn-session"]
    assert row["timesteps"] == 640  # 10 iterations of the recipe's 64 sessions
    assert report["learners"]["dqn-session"]["algo"] == "dqn"
    model_path = out / "models" / "dqn-session" / "dqn" / "model.pt"
    run = json.loads((model_path.parent / "run.json").read_text())
    assert run["env_id"] == "rlrec/MovieLensSession-v0" and run["env_kwargs"]["observation"] == "binary"

    # The test row is the best validation evaluation's model (saved beside the final one).
    evaluations = json.loads((model_path.parent / "evaluations.json").read_text())
    best = max(evaluations["evaluations"], key=lambda row: row["ndcg@10"])
    assert row["best_timesteps"] == best["timesteps"] == evaluations["best"]["timesteps"]
    assert row["validation_ndcg@10"] == best["ndcg@10"]
    # Independent route, bench_bar.py's: Q-values of each user's WHOLE train history in the
    # session env's binary encoding, ranked by the metrics module.
    agent = DQNAgent.load(model_path.parent / "best_model.pt")
    assert agent.hyperparameters()["optimizer"] == "sparse_adam" and agent.num_timesteps == best["timesteps"]
    split = temporal_split(load_movielens(SMALL))
    env = MovieLensSessionVectorEnv(split.train, observation="binary")
    observations = env.observations(np.arange(3))
    assert set(np.unique(observations)) <= {0.0, 1.0}
    metrics = evaluate_scores(lambda users: agent.q_values(env.observations(users)), split, k=10)
    for key in ("ndcg@10", "precision@10", "recall@10", "mrr@10"):
        assert row[key] == metrics[key], key
