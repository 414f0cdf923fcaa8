"""Every SB3 / sb3-contrib algorithm trains on the session env with rlrec's components, through
the shipped recipes, and saves / loads through SB3's zip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlrec.agents.factory import load_model
from rlrec.agents.scoring import score_movies
from rlrec.experiments.training import train
from rlrec.nn import CompactReplayBuffer, RowSparseAdam, SparseInputExtractor

SYNTH = "synthetic:n_users=30,n_movies=80,n_ratings=600,seed=1"
SESSION = "rlrec/MovieLensSession-v0"


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["sb3-dqn", "qrdqn", "ppo", "a2c", "maskable-ppo"])
def test_session_recipe_trains_saves_and_loads(tmp_path, algo: str) -> None:
    result = train(
        algo,
        data=SYNTH,
        env_id=SESSION,
        hyperparams={"n_envs": 4, **({"batch_size": 32} if "ppo" in algo else {})},
        timesteps=320,
        seed=0,
        output=tmp_path,
        checkpoint_freq=None,
    )
    model = result.model
    assert model.num_timesteps >= 320
    policy = model.policy
    assert any(isinstance(module, SparseInputExtractor) for module in policy.modules())
    assert isinstance(policy.optimizer, RowSparseAdam)
    if algo in ("sb3-dqn", "qrdqn"):
        assert isinstance(model.replay_buffer, CompactReplayBuffer)
        assert model.replay_buffer.size() > 0
    # The first layer trained: some rows of its table moved, from RowSparseAdam's steps.
    assert policy.optimizer.state and any(int(state["step"]) > 0 for state in policy.optimizer.state.values())

    loaded = load_model(algo, result.model_path, device="cpu")
    observations = result.model.get_env().get_attr("observations")[0](np.arange(5))
    np.testing.assert_allclose(
        score_movies(loaded, observations), score_movies(model, observations), rtol=1e-6
    )
    assert any(isinstance(module, SparseInputExtractor) for module in loaded.policy.modules())


def test_unseen_policy_never_picks_a_shown_movie(tmp_path) -> None:
    result = train(
        "sb3-dqn", data=SYNTH, env_id=SESSION, hyperparams={"n_envs": 2}, timesteps=64, seed=0,
        output=tmp_path, checkpoint_freq=None,
    )  # fmt: skip
    model = result.model
    obs = np.zeros((3, 80), dtype=np.float32)
    obs[0, :79] = 1.0  # only movie 79 left
    obs[1, [3, 5]] = [1.0, -1.0]
    actions, _ = model.predict(obs, deterministic=True)
    assert actions[0] == 79
    assert actions[1] not in (3, 5)
    q = model.q_net(torch.as_tensor(obs[2:]))
    assert actions[2] == int(q.argmax())  # nothing shown: the plain greedy action
