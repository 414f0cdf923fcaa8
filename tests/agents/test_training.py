"""The training run through the library: every algo, run.json, save/load, resume, Ctrl-C, logs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import pytest
from stable_baselines3.common.callbacks import BaseCallback

from rlrec.agents.registry import ALGOS
from rlrec.agents.scoring import score_movies
from rlrec.data import load_movielens
from rlrec.experiments.training import RUN_FILE, load_run, train
from rlrec.plotting import find_runs, read_scalars
from rlrec.utils.io import load_json

TINY = "synthetic:n_users=10,n_movies=40,n_ratings=120,seed=3"

#: Budgets small enough for a test, large enough that every learner updates in 64 steps.
FAST: dict[str, dict[str, Any]] = {
    "qlearning": {},
    "dqn": {"learning_starts": 16, "batch_size": 8, "buffer_size": 256, "target_update_interval": 16},
    "sb3-dqn": {"learning_starts": 16, "batch_size": 8, "buffer_size": 256, "target_update_interval": 16},
    "qrdqn": {
        "learning_starts": 16,
        "batch_size": 8,
        "buffer_size": 256,
        "policy_kwargs": "dict(net_arch=[16], n_quantiles=3)",
    },
    "ppo": {"n_steps": 16, "batch_size": 16, "n_epochs": 1, "n_envs": 2},
    "a2c": {"n_steps": 4, "n_envs": 2},
    "maskable-ppo": {"n_steps": 16, "batch_size": 16, "n_epochs": 1, "n_envs": 2},
}


def all_observations(data: str = TINY) -> tuple[np.ndarray, np.ndarray]:
    env = gymnasium.make("rlrec/MovieLens-v0", data=load_movielens(data))
    states = np.arange(env.unwrapped.n_states)  # type: ignore[attr-defined]
    return env.unwrapped.observations(states), states  # type: ignore[attr-defined]


class StopAt(BaseCallback):
    """Raise KeyboardInterrupt once ``num_timesteps`` reaches ``step``: Ctrl-C inside learn()."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.step = step

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.step:
            raise KeyboardInterrupt
        return True


#: Every algo that acts on MovieLens-v0 (SlateQ acts on slates: tests/agents/test_slateq.py).
SINGLE_ACTION = [algo for algo in ALGOS if algo != "slateq"]


@pytest.mark.parametrize("algo", SINGLE_ACTION)
def test_each_algo_trains_saves_and_reloads_to_the_same_scores(algo: str, tmp_path: Path) -> None:
    result = train(
        algo,
        data=TINY,
        hyperparams=FAST[algo],
        timesteps=64,
        seed=0,
        output=tmp_path / "models",
        tensorboard_log=tmp_path / "tb",
        checkpoint_freq=None,
    )
    assert not result.interrupted
    assert result.model_path == tmp_path / "models" / algo / ALGOS[algo].model_file
    assert result.model_path.is_file()
    # On-policy learners collect whole rollouts (n_steps x n_envs = 32 here), so 64 is exact for all.
    assert result.model.num_timesteps == 64

    config = load_json(result.run_dir / RUN_FILE)
    assert config["algo"] == algo and config["env_id"] == "rlrec/MovieLens-v0"
    assert config["data"] == TINY and config["dataset"]["users"] == 10
    assert config["seed"] == 0 and config["status"] == "done"
    assert config["timesteps_target"] == 64 and config["timesteps_done"] == 64
    for key, value in FAST[algo].items():
        assert config["hyperparameters"][key] == value
    assert {"stable-baselines3", "sb3-contrib", "gymnasium", "torch", "rlrec"} <= set(config["versions"])
    assert Path(config["tensorboard_run"]).name == f"{algo}_1"

    loaded = load_run(result.run_dir)
    assert loaded.config == config and type(loaded.model) is type(result.model)
    assert loaded.model.num_timesteps == 64
    observations, states = all_observations()
    before = score_movies(result.model, observations, states=states)
    after = score_movies(loaded.model, observations, states=states)
    assert before.shape == (10, 40)
    np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(
        result.model.predict(observations, deterministic=True)[0],
        loaded.model.predict(observations, deterministic=True)[0],
    )


def test_same_seed_same_model(tmp_path: Path) -> None:
    runs = [
        train(
            "sb3-dqn", data=TINY, hyperparams=FAST["sb3-dqn"], timesteps=48, seed=5, output=tmp_path / str(i)
        )
        for i in range(2)
    ]
    observations, _ = all_observations()
    first, second = (score_movies(run.model, observations) for run in runs)
    np.testing.assert_array_equal(first, second)


def test_sb3_event_files_hold_the_common_tags_and_the_hyperparameters(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    train(
        "sb3-dqn",
        data=TINY,
        hyperparams=FAST["sb3-dqn"],
        timesteps=200,
        output=tmp_path,
        tensorboard_log=tmp_path,
    )
    (run,) = find_runs(tmp_path)
    assert run.name == "sb3-dqn_1"
    scalars = read_scalars(run)
    for tag in (
        "rollout/ep_rew_mean",
        "rollout/ep_len_mean",
        "rollout/exploration_rate",
        "train/loss",
        "time/fps",
    ):
        assert len(scalars[tag]) >= 1, tag
    # The exploration rate falls along the run (SB3's linear schedule).
    rate = scalars["rollout/exploration_rate"][:, 1]
    assert rate[0] > rate[-1]

    accumulator = EventAccumulator(str(run))
    accumulator.Reload()
    content = accumulator.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert hparams["learning_starts"].number_value == 16
    assert hparams["algo"].string_value == "sb3-dqn"
    assert hparams["data"].string_value == TINY


@pytest.mark.parametrize("algo", ["qlearning", "dqn", "sb3-dqn", "ppo"])
def test_resume_keeps_the_step_count_and_the_tensorboard_run(algo: str, tmp_path: Path) -> None:
    out, tb = tmp_path / "models", tmp_path / "tb"
    first = train(algo, data=TINY, hyperparams=FAST[algo], timesteps=64, output=out, tensorboard_log=tb)
    result = train(algo, data=None, timesteps=128, resume=True, output=out, tensorboard_log=tb)
    assert result.model.num_timesteps == 128
    config = load_json(result.run_dir / RUN_FILE)
    assert config["timesteps_done"] == 128 and config["timesteps_target"] == 128
    assert config["hyperparameters"] == first.config["hyperparameters"]
    assert load_run(result.run_dir).model.num_timesteps == 128
    # The resumed half writes into the same TensorBoard run, after step 64.
    (run,) = find_runs(tmp_path / "tb")
    assert run.name == f"{algo}_1"
    steps = np.concatenate([points[:, 0] for points in read_scalars(run).values()])
    assert steps.max() > 64


def test_resume_refuses_what_would_not_continue_the_same_run(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no run to resume"):
        train("sb3-dqn", data=None, resume=True, output=tmp_path)
    train("sb3-dqn", data=TINY, hyperparams=FAST["sb3-dqn"], timesteps=32, output=tmp_path)
    with pytest.raises(ValueError, match="already has 32 timesteps"):
        train("sb3-dqn", data=None, timesteps=32, resume=True, output=tmp_path)
    with pytest.raises(ValueError, match="omit them"):
        train("sb3-dqn", data=None, timesteps=64, resume=True, output=tmp_path, hyperparams={"gamma": 0.5})
    with pytest.raises(ValueError, match="was trained on"):
        train("sb3-dqn", data="synthetic", timesteps=64, resume=True, output=tmp_path)


@pytest.mark.parametrize("algo", ["dqn", "sb3-dqn"])
def test_ctrl_c_saves_a_loadable_checkpoint_that_resumes(algo: str, tmp_path: Path) -> None:
    result = train(
        algo, data=TINY, hyperparams=FAST[algo], timesteps=100, output=tmp_path, callbacks=[StopAt(40)]
    )
    assert result.interrupted
    config = load_json(result.run_dir / RUN_FILE)
    assert config["status"] == "interrupted" and config["timesteps_done"] == 40
    assert config["timesteps_target"] == 100
    assert load_run(result.run_dir).model.num_timesteps == 40
    # Without --timesteps, resume finishes the interrupted run's own budget.
    finished = train(algo, data=None, resume=True, output=tmp_path)
    assert finished.model.num_timesteps == 100 and finished.config["status"] == "done"


def test_periodic_checkpoints_rewrite_run_json_every_n_steps(tmp_path: Path) -> None:
    seen: list[int] = []

    class ReadRunJson(BaseCallback):
        def _on_step(self) -> bool:
            record = tmp_path / "sb3-dqn" / RUN_FILE
            # No run.json before the first checkpoint: it only ever describes a saved model.
            seen.append(load_json(record)["timesteps_done"] if record.exists() else -1)
            return True

    train(
        "sb3-dqn",
        data=TINY,
        hyperparams=FAST["sb3-dqn"],
        timesteps=64,
        output=tmp_path,
        checkpoint_freq=16,
        callbacks=[ReadRunJson()],
    )
    # Our callback runs before the checkpoint of the same step: it sees the previous checkpoints.
    assert sorted(set(seen)) == [-1, 16, 32, 48]
    assert seen.index(16) == 16 and seen.index(32) == 32


def test_our_dqn_trains_on_the_batched_vector_env(tmp_path: Path) -> None:
    result = train("dqn", data=TINY, hyperparams={**FAST["dqn"], "n_envs": 4}, timesteps=64, output=tmp_path)
    assert isinstance(result.model.get_env(), gymnasium.vector.VectorEnv)
    assert result.model.get_env().num_envs == 4
    assert result.model.num_timesteps == 64


@pytest.mark.parametrize(
    ("env_kwargs", "message"),
    [
        ({"reward_mod": "rating"}, "unknown key 'reward_mod' for rlrec/MovieLens-v0"),
        ({"data": "synthetic"}, "give the data with --data"),
    ],
)
def test_bad_env_kwargs_are_refused_before_training(
    env_kwargs: dict[str, Any], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=message):
        train("sb3-dqn", data=TINY, env_kwargs=env_kwargs, timesteps=8, output=tmp_path)
    assert not (tmp_path / "sb3-dqn").exists()


def test_env_kwargs_reach_the_env(tmp_path: Path) -> None:
    result = train(
        "maskable-ppo",
        data=TINY,
        env_kwargs={"reward_mode": "rating"},
        hyperparams=FAST["maskable-ppo"],
        timesteps=32,
        output=tmp_path,
    )
    # SB3 steps the batched vector env (rlrec.envs.sb3_vec.GymnasiumVecEnv over its episodes).
    episodes = result.model.get_env().get_attr("episodes")[0]
    assert episodes.reward_mode == "rating"
    assert episodes.mask_recommended  # from maskable-ppo.yml's env_kwargs, merged with ours
    assert result.config["env_kwargs"] == {"mask_recommended": True, "reward_mode": "rating"}
