"""RL Baselines3 Zoo trains our env with our YAML as they are (rl-zoo3 is the optional extra ``zoo``)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import gymnasium
import pytest

from rlrec.agents.recipes import hyperparams_file

# Not imported here: importing rl_zoo3 patches Gymnasium's registry for the whole test process. It is in
# the dev extra, so CI has it; the skip is for users who installed rlrec without it.
if importlib.util.find_spec("rl_zoo3") is None:
    pytest.skip("rl-zoo3 is the optional extra 'zoo'", allow_module_level=True)

TINY = "synthetic:n_users=10,n_movies=40,n_ratings=120,seed=3"


def _zoo_train(
    folder: Path, zoo_algo: str, env_id: str, algo: str, steps: int, hyperparams: list[str]
) -> None:
    """``python -m rlrec.zoo`` (the zoo's train, the recipe's env_kwargs kept) with rlrec's shipped
    YAML of ``algo`` on the tiny world."""
    command = [
        sys.executable, "-m", "rlrec.zoo",
        "--algo", zoo_algo,
        "--env", env_id,
        "--gym-packages", "rlrec",
        "--env-kwargs", f"data:'{TINY}'",
        "-conf", str(hyperparams_file(algo)),
        "-n", str(steps),
        "--hyperparams", *hyperparams,
        "--seed", "0",
        "--num-threads", "1",
        "--log-folder", str(folder),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=folder)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow
def test_rl_zoo3_trains_movielens_with_the_shipped_yaml(tmp_path: Path) -> None:
    _zoo_train(tmp_path, "dqn", "rlrec/MovieLens-v0", "sb3-dqn", 200, ["learning_starts:100"])

    (saved,) = (tmp_path / "dqn").glob("rlrec-MovieLens-v0_*/rlrec-MovieLens-v0.zip")
    from stable_baselines3 import DQN

    model = DQN.load(saved, device="cpu")
    assert model.num_timesteps == 200
    assert model.action_space == gymnasium.spaces.Discrete(40)
    # The values come from our YAML (the zoo evaluated its policy_kwargs string), plus the override.
    assert model.buffer_size == 10_000 and model.target_update_interval == 1000
    assert model.policy_kwargs == {"net_arch": [64], "optimizer_kwargs": {"fused": True}}
    assert model.learning_starts == 100


def test_the_wrapper_lays_env_kwargs_over_the_recipe() -> None:
    from rlrec.zoo import merged_argv

    conf = str(hyperparams_file("ppo"))
    argv = ["--algo", "ppo", "--env", "rlrec/MovieLensSession-v0", "-conf", conf,
            "--env-kwargs", "data:'x'", "hidden_fraction:0.5", "-n", "10"]  # fmt: skip
    merged = merged_argv(argv)
    kwargs = merged[merged.index("--env-kwargs") + 1 :]
    assert "hidden_fraction:0.5" in kwargs and "data:'x'" in kwargs  # given ones win
    assert "observation:'binary'" in kwargs and "show_misses:True" in kwargs  # the recipe's stay
    assert merged[:4] == ["--algo", "ppo", "-n", "10"]


@pytest.mark.slow
@pytest.mark.parametrize("zoo_algo, algo", [("dqn", "sb3-dqn"), ("ppo", "ppo")])
def test_rl_zoo3_trains_the_session_env_with_the_components(tmp_path: Path, zoo_algo: str, algo: str) -> None:
    extra = ["n_envs:4", *(["batch_size:32"] if zoo_algo == "ppo" else [])]
    _zoo_train(tmp_path, zoo_algo, "rlrec/MovieLensSession-v0", algo, 256, extra)

    (saved,) = (tmp_path / zoo_algo).glob("rlrec-MovieLensSession-v0_*/rlrec-MovieLensSession-v0.zip")
    from stable_baselines3 import DQN, PPO

    from rlrec.nn import CatalogueActorCriticPolicy, CatalogueDQNPolicy, RowSparseAdam, SparseInputExtractor

    model = (DQN if zoo_algo == "dqn" else PPO).load(saved, device="cpu")
    # The zoo eval()ed the YAML's class names into rlrec's components.
    assert model.policy_kwargs["features_extractor_class"] is SparseInputExtractor
    assert model.policy_kwargs["optimizer_class"] is RowSparseAdam
    assert model.gamma == 0.0
    # The env the zoo trained is the recipe's, not the env's defaults: --env-kwargs data:... was
    # laid over the YAML's env_kwargs instead of replacing them.
    import yaml

    (config,) = (tmp_path / zoo_algo).glob("rlrec-MovieLensSession-v0_*/rlrec-MovieLensSession-v0/config.yml")
    trained = dict(dict(yaml.unsafe_load(config.read_text()))["env_kwargs"])
    recipe = yaml.safe_load(hyperparams_file(algo).read_text())["rlrec/MovieLensSession-v0"]["env_kwargs"]
    assert trained == {**recipe, "data": TINY}
    assert trained["hidden_fraction"] == 0.8 and trained["observation"] == "binary"
    if zoo_algo == "ppo":
        assert isinstance(model.policy, CatalogueActorCriticPolicy) and model.policy.mask_observed
    if zoo_algo == "dqn":
        from rlrec.nn import CompactReplayBuffer

        assert isinstance(model.policy, CatalogueDQNPolicy)
        assert model.replay_buffer_class is CompactReplayBuffer
