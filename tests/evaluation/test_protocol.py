"""The protocol on learners: observations from the train env, scores from ``score_movies``."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from stable_baselines3 import DQN
from stable_baselines3.common.logger import KVWriter, Logger

import rlrec  # noqa: F401  (registers the env ids)
from rlrec.agents.tabular_q import QLearningAgent
from rlrec.data import load_movielens
from rlrec.data.split import temporal_split
from rlrec.evaluation.callbacks import RankingEvalCallback
from rlrec.evaluation.protocol import evaluate_baseline, evaluate_model, observations_of

TINY = "synthetic:n_users=40,n_movies=120,n_ratings=1500"


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny networks: intra-op threads only add synchronisation (and contend on shared cores)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def split():
    return temporal_split(load_movielens(TINY))


def _popularity_agent(split) -> QLearningAgent:
    """A Q-table whose every row holds the train counts: it must rank exactly like popularity."""
    env = gymnasium.make("rlrec/MovieLens-v0", data=split.train)
    agent = QLearningAgent(env, seed=0)
    agent.q_table[:] = split.train.movie_counts.astype(np.float32)
    return agent


def test_a_learner_scored_through_the_env_matches_the_same_baseline(split):
    expected = evaluate_baseline("popularity", split)
    expected.pop("train_seconds")
    assert evaluate_model(_popularity_agent(split), split) == pytest.approx(expected)


def test_a_model_whose_env_holds_the_full_data_is_refused(split):
    full = load_movielens(TINY)
    env = gymnasium.make("rlrec/MovieLens-v0", data=full)
    with pytest.raises(ValueError, match=r"split\.train"):
        evaluate_model(_popularity_agent(split), split, env=env)


def test_observations_from_every_kind_of_env(split):
    from stable_baselines3.common.vec_env import DummyVecEnv

    users = np.array([3, 0, 7])
    single = gymnasium.make("rlrec/MovieLensSession-v0", data=split.train)
    expected = single.unwrapped.observations(users)
    vec = DummyVecEnv([lambda: gymnasium.make("rlrec/MovieLensSession-v0", data=split.train)])
    np.testing.assert_array_equal(observations_of(single, users), expected)
    np.testing.assert_array_equal(observations_of(vec, users), expected)
    with pytest.raises(ValueError, match="observations"):
        observations_of(gymnasium.make("CartPole-v1"), users)


class _Memory(KVWriter):
    def __init__(self) -> None:
        self.rows: list[tuple[int, dict]] = []

    def write(self, key_values, key_excluded, step=0):
        self.rows.append((step, dict(key_values)))


def _sb3_dqn(split, memory: _Memory) -> DQN:
    env = gymnasium.make("rlrec/MovieLensSession-v0", data=split.train)
    model = DQN("MlpPolicy", env, learning_starts=50, train_freq=4, batch_size=16, seed=0, buffer_size=1000)
    model.set_logger(Logger(folder=None, output_formats=[memory]))
    return model


def test_callback_logs_the_protocol_metrics(split):
    memory = _Memory()
    model = _sb3_dqn(split, memory)
    callback = RankingEvalCallback(split, eval_freq=100, k=5, env_id="rlrec/MovieLensSession-v0")
    model.learn(240, callback=callback)
    # every 100 steps, plus once at the end (240)
    assert [step for step, _ in callback.evaluations] == [100, 200, 240]
    logged = [(step, row) for step, row in memory.rows if "eval/ndcg@5" in row]
    assert [step for step, _ in logged] == [100, 200, 240]
    assert set(logged[-1][1]) >= {
        f"eval/{m}@5" for m in ("ndcg", "precision", "recall", "hit_rate", "mrr", "coverage")
    }
    final = evaluate_model(model, split, env_id="rlrec/MovieLensSession-v0", k=5)
    assert logged[-1][1]["eval/ndcg@5"] == pytest.approx(final["ndcg@5"])
    assert callback.last_result == pytest.approx(final)


def test_on_result_can_stop_training(split):
    model = _sb3_dqn(split, _Memory())
    seen = []

    def stop_at_second(step, metrics):
        seen.append((step, metrics["ndcg@10"]))
        return len(seen) < 2

    model.learn(1000, callback=RankingEvalCallback(split, eval_freq=100, on_result=stop_at_second))
    assert [step for step, _ in seen] == [100, 200]
    assert model.num_timesteps == 200


def test_callback_works_with_our_learners(split, tmp_path):
    from rlrec.plotting import find_runs, read_scalars

    env = gymnasium.make("rlrec/MovieLens-v0", data=split.train)
    agent = QLearningAgent(env, seed=0, tensorboard_log=str(tmp_path))
    callback = RankingEvalCallback(split, eval_freq=60)
    agent.learn(120, callback=callback)
    assert [step for step, _ in callback.evaluations] == [60, 120]
    (run,) = find_runs(tmp_path)
    curve = read_scalars(run, ["eval/ndcg@10"])["eval/ndcg@10"]
    assert curve[:, 0].tolist() == [60, 120]
    assert curve[-1, 1] == pytest.approx(
        callback.last_result["ndcg@10"], rel=1e-6
    )  # TensorBoard stores float32
