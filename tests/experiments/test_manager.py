"""RunSpec and run_experiment: the one place a run's data, validation and resume are decided."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rlrec.agents.runs import read_run_config
from rlrec.data import load_movielens
from rlrec.data.split import temporal_split
from rlrec.envs import MOVIELENS_ID, SESSION_ID
from rlrec.experiments.manager import RunSpec, run_experiment

TINY = "synthetic:n_users=40,n_movies=60,n_ratings=700,seed=2"


def test_one_rule_for_how_often_validation_is_ranked() -> None:
    spec = RunSpec("dqn")
    assert spec.resolved_eval_freq(SESSION_ID, 1_000) == 100_000  # the session env's default
    assert spec.resolved_eval_freq(MOVIELENS_ID, 1_000) == 0  # elsewhere: off unless asked
    assert RunSpec("dqn", n_evaluations=4).resolved_eval_freq(MOVIELENS_ID, 1_000) == 250
    assert RunSpec("dqn", n_evaluations=4).resolved_eval_freq(MOVIELENS_ID, 3) == 1
    assert RunSpec("dqn", eval_freq=7, n_evaluations=4).resolved_eval_freq(MOVIELENS_ID, 1_000) == 7
    with pytest.raises(ValueError, match="--eval-freq: must be >= 0"):
        RunSpec("dqn", eval_freq=-1).resolved_eval_freq(MOVIELENS_ID, 1_000)


def test_validation_is_carved_from_train_and_the_best_model_kept(tmp_path: Path) -> None:
    spec = RunSpec("dqn", data=TINY, timesteps=300, eval_freq=100, output=tmp_path, checkpoint_freq=None)
    experiment = run_experiment(spec)
    assert experiment.validation is not None
    assert [steps for steps, _ in experiment.validation.evaluations] == [100, 200, 300]
    assert experiment.best_model_path is not None and experiment.best_model_path.parent == tmp_path / "dqn"
    config = read_run_config(tmp_path / "dqn" / "run.json")
    # The fit part is the train part of the train part: worked out here by the split itself.
    fit = temporal_split(temporal_split(load_movielens(TINY)).train).train
    assert config["dataset"]["ratings"] == fit.n_ratings
    assert config["run_info"]["eval_freq"] == 100
    assert config["run_info"]["validation"]["train_ratings"] == fit.n_ratings
    assert config["run_info"]["split"]["test_fraction"] == 0.2


def test_without_holdout_or_validation_every_rating_is_seen(tmp_path: Path) -> None:
    spec = RunSpec("dqn", data=TINY, timesteps=50, holdout=False, eval_freq=0, output=tmp_path)
    experiment = run_experiment(spec)
    assert experiment.validation is None and experiment.best_model_path is None
    recorded = read_run_config(tmp_path / "dqn" / "run.json")
    assert recorded["dataset"]["ratings"] == load_movielens(TINY).n_ratings


def test_a_resume_refuses_what_contradicts_the_record(tmp_path: Path) -> None:
    run_experiment(RunSpec("dqn", data=TINY, timesteps=50, seed=1, output=tmp_path, checkpoint_freq=None))
    with pytest.raises(ValueError, match=r"--seed 5 \(the run's: 1\)"):
        run_experiment(RunSpec("dqn", data=None, timesteps=100, seed=5, output=tmp_path, resume=True))
    with pytest.raises(ValueError, match="--force: replaces a run, --resume continues it"):
        run_experiment(RunSpec("dqn", data=None, timesteps=100, output=tmp_path, resume=True, force=True))
    resumed = run_experiment(RunSpec("dqn", data=None, timesteps=100, output=tmp_path, resume=True)).train
    assert resumed.timesteps == 100 and resumed.config["seed"] == 1


def test_a_validation_sample_ranks_that_many_users(tmp_path: Path) -> None:
    spec = RunSpec(
        "dqn", data=TINY, timesteps=100, eval_freq=100, eval_users=5, output=tmp_path, checkpoint_freq=None
    )
    experiment = run_experiment(spec)
    assert experiment.validation is not None
    assert [m["n_users"] for _, m in experiment.validation.evaluations] == [5]
    assert read_run_config(tmp_path / "dqn" / "run.json")["run_info"]["eval_users"] == 5
    with pytest.raises(ValueError, match="eval_users: must be >= 1"):
        run_experiment(
            RunSpec("dqn", data=TINY, timesteps=10, eval_freq=10, eval_users=0, output=tmp_path / "b")
        )


@pytest.mark.parametrize("algo", ["dqn", "sb3-dqn", "ppo", "slateq"])
def test_every_learner_trains_on_the_torch_backend_and_records_its_device(tmp_path: Path, algo: str) -> None:
    """``--env-kwargs backend=torch``: the env's tensors cross to the host at the learner's
    boundary; the run records where the networks ran and loads back on the CPU."""
    from rlrec.agents.factory import load_model
    from rlrec.agents.scoring import score_movies
    from rlrec.envs import SLATE_ID

    env_id = SLATE_ID if algo == "slateq" else SESSION_ID
    hyperparams = {"n_envs": 4} if algo != "ppo" else {"n_envs": 4, "n_steps": 16, "batch_size": 32}
    spec = RunSpec(
        algo, data=TINY, env_id=env_id, env_kwargs={"backend": "torch"}, hyperparams=hyperparams,
        timesteps=128, eval_freq=0, output=tmp_path, device="cpu", checkpoint_freq=None,
    )  # fmt: skip
    result = run_experiment(spec).train
    assert result.timesteps >= 128
    config = read_run_config(result.run_dir / "run.json")
    assert config["device"] == "cpu" and config["env_kwargs"]["backend"] == "torch"
    assert config["env_kwargs"]["device"] == "cpu"  # the learner's device, handed to the env
    loaded = load_model(algo, result.model_path, device="cpu", hyperparams=config["hyperparameters"])
    shape = result.model.observation_space.shape
    obs = (np.random.default_rng(0).random((3, *shape)) < 0.2).astype(np.float32)
    np.testing.assert_allclose(score_movies(loaded, obs), score_movies(result.model, obs), rtol=1e-6)
