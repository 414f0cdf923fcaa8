"""DQNAgent: targets, target syncs, replay buffers, sparse inputs, learning, save/load, logs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from stable_baselines3.common.callbacks import BaseCallback
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rlrec.agents.base import EnvRunner
from rlrec.agents.dqn import (
    CompactReplayBuffer,
    DenseReplayBuffer,
    DQNAgent,
    QNetwork,
    ReplayBatch,
    SparseRows,
    SparseStates,
)
from rlrec.envs.vector import MovieLensVectorEnv
from tests.agents.tiny_world import OPTIMAL_ACTIONS, BoxEnv, raw_tiny_env, tiny_dataset, tiny_env

FAST: dict[str, Any] = {"learning_starts": 0, "train_freq": 1, "batch_size": 16, "buffer_size": 1000}


# --------------------------------------------------------------------------------- targets
def test_targets_bootstrap_on_truncation_but_not_on_termination():
    agent = DQNAgent(BoxEnv(), net_arch=[], gamma=0.5, seed=0)
    # Linear target network: Q(s') = W s' + b with W = [[1, 0], [0, 2], [0, 0]], b = 0.
    with torch.no_grad():
        agent.q_net_target.head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]]))
        agent.q_net_target.head.bias.zero_()
    next_obs = np.array([[1.0, 3.0]] * 3, dtype=np.float32)  # Q(s') = [1, 6, 0], max 6
    batch = ReplayBatch(
        observations=np.zeros((3, 2), dtype=np.float32),
        actions=np.zeros(3, dtype=np.int32),
        rewards=np.ones(3, dtype=np.float32),
        next_observations=next_obs,
        terminated=np.array([False, True, False]),
        truncated=np.array([False, False, True]),
        states=None,
        next_states=None,
        next_masks=None,
    )
    # ordinary: 1 + 0.5 * 6; terminal: 1; truncated: bootstraps like ordinary
    np.testing.assert_allclose(agent.td_targets(batch).numpy(), [4.0, 1.0, 4.0])
    batch.next_masks = np.array([[True, False, True]] * 3)  # action 1 forbidden: max is 1
    np.testing.assert_allclose(agent.td_targets(batch).numpy(), [1.5, 1.0, 1.5])


def test_target_network_changes_only_every_target_update_interval():
    agent = DQNAgent(tiny_env(), target_update_interval=10, seed=0, **FAST)
    changed_at: list[int] = []
    previous = [p.detach().clone() for p in agent.q_net_target.parameters()]

    class Watch(BaseCallback):
        def _on_step(self) -> bool:
            current = [p.detach().clone() for p in agent.q_net_target.parameters()]
            if any(not torch.equal(a, b) for a, b in zip(previous, current)):
                changed_at.append(self.num_timesteps)
            previous[:] = current
            return True

    agent.learn(35, callback=Watch())
    assert changed_at == [10, 20, 30]
    for online, target in zip(agent.q_net.parameters(), agent.q_net_target.parameters()):
        assert not torch.equal(online, target)  # trained for 5 steps since the last sync


def test_soft_target_update_moves_by_tau():
    agent = DQNAgent(tiny_env(), tau=0.25, target_update_interval=1, seed=0, **FAST)
    before = agent.q_net_target.head.bias.detach().clone()
    with torch.no_grad():
        agent.q_net.head.bias.add_(4.0)
    agent._update_target()
    expected = 0.75 * before + 0.25 * agent.q_net.head.bias.detach()
    torch.testing.assert_close(agent.q_net_target.head.bias.detach(), expected)


def test_cached_target_values_match_the_target_network():
    env = tiny_env()
    agent = DQNAgent(env, seed=0, **FAST)
    agent.learn(40)
    assert agent._uses_target_cache()
    states = np.array([3, 0, 3, 1])
    cached = agent._cached_target_values(states)
    with torch.no_grad():
        obs = torch.from_numpy(env.unwrapped.observations(states))
        direct = agent.q_net_target(obs).max(dim=1).values.numpy()
    np.testing.assert_allclose(cached, direct, rtol=1e-6)


# ----------------------------------------------------------------------------- buffers
def test_compact_buffer_wraps_around():
    observations = raw_tiny_env().observations
    buffer = CompactReplayBuffer(5, 12, observations, (12,))
    for i in range(7):
        buffer.add(
            np.array([i % 4]),
            np.array([i]),
            np.array([float(i)]),
            np.array([(i + 1) % 4]),
            np.array([False]),
            np.array([False]),
        )
    assert buffer.full and buffer.pos == 2 and len(buffer) == 5
    np.testing.assert_array_equal(buffer.actions, [5, 6, 2, 3, 4])
    np.testing.assert_array_equal(buffer.states, [1, 2, 2, 3, 0])
    # A batch add crossing the end lands on slots 2, 3, 4, 0.
    buffer.add(
        np.zeros(4),
        np.array([10, 11, 12, 13]),
        np.zeros(4),
        np.zeros(4),
        np.zeros(4, bool),
        np.zeros(4, bool),
    )
    np.testing.assert_array_equal(buffer.actions, [13, 6, 10, 11, 12])
    assert buffer.pos == 1
    assert set(buffer.sample_indices(200, np.random.default_rng(0))) == {0, 1, 2, 3, 4}


def test_compact_buffer_holds_a_million_movielens_transitions_in_64_mb():
    buffer = CompactReplayBuffer(1_000_000, 10_329, raw_tiny_env().observations, (10_329,))
    assert buffer.nbytes <= 64 * 2**20
    assert buffer.nbytes == 18 * 1_000_000


def test_compact_and_dense_buffers_give_identical_batches():
    env = raw_tiny_env(mask_recommended=True)
    runner = EnvRunner(env, use_masking=True)
    runner.reset(seed=0)
    assert runner.compact
    compact = CompactReplayBuffer(64, 12, env.observations, (12,), store_masks=True)
    dense = DenseReplayBuffer(64, 12, (12,), store_masks=True)
    rng = np.random.default_rng(0)
    for _ in range(100):  # wraps around too
        obs, states = runner.obs, runner.states
        actions = rng.integers(0, 12, size=1)
        step = runner.step(actions)
        assert states is not None and step.next_states is not None
        compact.add(
            states, actions, step.rewards, step.next_states, step.terminated, step.truncated, step.next_masks
        )
        dense.add(obs, actions, step.rewards, step.next_obs, step.terminated, step.truncated, step.next_masks)
    indices = compact.sample_indices(32, rng)
    a, b = compact.get(indices), dense.get(indices)
    for field in (
        "observations",
        "actions",
        "rewards",
        "next_observations",
        "terminated",
        "truncated",
        "next_masks",
    ):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
    assert a.next_masks is not None
    assert a.terminated.any() and not a.next_masks.all()  # the batch exercises both


# ------------------------------------------------------------------------ sparse inputs
def test_sparse_input_layer_matches_dense_forward_and_gradients():
    torch.manual_seed(0)
    data = tiny_dataset()
    env = raw_tiny_env()
    states = np.array([0, 3, 3, 1, 2])
    dense_obs = torch.from_numpy(env.observations(states))
    sparse = SparseStates(env.observations, data.n_users, 12, torch.device("cpu"), max_density=1.0).batch(
        states
    )
    assert isinstance(sparse, SparseRows) and len(sparse) == 5
    net = QNetwork(12, 12, [8, 4])
    assert net.input is not None
    actions = torch.tensor([2, 1, 1, 8, 5])
    grads = []
    for inputs in (dense_obs, sparse):
        for p in net.parameters():
            p.grad = torch.zeros_like(p)
        net.input.weights_changed()
        out = net.q_of(inputs, actions)
        (out**2).sum().backward()
        grads.append([p.grad.clone() for p in net.parameters() if p.grad is not None])
        torch.testing.assert_close(net(inputs), net(dense_obs))
        torch.testing.assert_close(out, net(dense_obs).gather(1, actions[:, None])[:, 0])
    for dense_grad, sparse_grad in zip(*grads):
        torch.testing.assert_close(dense_grad, sparse_grad)


def test_sparse_and_dense_training_agree():
    weights = []
    for sparse in (True, False):
        agent = DQNAgent(tiny_env(), sparse_inputs=sparse, seed=5, **FAST)
        agent._sparse_max_density = 1.0  # the tiny profiles are 25% ratings: force the sparse path
        agent.learn(60)
        assert (agent._sparse is not None) == sparse
        weights.append(agent.q_net.state_dict())
    for name in weights[0]:
        torch.testing.assert_close(weights[0][name], weights[1][name], rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- learning
def test_learns_the_known_optimal_policy_on_tiny_movielens():
    env = tiny_env(user_order="random")  # sequential order would restart every episode at user 1
    agent = DQNAgent(
        env,
        gamma=0.0,
        learning_rate=5e-3,
        exploration_fraction=0.8,
        exploration_final_eps=0.2,
        seed=0,
        **FAST,
    )
    agent.learn(1200)
    observations = env.unwrapped.observations(np.arange(4))
    np.testing.assert_array_equal(agent.predict(observations)[0], OPTIMAL_ACTIONS)
    q = agent.q_values(observations)
    # γ = 0: Q(s, a*) estimates the best rating, 5, 4.5, 4, 5.
    np.testing.assert_allclose(q[np.arange(4), OPTIMAL_ACTIONS], [5.0, 4.5, 4.0, 5.0], atol=0.5)


def test_same_seed_same_weights_and_other_seed_differs():
    states = []
    for seed in (4, 4, 5):
        agent = DQNAgent(tiny_env(), seed=seed, **FAST)
        agent.learn(60)
        states.append(agent.q_net.state_dict())
    for name in states[0]:
        assert torch.equal(states[0][name], states[1][name]), name
    assert any(not torch.equal(states[0][n], states[2][n]) for n in states[0])


def test_dense_fallback_learns_on_a_box_env():
    agent = DQNAgent(BoxEnv(), seed=0, net_arch=[16], **FAST)
    agent.learn(100)
    assert isinstance(agent.replay_buffer, DenseReplayBuffer)
    assert len(agent.replay_buffer) == 100
    assert agent._n_updates == 100
    with pytest.raises(ValueError, match="compact"):
        DQNAgent(BoxEnv(), replay="compact", **FAST).learn(5)


def test_vector_env_stores_only_real_transitions():
    env = MovieLensVectorEnv(tiny_dataset(), num_envs=3, reward_mode="rating", max_episode_steps=5)
    agent = DQNAgent(env, seed=0, **FAST)
    resets = 0
    real = 0

    class Count(BaseCallback):
        def _on_step(self) -> bool:
            nonlocal resets, real
            valid = self.locals["step"].valid
            resets += int((~valid).sum())
            real += int(valid.sum())
            return True

    agent.learn(300, callback=Count())
    assert agent.num_timesteps == 300
    assert resets > 0  # NEXT_STEP autoreset steps happened and were dropped
    assert agent.replay_buffer is not None
    assert len(agent.replay_buffer) == real == 300 - resets
    assert agent.ep_info_buffer and all(length <= 5 for _, length in agent.ep_info_buffer)


def test_masked_acting_never_picks_a_forbidden_action():
    agent = DQNAgent(
        tiny_env(mask_recommended=True), use_masking=True, seed=0, exploration_final_eps=0.3, **FAST
    )
    picks: list[bool] = []

    class Record(BaseCallback):
        def _on_step(self) -> bool:
            picks.append(bool(self.locals["masks"][0][self.locals["actions"][0]]))
            return True

    agent.learn(120, callback=Record())
    assert len(picks) == 120 and all(picks)
    assert agent.replay_buffer is not None and agent.replay_buffer.next_masks is not None


# --------------------------------------------------------------------------- save / load
def test_save_load_round_trip_gives_identical_predictions(tmp_path: Path):
    env = tiny_env()
    agent = DQNAgent(env, seed=0, net_arch=[32], **FAST)
    agent.learn(50)
    path = agent.save(tmp_path / "dqn")
    assert path == tmp_path / "dqn.pt" and (tmp_path / "dqn.json").is_file()
    torch.load(path, weights_only=True)  # loads without pickle
    observations = env.unwrapped.observations(np.arange(4))
    for loaded in (DQNAgent.load(path, env=tiny_env(), device="cpu"), DQNAgent.load(path)):
        np.testing.assert_array_equal(loaded.q_values(observations), agent.q_values(observations))
        np.testing.assert_array_equal(loaded.predict(observations)[0], agent.predict(observations)[0])
        assert loaded.net_arch == [32] and loaded.num_timesteps == 50
    # Training goes on from the loaded weights and optimiser state.
    resumed = DQNAgent.load(path, env=tiny_env())
    resumed.learn(10)
    assert resumed._n_updates == agent._n_updates + 10


def test_load_rejects_another_env_shape(tmp_path: Path):
    path = DQNAgent(tiny_env(), seed=0).save(tmp_path / "m.pt")
    with pytest.raises(ValueError, match="saved for observations"):
        DQNAgent.load(path, env=BoxEnv())


# ---------------------------------------------------------------------------------- logs
def test_event_file_has_sb3_dqn_tags(tmp_path: Path):
    agent = DQNAgent(tiny_env(), tensorboard_log=str(tmp_path), seed=0, **FAST)
    agent.learn(60, log_interval=1)
    events = EventAccumulator(str(tmp_path / "dqn_1"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    expected = {
        "rollout/ep_rew_mean",
        "rollout/ep_len_mean",
        "rollout/exploration_rate",
        "train/loss",
        "time/fps",
        "time/total_timesteps",
        "time/episodes",
        "train/n_updates",
        "train/learning_rate",
    }
    assert expected <= tags
    assert events.Scalars("train/learning_rate")[-1].value == pytest.approx(1e-4)
    assert events.Scalars("time/total_timesteps")[-1].value == 60
    assert events.Scalars("train/n_updates")[-1].value == 60
