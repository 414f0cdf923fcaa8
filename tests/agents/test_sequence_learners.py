"""Sequence states for the learners: our DQN / SlateQ with a sequence extractor, SB3's policies
masking and tying over a sequence, and the ``<algo>-sequence`` benchmark entries."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import pytest
import torch
from stable_baselines3 import DQN

from rlrec.agents.dqn import DQNAgent
from rlrec.agents.recipes import load_hyperparams, split_hyperparams
from rlrec.agents.slateq import SlateQAgent
from rlrec.envs import SESSION_ID
from rlrec.experiments.entries import BENCHMARK_SETUPS, SEQUENCE_SETUPS
from rlrec.nn import CatalogueDQNPolicy, GRUSequenceExtractor, QNetwork, mask_seen

SYNTH = "synthetic:n_users=60,n_movies=90,n_ratings=1500,seed=4"
GRU = dict(features_extractor="gru", features_extractor_kwargs=dict(features_dim=16, embedding_dim=16))


def _session(n: int = 4, **kwargs: Any) -> Any:
    return gymnasium.make_vec(
        SESSION_ID, num_envs=n, data=SYNTH, observation="sequence", sequence_length=6,
        hidden_fraction=0.8, reward_mode="binary", **kwargs,
    )  # fmt: skip


def test_mask_seen_reads_the_movies_of_a_sequence() -> None:
    # Row 0 holds movie index + 1 (0: padding): the first session watched movies 2 and 0.
    obs = torch.tensor([[[0, 0, 3, 1], [0, 0, 0.8, 1.0]], [[0, 0, 0, 5], [0, 0, 0, 0.6]]])
    scores = torch.arange(10, dtype=torch.float32).repeat(2, 1)
    masked = mask_seen(scores, obs)
    assert torch.isinf(masked[0]).nonzero().flatten().tolist() == [0, 2]
    assert torch.isinf(masked[1]).nonzero().flatten().tolist() == [4]


def test_our_dqn_learns_over_a_sequence_and_reloads_it(tmp_path: Any) -> None:
    env = _session()
    agent = DQNAgent(env, seed=0, net_arch=[], buffer_size=0, learning_starts=0, gamma=0.0,
                     use_masking=True, learning_rate=1e-3, **GRU)  # fmt: skip
    assert isinstance(agent.q_net.features, GRUSequenceExtractor)
    before = agent.q_net.head.weight.detach().clone()
    agent.learn(400)
    assert not torch.equal(before, agent.q_net.head.weight)
    loaded = DQNAgent.load(agent.save(tmp_path / "dqn"))  # no env: the bound comes from the file
    obs = np.asarray(env.reset(seed=1)[0])
    assert obs.shape == (4, 2, 6)
    np.testing.assert_array_equal(loaded.q_values(obs), agent.q_values(obs))
    # The features are the GRU's state after the latest movie: what the extractor alone returns.
    state = agent.q_net.features(torch.as_tensor(obs))
    q = agent.q_net.head(state).detach().numpy()
    np.testing.assert_allclose(agent.q_values(obs), q, rtol=1e-6, atol=1e-6)


def test_slateq_learns_over_a_sequence_with_self_attention() -> None:
    env = gymnasium.make_vec("rlrec/MovieLensSlate-v0", num_envs=4, data=SYNTH, observation="sequence",
                             sequence_length=6, slate_size=3, feedback="logged", hiding="random")  # fmt: skip
    agent = SlateQAgent(env, seed=0, net_arch=[8], features_extractor="self_attention",
                        features_extractor_kwargs=dict(features_dim=16))  # fmt: skip
    agent.learn(200)
    slates, _ = agent.predict(np.asarray(env.reset(seed=0)[0]))
    assert slates.shape == (4, 3) and all(len(set(row)) == 3 for row in slates.tolist())


def test_unknown_extractor_is_refused() -> None:
    with pytest.raises(ValueError, match="features_extractor: one of gru, self_attention"):
        DQNAgent(_session(), features_extractor="lstm")


def test_sb3_head_tied_to_the_sequence_table_scores_with_its_movie_rows() -> None:
    env = gymnasium.make(SESSION_ID, data=SYNTH, observation="sequence", sequence_length=6)
    kwargs = dict(net_arch=[], features_extractor_class=GRUSequenceExtractor, tie_embeddings=True,
                  features_extractor_kwargs=dict(features_dim=16, embedding_dim=16))  # fmt: skip
    model = DQN(CatalogueDQNPolicy, env, policy_kwargs=kwargs, seed=0, learning_starts=0, buffer_size=100)
    q_net: Any = model.policy.q_net
    table = q_net.features_extractor.embedding.weight
    head = q_net.q_net[-1] if isinstance(q_net.q_net, torch.nn.Sequential) else q_net.q_net
    assert torch.equal(head.weight, table[1:])  # row 0 is the padding, not a movie
    with torch.no_grad():
        table[3] += 1.0  # movie 2's row: the head sees the change
    assert torch.equal(head.weight[2], table[3])


@pytest.mark.parametrize("name", sorted(SEQUENCE_SETUPS))
def test_sequence_entries_build_a_sequence_recipe(name: str) -> None:
    setup = BENCHMARK_SETUPS[name]
    assert name.endswith("-sequence") and setup.algo is not None
    recipe = split_hyperparams(setup.algo, load_hyperparams(setup.algo, setup.env_id, setup.hyperparams))
    env_kwargs = {**recipe.env_kwargs, **setup.env_kwargs}
    assert env_kwargs["observation"] == "sequence"
    # A policy that masks only what the sequence holds needs the misses in it (SB3's DQN).
    assert env_kwargs["show_misses"] is (setup.algo == "sb3-dqn")
    assert gymnasium.make(SESSION_ID, data=SYNTH, **env_kwargs).observation_space.shape == (2, 50)


def test_qnetwork_without_extractor_is_unchanged_by_the_reshape() -> None:
    space = gymnasium.spaces.Box(0, 1, (12,), np.float32)
    net = QNetwork(space, 5, [4])
    obs = torch.rand(3, 12)
    first = net.features(obs)
    assert torch.equal(net(obs), net.head(net.hidden(first)))
