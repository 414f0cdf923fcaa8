"""score_movies on every kind of learner, checked against each model's own decisions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sb3_contrib import QRDQN, MaskablePPO
from stable_baselines3 import A2C, DQN, PPO

from rlrec.agents.dqn import DQNAgent
from rlrec.agents.scoring import score_movies
from rlrec.agents.tabular_q import QLearningAgent
from tests.agents.tiny_world import tiny_env

STATES = np.array([0, 1, 2, 3, 2])


def _observations(env) -> np.ndarray:
    return env.unwrapped.observations(STATES)


def test_qlearning_scores_are_the_table_rows_by_state_or_by_observation():
    env = tiny_env()
    agent = QLearningAgent(env, seed=0)
    agent.q_table[:] = np.arange(48, dtype=np.float32).reshape(4, 12)
    expected = agent.q_table[STATES]
    np.testing.assert_array_equal(score_movies(agent, _observations(env), states=STATES), expected)
    scores = score_movies(agent, _observations(env))  # observations -> states through their hashes
    assert scores.dtype == np.float32 and scores.shape == (5, 12)
    np.testing.assert_array_equal(scores, expected)


def test_dqn_agent_scores_are_its_q_values_by_hand():
    env = tiny_env()
    agent = DQNAgent(env, net_arch=[8], seed=0)
    obs = _observations(env)
    net = agent.q_net
    with torch.no_grad():  # the network written out: relu(obs W1 + b1) W2ᵀ + b2
        hidden = torch.relu(torch.from_numpy(obs) @ net.features.weight + net.features.bias)
        expected = (hidden @ net.head.weight.T + net.head.bias).numpy()
    np.testing.assert_allclose(score_movies(agent, obs), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("algo", [DQN, QRDQN])
def test_value_based_sb3_scores_rank_like_their_greedy_policy(algo):
    env = tiny_env()
    model = algo("MlpPolicy", env, learning_starts=10, seed=0, policy_kwargs={"net_arch": [16]})
    model.learn(40)
    obs = _observations(env)
    scores = score_movies(model, obs)
    assert scores.shape == (5, 12) and scores.dtype == np.float32
    np.testing.assert_array_equal(scores.argmax(axis=1), model.predict(obs, deterministic=True)[0])
    assert len(np.unique(scores.round(6))) > 12  # real values, not a constant


@pytest.mark.parametrize("algo", [PPO, A2C, MaskablePPO])
def test_policy_scores_are_the_action_logits(algo):
    env = tiny_env()
    kwargs = {} if algo is A2C else {"batch_size": 8}
    model = algo("MlpPolicy", env, n_steps=8, seed=0, **kwargs)
    obs = _observations(env)
    scores = score_movies(model, obs)
    assert scores.shape == (5, 12) and scores.dtype == np.float32
    # Independent route: the log-probabilities the policy gives to chosen actions.
    actions = torch.tensor([0, 5, 11, 3, 7])
    obs_tensor, _ = model.policy.obs_to_tensor(obs)
    with torch.no_grad():
        _, log_prob, _ = model.policy.evaluate_actions(obs_tensor, actions)
    log_softmax = torch.log_softmax(torch.from_numpy(scores), dim=1)
    torch.testing.assert_close(log_softmax[torch.arange(5), actions], log_prob.float(), rtol=1e-5, atol=1e-5)


def test_unknown_model_is_a_type_error():
    with pytest.raises(TypeError, match="cannot score"):
        score_movies(object(), np.zeros((1, 12), dtype=np.float32))
