"""Our DQN and SlateQ over a torch-backend env: the tensor path (``TensorEnvRunner``, tensor
acting, ``FreshBatch`` / ``TensorReplayBuffer``) against the host path (``EnvRunner``, numpy), on
the CPU, and nothing copied to the host on the way."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import pytest
import torch

from rlrec.agents.base import EnvRunner, TensorEnvRunner, make_runner
from rlrec.agents.dqn import DQNAgent
from rlrec.agents.slateq import SlateQAgent
from rlrec.nn import TensorReplayBuffer, tensor_buffers

SYNTH = "synthetic:n_users=60,n_movies=90,n_ratings=1500,seed=4"
SESSION = dict(hidden_fraction=0.8, observation="binary", reward_mode="binary", show_misses=True)
SLATE = dict(slate_size=4, feedback="logged", hiding="random", hidden_fraction=0.8)


def _env(kind: str, n: int = 6, **kwargs: Any) -> Any:
    env_id, options = {
        "session": ("rlrec/MovieLensSession-v0", SESSION),
        "slate": ("rlrec/MovieLensSlate-v0", SLATE),
    }[kind]
    return gymnasium.make_vec(env_id, num_envs=n, data=SYNTH, backend="torch", **{**options, **kwargs})


def _train(cls: type, kind: str, host: bool, steps: int = 600, **hyperparams: Any) -> tuple[Any, dict]:
    agent = cls(_env(kind), seed=5, **hyperparams)
    if host:  # the numpy path: every step's tensors cross to the host
        agent._runner = EnvRunner(agent.env, use_masking=agent.config.use_masking)
    agent.learn(steps)
    return agent, {key: value.clone() for key, value in agent.q_net.state_dict().items()}


GREEDY = dict(exploration_initial_eps=0.0, exploration_final_eps=0.0)


@pytest.mark.parametrize(
    ("cls", "kind", "hyperparams"),
    [
        (DQNAgent, "session", dict(buffer_size=0, learning_starts=0, gamma=0.0, use_masking=True, **GREEDY)),
        (DQNAgent, "session", dict(buffer_size=0, learning_starts=0, gamma=0.5, use_masking=False, **GREEDY)),
        (SlateQAgent, "slate", dict(**GREEDY)),
        (SlateQAgent, "slate", dict(gamma=0.9, **GREEDY)),
    ],
)
def test_greedy_learning_is_the_same_on_tensors_and_on_the_host(
    cls: type, kind: str, hyperparams: dict
) -> None:
    # Greedy acting draws nothing: both paths see the same sessions (the env's own generator),
    # take the same actions and learn the same batches, so the weights agree to the bit.
    tensor_agent, tensor_weights = _train(cls, kind, host=False, **hyperparams)
    host_agent, host_weights = _train(cls, kind, host=True, **hyperparams)
    assert isinstance(tensor_agent._runner, TensorEnvRunner)
    assert type(host_agent._runner) is EnvRunner
    assert tensor_agent._n_updates == host_agent._n_updates > 0
    for key, value in host_weights.items():
        assert torch.equal(tensor_weights[key], value), key
    assert list(tensor_agent.ep_info_buffer) == list(host_agent.ep_info_buffer)
    assert len(tensor_agent.ep_info_buffer) > 0


@pytest.mark.parametrize(("cls", "kind"), [(DQNAgent, "session"), (SlateQAgent, "slate")])
def test_the_tensor_path_copies_nothing_to_the_host(
    monkeypatch: pytest.MonkeyPatch, cls: type, kind: str
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a tensor crossed to the host")

    monkeypatch.setattr("rlrec.agents.base.to_host", refuse)
    monkeypatch.setattr(torch.Tensor, "numpy", refuse)
    extra = (
        dict(buffer_size=200, learning_starts=30, batch_size=8, use_masking=True) if cls is DQNAgent else {}
    )
    agent = cls(_env(kind), seed=1, **extra)
    agent.learn(300)
    assert agent.num_timesteps >= 300 and agent._n_updates > 0


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
@pytest.mark.parametrize("kind", ["session", "slate"])
def test_tensor_runner_reports_what_the_host_runner_reports(kind: str, mode: str) -> None:
    envs = [_env(kind, n=5, autoreset_mode=mode, max_episode_steps=4) for _ in range(2)]
    tensor, host = TensorEnvRunner(envs[0], use_masking=True), EnvRunner(envs[1], use_masking=True)
    np.testing.assert_array_equal(tensor.reset(seed=9).numpy(), host.reset(seed=9))
    rng = np.random.default_rng(0)
    shape = (5, *(envs[0].single_action_space.shape or ()))
    n_movies = envs[0].unwrapped.world.n_movies
    finished = 0
    for _ in range(25):
        actions = rng.integers(0, n_movies, size=shape)
        t, h = tensor.step(torch.as_tensor(actions)), host.step(actions)
        np.testing.assert_array_equal(t.next_obs.numpy(), h.next_obs)
        np.testing.assert_array_equal(tensor.obs.numpy(), host.obs)
        for name in ("rewards", "terminated", "truncated", "valid", "next_masks"):
            np.testing.assert_array_equal(getattr(t, name).numpy(), getattr(h, name), name)
        if kind == "slate":
            np.testing.assert_array_equal(t.info_array("slot_rewards").numpy(), h.info_array("slot_rewards"))
        assert t.episodes == h.episodes
        finished += len(h.episodes)
    assert finished > 5  # episodes ended (truncated at 4 steps) and restarted along the way


def test_make_runner_gives_tensors_only_to_a_learner_that_asks_and_a_torch_env() -> None:
    env = _env("session")
    assert isinstance(make_runner(env, tensors=True), TensorEnvRunner)
    assert type(make_runner(env, tensors=False)) is EnvRunner
    numpy_env = gymnasium.make_vec("rlrec/MovieLensSession-v0", num_envs=2, data=SYNTH)
    assert type(make_runner(numpy_env, tensors=True)) is EnvRunner


def _rows(start: int, n: int) -> dict[str, torch.Tensor]:
    values = torch.arange(start, start + n, dtype=torch.float32)
    return dict(
        obs=values[:, None].repeat(1, 3),
        next_obs=-values[:, None].repeat(1, 3),
        actions=values.long(),
        rewards=values / 10,
        dones=(values.long() % 2).bool(),
    )


def test_tensor_replay_buffer_is_a_ring_and_samples_only_what_it_holds() -> None:
    generator = torch.Generator().manual_seed(0)
    buffer = TensorReplayBuffer(5, torch.device("cpu"), generator)
    buffer.add_transitions(**_rows(0, 3))
    assert buffer.size() == 3
    assert buffer.sample(200).actions.unique().tolist() == [0, 1, 2]
    buffer.add_transitions(**_rows(3, 3))  # 3, 4 fill the ring; 5 overwrites slot 0
    assert buffer.size() == 5 and buffer.pos == 1
    latest = buffer.latest()
    assert latest.actions.tolist() == [3, 4, 5]
    assert latest.observations.tolist() == [[3.0] * 3, [4.0] * 3, [5.0] * 3]
    assert latest.next_observations[:, 0].tolist() == [-3.0, -4.0, -5.0]
    assert latest.dones.tolist() == [[1.0], [0.0], [1.0]]
    assert latest.rewards.tolist() == pytest.approx([0.3, 0.4, 0.5])
    assert sorted(buffer.sample(400).actions.unique().tolist()) == [1, 2, 3, 4, 5]


def test_tensor_replay_buffer_refuses_what_the_device_cannot_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tensor_buffers, "_free_bytes", lambda device: 1_000)
    buffer = TensorReplayBuffer(100, torch.device("cpu"), torch.Generator())
    with pytest.raises(ValueError, match="buffer_size: 100 transitions need"):
        buffer.add_transitions(**_rows(0, 2))
    with pytest.raises(ValueError, match="buffer_size: 1 is smaller"):
        TensorReplayBuffer(1, torch.device("cpu"), torch.Generator()).add_transitions(**_rows(0, 2))


REPLAY = dict(buffer_size=500, learning_starts=60, batch_size=16, train_freq=1,
              target_update_interval=60, use_masking=True, learning_rate=1e-3)  # fmt: skip


def test_dqn_with_replay_on_tensors_learns_and_reloads(tmp_path: Any) -> None:
    agent = DQNAgent(_env("session"), seed=2, **REPLAY)
    before = {key: value.clone() for key, value in agent.q_net.state_dict().items()}
    agent.learn(1200)
    assert (
        isinstance(agent.replay_buffer, TensorReplayBuffer) and agent.replay_buffer.full
    )  # 1,200 steps wrapped the ring of 500
    assert any(not torch.equal(before[key], value) for key, value in agent.q_net.state_dict().items())
    path = agent.save(tmp_path / "dqn")
    loaded = DQNAgent.load(path)
    obs = agent.env.reset(seed=0)[0].numpy()
    np.testing.assert_array_equal(loaded.predict(obs)[0], agent.predict(obs)[0])
    # Same seed, same run on the CPU (the tensor draws follow the learner's seed).
    again = DQNAgent(_env("session"), seed=2, **REPLAY)
    again.learn(1200)
    for key, value in agent.q_net.state_dict().items():
        assert torch.equal(again.q_net.state_dict()[key], value), key
