"""DQNAgent: targets, target syncs, replay buffers, sparse inputs, learning, save/load, logs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from stable_baselines3.common.callbacks import BaseCallback
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rlrec.agents.base import EnvRunner, StepResult
from rlrec.agents.dqn import (
    CompactReplayBuffer,
    DenseReplayBuffer,
    DQNAgent,
    QNetwork,
    ReplayBatch,
    SparseRows,
    SparseStates,
    learning_rate_schedule,
    sparse_rows_from_dense,
    sqrt_count_scale,
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


# ------------------------------------------------------- the bar recipe's options (session env)
def session_vector_env(num_envs: int = 4) -> Any:
    """The batched session env on a small synthetic dataset, binary observations (non-compact)."""
    from rlrec.envs.session_vector import MovieLensSessionVectorEnv

    return MovieLensSessionVectorEnv(
        "synthetic:n_users=30,n_movies=80,n_ratings=600",
        num_envs=num_envs,
        observation="binary",
        hidden_fraction=0.8,
        episode_length=5,
    )


BAR: dict[str, Any] = {
    "buffer_size": 0,
    "learning_starts": 0,
    "gamma": 0.0,
    "use_masking": True,
    "net_arch": [16],
    "input_normalization": "sqrt_count",
    "dropout": 0.5,
    "optimizer": "sparse_adam",
    "learning_rate": "lin_1e-3",
}


def test_sqrt_count_scale_by_hand():
    obs = np.array([[1, 0, 1, 1], [0, 0, 0, 0], [0, 2, 0, 0]], dtype=np.float32)
    np.testing.assert_allclose(sqrt_count_scale(obs), [1 / np.sqrt(3), 1.0, 1.0], rtol=1e-6)


def test_sparse_rows_of_a_binary_batch_match_the_dense_forward_and_gradients():
    rng = np.random.default_rng(0)
    obs = (rng.random((5, 30)) < 0.15).astype(np.float32)
    obs[2] = 0.0  # an empty row: no non-zeros, only the bias
    scale = sqrt_count_scale(obs)
    dense = torch.from_numpy(obs * scale[:, None])
    actions = torch.tensor([2, 1, 1, 29, 5])
    torch.manual_seed(0)
    net = QNetwork(30, 30, [8, 4])
    assert net.input is not None
    reference = None
    for sparse_grad in (None, False, True):  # None: the dense batch
        net.input.sparse_grad = bool(sparse_grad)
        net.input.weights_changed()
        net.zero_grad(set_to_none=True)
        inputs = dense if sparse_grad is None else sparse_rows_from_dense(obs, torch.device("cpu"), scale)
        out = net.q_of(inputs, actions)
        (out**2).sum().backward()
        if sparse_grad is not None:
            assert net.input.pending is None or not sparse_grad
            if net.input.pending is not None:
                net.input.write_gradient()
        grads = [p.grad.to_dense() for p in net.parameters() if p.grad is not None]
        with torch.no_grad():
            torch.testing.assert_close(net(inputs), net(dense))
        if reference is None:
            reference = (out.detach(), grads)
            continue
        torch.testing.assert_close(out.detach(), reference[0])
        assert len(grads) == len(reference[1])
        for got, want in zip(grads, reference[1]):
            torch.testing.assert_close(got, want)
    # The sparse-gradient path touches only the rows of the batch's non-zero inputs.
    grad = net.input.weight_t.grad
    assert grad is not None and grad.is_sparse
    assert set(grad.coalesce().indices()[0].tolist()) == set(np.flatnonzero(obs.any(axis=0)).tolist())


def test_dropout_acts_in_the_loss_only():
    agent = DQNAgent(session_vector_env(), seed=0, net_arch=[32], dropout=0.5)
    plain = QNetwork(agent.obs_dim, agent.n_actions, [32])
    plain.load_state_dict(agent.q_net.state_dict())  # same weights, no dropout layer
    obs = (np.random.default_rng(1).random((6, agent.obs_dim)) < 0.2).astype(np.float32)
    agent.learn(8)
    plain.load_state_dict(agent.q_net.state_dict())
    with torch.no_grad():
        expected = plain(torch.from_numpy(obs)).numpy()
    np.testing.assert_allclose(agent.q_values(obs), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(agent.q_values(obs), agent.q_values(obs))
    np.testing.assert_array_equal(agent.predict(obs)[0], expected.argmax(axis=1))
    assert not agent.q_net.training and not agent.q_net_target.training
    agent.q_net.train(True)  # what the loss sees: half the hidden units dropped, the rest doubled
    with torch.no_grad():
        trained = agent.q_net.features(torch.from_numpy(obs)).numpy()
    agent.q_net.train(False)
    with torch.no_grad():
        full = agent.q_net.features(torch.from_numpy(obs)).numpy()
    on = full > 0
    dropped = on & (trained == 0)
    assert 0.3 < dropped.sum() / on.sum() < 0.7
    np.testing.assert_allclose(trained[on & ~dropped], 2 * full[on & ~dropped], rtol=1e-5)


def test_no_replay_learns_from_the_fresh_transitions_with_the_reward_as_target():
    env = session_vector_env(num_envs=3)
    fresh: dict[str, Any] = {"buffer_size": 0, "learning_starts": 0, "gamma": 0.0, "learning_rate": 1e-2}
    agent = DQNAgent(env, seed=3, net_arch=[16], **fresh)
    obs = np.zeros((3, agent.obs_dim), dtype=np.float32)
    obs[0, [1, 5, 7]] = 1.0
    obs[1, [2]] = 1.0
    obs[2, [3, 4]] = 1.0
    actions = np.array([10, 11, 12])
    step = StepResult(
        next_obs=np.zeros_like(obs),
        rewards=np.array([1.0, 0.0, 0.0], dtype=np.float32),
        terminated=np.array([False, True, False]),
        truncated=np.zeros(3, dtype=bool),
        valid=np.array([True, False, True]),  # row 1 is a NEXT_STEP reset: not a transition
        next_states=None,
        next_masks=None,
        infos=[{}, {}, {}],
    )
    # Independent route: one Adam step on the dense Huber loss of Q(obs, a) against the rewards
    # of the two real transitions, (1, 0) by hand (γ = 0: no future term).
    net = QNetwork(agent.obs_dim, agent.n_actions, [16])
    net.load_state_dict(agent.q_net.state_dict())
    q = net(torch.from_numpy(obs[[0, 2]]))[[0, 1], [10, 12]]
    torch.nn.functional.smooth_l1_loss(q, torch.tensor([1.0, 0.0])).backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), agent.max_grad_norm)
    torch.optim.Adam(net.parameters(), lr=1e-2).step()

    agent.train_on_fresh(obs, actions, step)
    assert agent._n_updates == 1
    for (name, got), want in zip(agent.q_net.named_parameters(), net.parameters()):
        torch.testing.assert_close(got.detach(), want.detach(), rtol=1e-5, atol=1e-7, msg=name)

    # In learn: no replay buffer, one gradient step per iteration of the 3 sessions, but for the
    # 6th: the sessions of 5 steps all end at the 5th and NEXT_STEP spends the 6th on resets.
    agent.learn(30)
    assert agent.replay_buffer is None and agent._n_updates == 1 + 10 - 1


def test_lin_learning_rate_decays_linearly_to_zero_like_the_zoo():
    schedule = learning_rate_schedule("lin_1e-3")
    assert schedule(1.0) == pytest.approx(1e-3) and schedule(0.5) == pytest.approx(5e-4)
    assert schedule(0.0) == 0.0 and learning_rate_schedule(3e-4)(0.1) == 3e-4
    with pytest.raises(ValueError, match="learning_rate"):
        learning_rate_schedule("exp_1e-3")
    agent = DQNAgent(session_vector_env(num_envs=4), seed=0, **BAR)
    lrs: list[float] = []
    original = agent._gradient_step

    def spy(*args: Any) -> None:
        lrs.append(agent.sparse_optimizer.param_groups[0]["lr"])  # type: ignore[union-attr]
        assert agent.optimizer.param_groups[0]["lr"] == lrs[-1]
        original(*args)

    agent._gradient_step = spy  # type: ignore[method-assign, assignment]
    agent.learn(16)  # 4 iterations of 4 steps: progress 4/16 ... 16/16 after each step
    np.testing.assert_allclose(lrs, [1e-3 * (1 - n / 16) for n in (4, 8, 12, 16)], rtol=1e-6)


def test_sparse_adam_moves_only_the_rows_a_batch_touches():
    agent = DQNAgent(session_vector_env(num_envs=3), seed=0, **{**BAR, "learning_rate": 1e-2})
    obs = np.zeros((3, agent.obs_dim), dtype=np.float32)
    obs[0, [1, 5]] = 1.0
    obs[1, [2, 5]] = 1.0
    obs[2, 7] = 1.0
    actions = np.array([10, 11, 10])
    step = StepResult(
        next_obs=obs,
        rewards=np.array([1.0, 0.0, 1.0], dtype=np.float32),
        terminated=np.zeros(3, dtype=bool),
        truncated=np.zeros(3, dtype=bool),
        valid=np.ones(3, dtype=bool),
        next_states=None,
        next_masks=None,
        infos=[{}, {}, {}],
    )
    before = {name: p.detach().clone() for name, p in agent.q_net.named_parameters()}
    agent.train_on_fresh(obs, actions, step)
    after = dict(agent.q_net.named_parameters())

    def moved_rows(name: str) -> set[int]:
        changed = (after[name].detach() != before[name]).reshape(len(before[name]), -1).any(dim=1)
        return set(torch.nonzero(changed)[:, 0].tolist())

    assert moved_rows("input.weight_t") == {1, 2, 5, 7}
    assert moved_rows("head.weight") == moved_rows("head.bias") == {10, 11}
    assert moved_rows("input.bias")  # dense Adam (the units dropped or dead this step stay)


def test_save_load_round_trip_keeps_the_bar_options(tmp_path: Path):
    agent = DQNAgent(session_vector_env(), seed=0, **BAR)
    agent.learn(24)
    path = agent.save(tmp_path / "bar")
    torch.load(path, weights_only=True)
    loaded = DQNAgent.load(path, env=session_vector_env())
    assert loaded.hyperparameters() == agent.hyperparameters()
    assert agent.hyperparameters()["learning_rate"] == "lin_1e-3"
    assert (loaded.buffer_size, loaded.dropout, loaded.input_normalization) == (0, 0.5, "sqrt_count")
    obs = session_vector_env().observations(np.arange(10))
    np.testing.assert_array_equal(loaded.q_values(obs), agent.q_values(obs))
    assert loaded.sparse_optimizer is not None and agent.sparse_optimizer is not None
    saved_state = agent.sparse_optimizer.state_dict()["state"]
    for key, value in loaded.sparse_optimizer.state_dict()["state"].items():
        torch.testing.assert_close(value["exp_avg"], saved_state[key]["exp_avg"])
    # The factory's LinearSchedule (what `rlrec train` passes for "lin_1e-3") saves the same way.
    from stable_baselines3.common.utils import LinearSchedule

    other = DQNAgent(session_vector_env(), seed=0, **{**BAR, "learning_rate": LinearSchedule(1e-3, 0.0, 1.0)})
    assert other.hyperparameters()["learning_rate"] == "lin_0.001"
    assert other.lr_schedule(0.25) == pytest.approx(loaded.lr_schedule(0.25)) == pytest.approx(2.5e-4)
    loaded.learn(8, reset_num_timesteps=False)  # training goes on from the loaded state
    assert loaded.num_timesteps == 32


def test_embedding_init_scales_the_first_layer_for_unit_norm_inputs():
    torch.manual_seed(0)
    linear, embedding = QNetwork(2000, 50, [64]), QNetwork(2000, 50, [64], init="embedding")
    assert linear.input is not None and embedding.input is not None
    # nn.Linear: uniform in ±1/sqrt(2000), std 1/sqrt(3 * 2000); embedding: N(0, 1/64), std 1/8.
    assert float(linear.input.weight_t.detach().std()) == pytest.approx(1 / np.sqrt(6000), rel=0.02)
    assert float(embedding.input.weight_t.detach().std()) == pytest.approx(1 / 8, rel=0.02)
    assert not embedding.input.bias.any() and not embedding.head.bias.any()
    assert linear.head.weight.abs().max() <= 1 / 8 and embedding.head.weight.abs().max() <= 1 / 8
