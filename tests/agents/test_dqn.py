"""DQNAgent: targets, target syncs, replay, learning, the session recipe's options, save/load, logs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rlrec.agents.dqn import DQNAgent
from rlrec.envs.movielens import MovieLensVectorEnv
from rlrec.nn import CompactReplayBuffer, QNetwork, RowSparseAdam, SparseInputExtractor
from rlrec.utils.schedules import schedule_from as learning_rate_schedule
from tests.agents.tiny_world import OPTIMAL_ACTIONS, BoxEnv, tiny_dataset, tiny_env

FAST: dict[str, Any] = {"learning_starts": 0, "train_freq": 1, "batch_size": 16, "buffer_size": 1000}


def _samples(**arrays: np.ndarray) -> ReplayBufferSamples:
    t = {key: torch.as_tensor(value) for key, value in arrays.items()}
    return ReplayBufferSamples(t["obs"], t["actions"], t["next_obs"], t["dones"], t["rewards"])


# --------------------------------------------------------------------------------- targets
def test_targets_bootstrap_unless_terminated():
    agent = DQNAgent(BoxEnv(), net_arch=[], gamma=0.5, seed=0)
    # Linear target network: Q(s') = W s' + b with W = [[1, 0], [0, 2], [0, 0]], b = 0.
    with torch.no_grad():
        agent.q_net_target.head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]]))
        agent.q_net_target.head.bias.zero_()
    batch = _samples(
        obs=np.zeros((3, 2), dtype=np.float32),
        actions=np.zeros((3, 1), dtype=np.int64),
        next_obs=np.array([[1.0, 3.0]] * 3, dtype=np.float32),  # Q(s') = [1, 6, 0], max 6
        dones=np.array([[0.0], [1.0], [0.0]], dtype=np.float32),  # row 2 was truncated: not terminal
        rewards=np.ones((3, 1), dtype=np.float32),
    )
    np.testing.assert_allclose(agent.td_targets(batch).numpy(), [4.0, 1.0, 4.0])
    agent.config.gamma = 0.0
    np.testing.assert_allclose(agent.td_targets(batch).numpy(), [1.0, 1.0, 1.0])


def test_truncation_is_stored_as_not_terminal():
    agent = DQNAgent(tiny_env(max_episode_steps=2), seed=0, **FAST)
    agent.learn(20)
    assert agent.replay_buffer is not None
    # Every tiny user rated 3 of 12 movies: episodes end by truncation mostly; none is terminal
    # unless a rated movie was recommended (reward > 0 in rating mode).
    size = agent.replay_buffer.size()
    dones = agent.replay_buffer.dones[:size].astype(bool)
    rewards = agent.replay_buffer.rewards[:size]
    assert np.all(rewards[dones] > 0)


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


def test_q_of_equals_the_full_forward_gathered():
    torch.manual_seed(0)
    space = gym.spaces.Box(0.0, 5.0, shape=(30,), dtype=np.float32)
    net = QNetwork(space, 30, [8, 4])
    obs = torch.zeros(5, 30)
    obs[:, :3] = torch.tensor([1.0, 4.5, 3.0])
    actions = torch.tensor([0, 7, 7, 29, 3])
    torch.testing.assert_close(net.q_of(obs, actions), net(obs).gather(1, actions[:, None])[:, 0])
    net.q_of(obs, actions).sum().backward()
    touched = set(torch.nonzero(net.head.weight.grad.abs().sum(dim=1))[:, 0].tolist())
    assert touched <= {0, 7, 29, 3}


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


def test_uses_rlrec_components_and_learns_on_a_box_env():
    agent = DQNAgent(BoxEnv(), seed=0, net_arch=[16], **FAST)
    agent.learn(100)
    assert isinstance(agent.replay_buffer, CompactReplayBuffer) and agent.replay_buffer.size() == 100
    assert isinstance(agent.q_net.features, SparseInputExtractor)
    assert agent._n_updates == 100


def test_vector_env_stores_only_real_transitions():
    env = MovieLensVectorEnv(tiny_dataset(), num_envs=3, reward_mode="rating", max_episode_steps=5)
    agent = DQNAgent(env, seed=0, **FAST)
    resets = 0

    class Count(BaseCallback):
        def _on_step(self) -> bool:
            nonlocal resets
            resets += int((~self.locals["step"].valid).sum())
            return True

    agent.learn(300, callback=Count())
    assert agent.num_timesteps == 300
    assert resets > 0  # NEXT_STEP autoreset steps happened and were dropped
    assert agent.replay_buffer is not None and agent.replay_buffer.size() == 300 - resets
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
    resumed = DQNAgent.load(path, env=tiny_env())
    resumed.learn(10)
    assert resumed._n_updates == agent._n_updates + 10


def test_load_rejects_another_env_shape(tmp_path: Path):
    path = DQNAgent(tiny_env(), seed=0).save(tmp_path / "m.pt")
    with pytest.raises(ValueError, match="saved for"):
        DQNAgent.load(path, env=BoxEnv())


# ---------------------------------------------------------------------------------- logs
def test_event_file_has_sb3_dqn_tags(tmp_path: Path):
    agent = DQNAgent(tiny_env(), tensorboard_log=str(tmp_path), seed=0, **FAST)
    agent.learn(60, log_interval=1)
    events = EventAccumulator(str(tmp_path / "dqn_1"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    expected = {
        "rollout/ep_rew_mean", "rollout/ep_len_mean", "rollout/exploration_rate", "train/loss", "time/fps",
        "time/total_timesteps", "time/episodes", "train/n_updates", "train/learning_rate",
    }  # fmt: skip
    assert expected <= tags
    assert events.Scalars("train/learning_rate")[-1].value == pytest.approx(1e-4)
    assert events.Scalars("time/total_timesteps")[-1].value == 60
    assert events.Scalars("train/n_updates")[-1].value == 60


# ------------------------------------------------------- the session recipe's options
def session_vector_env(num_envs: int = 4) -> Any:
    """The batched session env on a small synthetic dataset, binary observations."""
    from rlrec.envs.session import MovieLensSessionVectorEnv

    return MovieLensSessionVectorEnv(
        "synthetic:n_users=30,n_movies=80,n_ratings=600",
        num_envs=num_envs,
        observation="binary",
        hidden_fraction=0.8,
        max_episode_steps=5,
        autoreset_mode="same_step",
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


def test_dropout_acts_in_the_loss_only():
    agent = DQNAgent(session_vector_env(), seed=0, **{**BAR, "net_arch": [32]})
    obs = session_vector_env().observations(np.arange(20))
    np.testing.assert_array_equal(agent.q_values(obs), agent.q_values(obs))  # acting: no dropout
    agent.q_net.train(True)
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
    agent.learn(3)  # one step of the 3 sessions: the buffer holds exactly those 3 transitions
    assert agent._n_updates == 1
    buffer = agent.replay_buffer
    assert buffer is not None and buffer.buffer_size == 3
    batch = buffer.latest()
    # Independent route: the weights before that step, one Adam step on the dense Huber loss of
    # Q(obs, a) against the rewards (γ = 0: no future term).
    start = DQNAgent(session_vector_env(num_envs=3), seed=3, net_arch=[16], **fresh)
    net = start.q_net
    q = net(batch.observations).gather(1, batch.actions.long())[:, 0]
    torch.nn.functional.smooth_l1_loss(q, batch.rewards[:, 0]).backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), agent.config.max_grad_norm)
    torch.optim.Adam(net.parameters(), lr=1e-2).step()
    for (name, got), want in zip(agent.q_net.named_parameters(), net.parameters()):
        torch.testing.assert_close(got.detach(), want.detach(), rtol=1e-5, atol=1e-7, msg=name)
    agent.learn(27, reset_num_timesteps=False)
    assert agent._n_updates == 10  # one gradient step per batched step, on its fresh batch


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
        lrs.append(agent.optimizer.param_groups[0]["lr"])
        original(*args)

    agent._gradient_step = spy  # type: ignore[method-assign]
    agent.learn(16)  # 4 iterations of 4 steps: progress 4/16 ... 16/16 after each step
    np.testing.assert_allclose(lrs, [1e-3 * (1 - n / 16) for n in (4, 8, 12, 16)], rtol=1e-6)


def test_sparse_adam_moves_only_the_rows_a_batch_touches():
    agent = DQNAgent(session_vector_env(num_envs=3), seed=0, **{**BAR, "learning_rate": 1e-2, "dropout": 0.0})
    assert isinstance(agent.optimizer, RowSparseAdam)
    obs = np.zeros((3, agent.obs_dim), dtype=np.float32)
    obs[0, [1, 5]] = 1.0
    obs[1, [2, 5]] = 1.0
    obs[2, 7] = 1.0
    batch = _samples(
        obs=obs, actions=np.array([[10], [11], [10]]), next_obs=obs, dones=np.zeros((3, 1), np.float32),
        rewards=np.array([[1.0], [0.0], [1.0]], dtype=np.float32),
    )  # fmt: skip
    before: dict[str, torch.Tensor] = {}
    after: dict[str, torch.Tensor] = {}

    def moved_rows(name: str) -> set[int]:
        changed = (after[name].detach() != before[name]).reshape(len(before[name]), -1).any(dim=1)
        return set(torch.nonzero(changed)[:, 0].tolist())

    # 80 movies are under RowSparseAdam's 1,024-row floor: lower it to see the row-wise update.
    agent.optimizer.param_groups[0]["min_rows"] = 1
    before = {name: p.detach().clone() for name, p in agent.q_net.named_parameters()}
    agent._gradient_step(batch)
    after = dict(agent.q_net.named_parameters())
    assert moved_rows("features.weight") <= {1, 2, 5, 7}
    assert moved_rows("head.weight") <= {10, 11}


def test_save_load_round_trip_keeps_the_recipe_options(tmp_path: Path):
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
    saved_state = agent.optimizer.state_dict()["state"]
    for key, value in loaded.optimizer.state_dict()["state"].items():
        torch.testing.assert_close(value["exp_avg"], saved_state[key]["exp_avg"])
    from stable_baselines3.common.utils import LinearSchedule

    other = DQNAgent(session_vector_env(), seed=0, **{**BAR, "learning_rate": LinearSchedule(1e-3, 0.0, 1.0)})
    assert other.hyperparameters()["learning_rate"] == "lin_0.001"
    assert other.lr_schedule(0.25) == pytest.approx(loaded.lr_schedule(0.25)) == pytest.approx(2.5e-4)
    loaded.learn(8, reset_num_timesteps=False)
    assert loaded.num_timesteps == 32


def test_embedding_init_scales_the_first_layer_for_unit_norm_inputs():
    torch.manual_seed(0)
    space = gym.spaces.Box(0.0, 1.0, shape=(2000,), dtype=np.float32)
    linear, embedding = QNetwork(space, 50, [64]), QNetwork(space, 50, [64], init="embedding")
    # nn.Linear's std for dense inputs, 1/sqrt(3 * 2000); embedding: N(0, 1/64), std 1/8.
    assert float(linear.features.weight.detach().std()) == pytest.approx(1 / np.sqrt(6000), rel=0.02)
    assert float(embedding.features.weight.detach().std()) == pytest.approx(1 / 8, rel=0.02)
    assert not embedding.features.bias.any() and not embedding.head.bias.any()


def test_an_env_that_names_its_states_is_replayed_from_state_indices():
    env = tiny_env()
    agent = DQNAgent(env, seed=0, **FAST)
    agent.learn(40)
    buffer = agent.replay_buffer
    assert buffer is not None and buffer.observations_fn is not None
    slots = np.arange(buffer.size())
    states = buffer._states[slots]
    assert (states >= 0).all() and buffer._ring.head == 0  # nothing but indices stored
    np.testing.assert_array_equal(buffer.observations_at(slots), env.unwrapped.observations(states))
    np.testing.assert_array_equal(
        buffer.next_observations_at(slots), env.unwrapped.observations(buffer._next_states[slots])
    )
