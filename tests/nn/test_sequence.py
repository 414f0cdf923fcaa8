"""GRU4Rec and SASRec extractors: SASRec's causal mask (position t never sees t + 1), order
matters, and SB3's algorithms train on the sequence env through ``features_extractor_class``."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
import torch

from rlrec.agents.runs import load_run
from rlrec.agents.scoring import score_movies
from rlrec.experiments.training import train
from rlrec.nn import GRUSequenceExtractor, SelfAttentionSequenceExtractor

SYNTH = "synthetic:n_users=30,n_movies=80,n_ratings=600,seed=1"
SESSION = "rlrec/MovieLensSession-v0"


def _space(n_movies: int = 20, length: int = 6) -> gymnasium.spaces.Box:
    high = np.ones((2, length), dtype=np.float32)
    high[0] = n_movies
    return gymnasium.spaces.Box(0.0, high, dtype=np.float32)


def _batch(rng: np.random.Generator, n: int = 4, n_movies: int = 20, length: int = 6) -> torch.Tensor:
    obs = np.zeros((n, 2, length), dtype=np.float32)
    obs[:, 0, 2:] = rng.integers(1, n_movies + 1, size=(n, length - 2))
    obs[:, 1, 2:] = rng.integers(1, 11, size=(n, length - 2)) / 10
    return torch.as_tensor(obs)


def test_sasrec_position_t_never_sees_t_plus_one() -> None:
    torch.manual_seed(0)
    extractor = SelfAttentionSequenceExtractor(_space(), features_dim=16, n_blocks=2, n_heads=2).eval()
    obs = _batch(np.random.default_rng(0))
    before = extractor.encode(obs)
    for t in range(2, 5):
        changed = obs.clone()
        changed[:, 0, t + 1 :] = (changed[:, 0, t + 1 :] % 20) + 1  # other movies after t
        changed[:, 1, t + 1 :] = 1.0 - changed[:, 1, t + 1 :] + 0.05
        after = extractor.encode(changed)
        torch.testing.assert_close(after[:, : t + 1], before[:, : t + 1])
        assert not torch.allclose(after[:, -1], before[:, -1])  # the last position does see them


@pytest.mark.parametrize("cls", [GRUSequenceExtractor, SelfAttentionSequenceExtractor])
def test_the_order_matters_and_padding_is_embedded_as_zero(cls: type) -> None:
    torch.manual_seed(0)
    extractor = cls(_space(), features_dim=8).eval()
    obs = _batch(np.random.default_rng(1))
    swapped = obs.clone()
    swapped[:, :, [2, 3]] = swapped[:, :, [3, 2]]
    assert extractor(obs).shape == (4, 8)
    assert not torch.allclose(extractor(obs), extractor(swapped))
    assert torch.count_nonzero(extractor.embedding.weight[0]) == 0
    with pytest.raises(ValueError, match="sequence"):
        cls(gymnasium.spaces.Box(0.0, 1.0, shape=(20,), dtype=np.float32))


@pytest.mark.parametrize("algo", ["sb3-dqn", "qrdqn", "ppo", "a2c", "maskable-ppo"])
@pytest.mark.parametrize("extractor", ["GRUSequenceExtractor", "SelfAttentionSequenceExtractor"])
def test_sb3_algorithms_train_on_sequences_and_reload_identically(
    tmp_path, algo: str, extractor: str
) -> None:
    arch = "[]" if algo in ("sb3-dqn", "qrdqn") else "dict(pi=[], vf=[])"
    hyperparams: dict[str, object] = {
        "n_envs": 4,
        "policy": "MlpPolicy",
        "policy_kwargs": f"dict(net_arch={arch}, features_extractor_class="
        f"importlib.import_module('rlrec.nn').{extractor}, features_extractor_kwargs=dict(features_dim=16))",
        **({"batch_size": 32, "n_steps": 8} if "ppo" in algo else {}),
        **({"n_steps": 8} if algo == "a2c" else {}),
        **({"learning_starts": 16, "buffer_size": 500} if algo in ("sb3-dqn", "qrdqn") else {}),
        "callback": None,
    }
    env_kwargs = {"observation": "sequence", "sequence_length": 8, "show_misses": False}
    result = train(
        algo, data=SYNTH, env_id=SESSION, env_kwargs=env_kwargs, hyperparams=hyperparams,
        timesteps=160, seed=0, output=tmp_path,
    )  # fmt: skip
    observations = result.model.get_env().get_attr("observations")[0](np.arange(5))
    assert observations.shape == (5, 2, 8)
    loaded = load_run(result.run_dir).model
    np.testing.assert_allclose(
        score_movies(loaded, observations), score_movies(result.model, observations), rtol=1e-6
    )
