"""SlateQ: slate acting, the per-slot update against a hand-computed gradient, learning, save/load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import pytest
import torch

import rlrec  # noqa: F401  (registers the env ids)
from rlrec.agents.slateq import FreshBatch, SlateQAgent, SlateTargetValues, _top
from rlrec.data.split import temporal_split
from rlrec.evaluation.protocol import evaluate_model
from rlrec.experiments.training import load_run, train

TINY = "synthetic:n_users=40,n_movies=60,n_ratings=800,seed=2"
SLATE = "rlrec/MovieLensSlate-v0"


def slate_env(num_envs: int = 4, slate_size: int = 3, **kwargs: object) -> gymnasium.vector.VectorEnv:
    return gymnasium.make_vec(
        SLATE,
        num_envs=num_envs,
        vectorization_mode="vector_entry_point",
        autoreset_mode="same_step",
        data=TINY,
        slate_size=slate_size,
        hidden_fraction=0.8,
        observation="binary",
        **kwargs,
    )


def test_top_picks_the_k_best_best_first_ties_to_the_lower_index() -> None:
    scores = np.array([[1.0, 5.0, 3.0, 5.0, -np.inf], [0.0, 0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(_top(scores, 3), [[1, 3, 2], [0, 1, 2]])


def test_greedy_and_exploring_slates_are_distinct_allowed_movies() -> None:
    agent = SlateQAgent(slate_env(), seed=0, net_arch=[8])
    obs = np.zeros((4, 60), dtype=np.float32)
    masks = np.ones((4, 60), dtype=bool)
    masks[:, :50] = False  # only movies 50..59 may be shown
    q = agent.q_values(obs)
    greedy = agent._greedy_actions(obs, masks)
    np.testing.assert_array_equal(greedy, _top(np.where(masks, q, -np.inf), 3))
    for epsilon in (0.0, 0.5, 1.0):
        slates = agent._epsilon_greedy(obs, epsilon, masks)
        assert slates.shape == (4, 3) and (slates >= 50).all()
        assert all(len(set(row)) == 3 for row in slates.tolist())
    # sb3-contrib's MultiDiscrete masks (one copy per slot) are read the same way
    np.testing.assert_array_equal(agent._greedy_actions(obs, np.tile(masks, (1, 3))), greedy)


def _fresh(agent: SlateQAgent, obs: np.ndarray, slates: np.ndarray, rewards: np.ndarray,
           next_obs: np.ndarray, terminated: np.ndarray) -> Any:  # fmt: skip
    """The batch SlateQ's loop hands its gradient step: one fresh batch of slates."""
    memory = FreshBatch(agent.device)
    memory.add_transitions(obs, next_obs, slates, rewards, terminated)
    return memory.latest()


def test_one_slate_step_is_the_hand_computed_huber_gradient_step() -> None:
    agent = SlateQAgent(
        slate_env(num_envs=2, slate_size=2), seed=1, net_arch=[4], dropout=0.0, learning_rate=0.1,
        max_grad_norm=1e9,
    )  # fmt: skip
    net = agent.q_net
    obs = np.zeros((2, 60), dtype=np.float32)
    obs[0, [1, 2]] = 1.0
    obs[1, [3]] = 1.0
    slates = np.array([[5, 7], [9, 5]])
    rewards = np.array([[1.0, 0.0], [0.0, 3.0]], dtype=np.float32)
    # By hand: Q(s, i) = relu(x W + b) . w_i + c_i for each shown movie, Huber towards r_i
    # (0.5 d^2 when |d| < 1, |d| - 0.5 otherwise), averaged over the four (session, movie) pairs.
    W, b = (p.detach().clone().requires_grad_() for p in (net.features.weight, net.features.bias))
    w, c = (p.detach().clone().requires_grad_() for p in (net.head.weight, net.head.bias))
    hidden = torch.relu(torch.as_tensor(obs) @ W + b)
    pairs = [(r, k) for r in range(2) for k in range(2)]
    q = torch.stack([(hidden[r] * w[slates[r, k]]).sum() + c[slates[r, k]] for r, k in pairs])
    d = q - torch.as_tensor(rewards).reshape(-1)
    loss = torch.where(d.abs() < 1, 0.5 * d**2, d.abs() - 0.5).mean()
    loss.backward()
    agent._gradient_step(_fresh(agent, obs, slates, rewards, obs, np.zeros(2, dtype=bool)))
    # Adam's first step moves each touched weight by lr * sign(gradient) (bias-corrected m / sqrt(v)).
    for name, before, grad, after in (
        ("head.weight", w, w.grad, net.head.weight),
        ("head.bias", c, c.grad, net.head.bias),
        ("features.bias", b, b.grad, net.features.bias),
    ):
        assert grad is not None
        expected = before.detach() - 0.1 * torch.sign(grad) * (grad.abs() > 1e-12)
        torch.testing.assert_close(after.detach(), expected, rtol=1e-5, atol=1e-6, msg=name)
    assert agent._n_updates == 1


def test_slateq_learns_the_popular_liked_movies_and_evaluates(tmp_path: Path) -> None:
    # A tiny world where popularity carries the signal (the generator before its calibration to
    # ml-latest-small: one Zipf curve, no groups, no drift). Calibrated, 60 movies in 8 eras leave
    # the newest era's movies to the test part, where popular liked movies lose even to random.
    static = TINY + ",popularity_exponent=1.2,popularity_offset=5,popularity_head=0,popularity_floor=0"
    static += ",taste_strength=3,taste_spread=0,group_size=0,drift=0"
    split = temporal_split(__import__("rlrec.data", fromlist=["load_movielens"]).load_movielens(static))
    result = train(
        "slateq", data=split.train, env_id=SLATE, timesteps=3000, seed=0, output=tmp_path,
        hyperparams={"n_envs": 8, "net_arch": [32], "env_kwargs": {"slate_size": 3, "observation": "binary"}},
        checkpoint_freq=None,
    )  # fmt: skip
    assert result.model.num_timesteps == 3000 and result.model._n_updates > 300
    metrics = evaluate_model(result.model, split, env_id=SLATE, env_kwargs={"observation": "binary"})
    from rlrec.evaluation.protocol import evaluate_baseline

    assert metrics["ndcg@10"] > evaluate_baseline("random", split)["ndcg@10"]
    loaded = load_run(result.run_dir).model
    obs = np.eye(60, dtype=np.float32)[:5]
    np.testing.assert_array_equal(loaded.q_values(obs), result.model.q_values(obs))
    assert loaded.slate_size == 3 and loaded.gamma == 0.0


def test_gamma_adds_the_share_of_the_next_greedy_slate() -> None:
    agent = SlateQAgent(slate_env(num_envs=1, slate_size=2), seed=0, net_arch=[4], gamma=0.5, dropout=0.0)
    obs = np.zeros((1, 60), dtype=np.float32)
    nxt = np.zeros((1, 60), dtype=np.float32)
    nxt[0, 4] = 1.0
    with torch.no_grad():
        share = agent.q_net_target(torch.as_tensor(nxt)).topk(2).values.mean().item()
    agent.target_values = SlateTargetValues(agent.q_net_target, slate_size=2)  # what learn builds
    slate, rewards = np.array([[1, 2]]), np.array([[1.0, 0.0]], np.float32)
    targets = agent.td_targets(_fresh(agent, obs, slate, rewards, nxt, np.array([False])))
    torch.testing.assert_close(targets, torch.tensor([1.0 + 0.5 * share, 0.5 * share]))
    targets = agent.td_targets(_fresh(agent, obs, slate, rewards, nxt, np.array([True])))
    torch.testing.assert_close(targets, torch.tensor([1.0, 0.0]))  # no future after the end


def test_refuses_single_movie_envs_and_replay() -> None:
    env = gymnasium.make("rlrec/MovieLensSession-v0", data=TINY)
    with pytest.raises(ValueError, match="MultiDiscrete"):
        SlateQAgent(env)
    with pytest.raises(ValueError, match="buffer_size"):
        SlateQAgent(slate_env(), buffer_size=1000)


def test_slateq_runs_dqns_loop() -> None:
    # One off-policy loop: SlateQ replaces acting, labels, Q of the shown movies and its target,
    # never the loop, the gradient step or the target sync.
    from rlrec.agents.dqn import DQNAgent

    for name in ("learn", "_gradient_step", "td_targets", "_update_learning_rate"):
        assert getattr(SlateQAgent, name) is getattr(DQNAgent, name), name


def test_item_item_slateq_learns_from_the_shown_pairs_and_round_trips(tmp_path: Path) -> None:
    from rlrec.nn import ItemItemQNetwork

    agent = SlateQAgent(
        slate_env(num_envs=8, slate_size=3), seed=0, network="item_item", optimizer="sparse_adam",
        input_normalization="sqrt_count", learning_rate=1e-2,
    )  # fmt: skip
    assert isinstance(agent.q_net, ItemItemQNetwork)
    before = agent.q_net.weight.detach().clone()
    agent.learn(400)
    moved = agent.q_net.weight.detach() != before
    assert agent._n_updates == 50 and moved.any()
    # Masked acting never shows a movie the observation holds, so W's diagonal (a movie
    # predicting itself, which EASE forbids) never gets a gradient.
    assert not moved.diagonal().any()
    path = agent.save(tmp_path / "model")
    loaded = SlateQAgent.load(path)
    obs = np.eye(60, dtype=np.float32)[:5]
    np.testing.assert_array_equal(loaded.q_values(obs), agent.q_values(obs))
    with pytest.raises(ValueError, match="network"):
        SlateQAgent(slate_env(), network="linear")
    with pytest.raises(ValueError, match="features_extractor"):
        SlateQAgent(slate_env(), network="item_item", features_extractor="gru")


def test_weight_decay_reaches_either_optimizer_and_is_saved(tmp_path: Path) -> None:
    for optimizer in ("adam", "sparse_adam"):
        agent = SlateQAgent(
            slate_env(), seed=0, optimizer=optimizer, weight_decay=0.25, decoupled_weight_decay=True
        )
        matrices, biases = agent.optimizer.param_groups
        assert (matrices["weight_decay"], matrices["decoupled_weight_decay"]) == (0.25, True)
        assert biases["weight_decay"] == 0.0  # a bias is a base rate: it never decays
        assert all(p.dim() >= 2 for p in matrices["params"]) and all(p.dim() == 1 for p in biases["params"])
    loaded = SlateQAgent.load(agent.save(tmp_path / "model"))
    assert (loaded.config.weight_decay, loaded.config.decoupled_weight_decay) == (0.25, True)
    assert [group["weight_decay"] for group in loaded.optimizer.param_groups] == [0.25, 0.0]
    assert len(SlateQAgent(slate_env(), seed=0).optimizer.param_groups) == 1  # as models saved before
    with pytest.raises(ValueError, match="weight_decay"):
        SlateQAgent(slate_env(), weight_decay=-1.0)
    with pytest.raises(ValueError, match="decoupled_weight_decay"):
        SlateQAgent(slate_env(), decoupled_weight_decay="yes")
