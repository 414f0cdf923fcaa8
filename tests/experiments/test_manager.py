"""RunSpec and run_experiment: the one place a run's data, validation and resume are decided."""

from __future__ import annotations

from pathlib import Path

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
