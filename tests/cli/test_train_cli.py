"""`rlrec train` end to end: every algo on the 2016 release, resume, Ctrl-C, bad arguments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rlrec.agents.registry import ALGOS
from rlrec.agents.scoring import score_movies
from rlrec.cli import main
from rlrec.experiments.training import RUN_FILE, AtomicCheckpointCallback, load_run
from rlrec.utils.io import load_json

TINY = "synthetic:n_users=10,n_movies=40,n_ratings=120,seed=3"

#: --hyperparams that keep 200 steps on ~10k actions cheap while every learner still updates.
CLI_FAST: dict[str, list[str]] = {
    "qlearning": [],
    "dqn": ["learning_starts=100", "buffer_size=1000"],
    "sb3-dqn": ["learning_starts=100", "buffer_size=1000"],
    "qrdqn": ["learning_starts=100", "buffer_size=1000", "policy_kwargs=dict(net_arch=[64],n_quantiles=2)"],
    "ppo": ["n_steps=50", "batch_size=50", "n_epochs=1"],
    "a2c": ["n_steps=25"],
    "maskable-ppo": ["n_steps=50", "batch_size=50", "n_epochs=1"],
    "slateq": ["n_envs=8"],
}
#: The env each algo trains on here (SlateQ recommends slates).
ENV_OF = {"slateq": "rlrec/MovieLensSlate-v0"}


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("algo", list(ALGOS))
def test_train_every_algo_on_the_2016_release(
    algo: str, real_data_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = real_data_home / "ml-latest-small-2016"
    argv = ["train", "--algo", algo, "--data", str(data), "--timesteps", "200", "--seed", "1"]
    argv += ["--env", ENV_OF.get(algo, "rlrec/MovieLens-v0"), "--eval-freq", "0"]
    argv += ["--output", str(tmp_path), "--tensorboard-log", str(tmp_path / "tb")]
    if CLI_FAST[algo]:
        argv += ["--hyperparams", *CLI_FAST[algo]]
    assert main(argv) == 0
    out = capsys.readouterr().out
    model_path = tmp_path / algo / ALGOS[algo].model_file
    assert f"model:  {model_path}" in out

    config = load_json(tmp_path / algo / RUN_FILE)
    # By default a run trains on the train part of the temporal split and records how it was made.
    assert config["run_info"]["data_source"] == str(data)
    held_out = config["run_info"]["split"]["test_ratings"]
    assert (config["dataset"]["users"], config["dataset"]["movies"]) == (668, 10_329)
    assert held_out > 0 and config["dataset"]["ratings"] + held_out == 105_339
    assert config["seed"] == 1 and config["status"] == "done"
    # Rollouts of n_steps x n_envs (A2C: 25 x 8, PPO: 50 x 4) divide 200, so every algo stops at 200.
    assert config["timesteps_done"] == 200
    run = load_run(tmp_path / algo)
    assert run.model.num_timesteps == 200
    scores = score_movies(run.model, np.full((1, 10_329), 3.0, dtype=np.float32), states=np.array([0]))
    assert scores.shape == (1, 10_329) and np.isfinite(scores).all()
    assert (tmp_path / "tb" / f"{algo}_1").is_dir()


def test_resume_through_the_cli_reaches_twice_the_steps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["train", "--algo", "sb3-dqn", "--output", str(tmp_path)]
    assert main([*base, "--data", TINY, "--timesteps", "200", "--hyperparams", *CLI_FAST["sb3-dqn"]]) == 0
    assert load_json(tmp_path / "sb3-dqn" / RUN_FILE)["timesteps_done"] == 200
    # No --data: the run's own; --progress shows a bar and must not break anything.
    assert main([*base, "--resume", "--timesteps", "400", "--progress"]) == 0
    config = load_json(tmp_path / "sb3-dqn" / RUN_FILE)
    assert config["timesteps_done"] == 400 and config["run_info"]["data_source"] == TINY
    assert load_run(tmp_path / "sb3-dqn").model.num_timesteps == 400
    assert "sb3-dqn: 400 timesteps" in capsys.readouterr().out


def test_ctrl_c_exits_130_with_the_checkpoint_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt_at_50(self: AtomicCheckpointCallback) -> bool:
        if self.num_timesteps >= 50:
            raise KeyboardInterrupt
        return True

    monkeypatch.setattr(AtomicCheckpointCallback, "_on_step", interrupt_at_50)
    argv = ["train", "--algo", "dqn", "--data", TINY, "--timesteps", "300", "--output", str(tmp_path)]
    assert main(argv) == 130
    line = one_error_line(capsys)
    assert "interrupted at 50 timesteps" in line and str(tmp_path / "dqn") in line and "--resume" in line
    assert load_run(tmp_path / "dqn").model.num_timesteps == 50
    assert load_json(tmp_path / "dqn" / RUN_FILE)["status"] == "interrupted"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--hyperparams", "learning_rate"], "--hyperparams: expected key=value, got 'learning_rate'"),
        (["--hyperparams", "learning_rat=0.1"], "unknown hyperparameter 'learning_rat' for sb3-dqn"),
        (["--hyperparams", "batch_size=abc"], "hyperparameter batch_size: expected a number, got 'abc'"),
        (["--hyperparams", "net_arch=[64"], "--hyperparams: cannot read value of 'net_arch'"),
        (["--hyperparams", "policy_kwargs=os.system"], "policy_kwargs: expected dict(...)"),
        (["--env-kwargs", "reward_mod=rating"], "--env-kwargs: unknown key 'reward_mod'"),
        (["--env-kwargs", "=rating"], "--env-kwargs: expected key=value, got '=rating'"),
        (["--env-kwargs", "reward_mode=bogus"], "reward_mode"),
        (["--env-kwargs", "data=synthetic"], "--env-kwargs: give the data with --data"),
        (["--env", "rlrec/Nope-v0"], "--env: unknown Gymnasium id 'rlrec/Nope-v0'"),
        (["--timesteps", "0"], "--timesteps: must be >= 1, got 0"),
        (["--resume"], "--resume: no run to resume in"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", "--algo", "sb3-dqn", "--data", TINY, "--output", str(tmp_path), *extra]
    assert main(argv) == 2
    line = one_error_line(capsys)
    assert line.startswith("rlrec train: error: ") and message in line
    assert not (tmp_path / "sb3-dqn" / "model.zip").exists()


def _every_parser(parser):
    import argparse

    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _every_parser(child)


def test_every_option_of_every_subcommand_has_help() -> None:
    import argparse

    from rlrec.cli import build_parser

    missing = [
        f"{parser.prog} {'/'.join(action.option_strings) or action.dest}"
        for parser in _every_parser(build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction | argparse._HelpAction)
        and action.help != argparse.SUPPRESS
        and not (action.help or "").strip()
    ]
    assert missing == []


def test_benchmark_help_names_every_entry_and_baseline(capsys) -> None:
    from rlrec.evaluation.baselines import BASELINES
    from rlrec.experiments.benchmark import BENCHMARK_SETUPS

    with pytest.raises(SystemExit):
        main(["benchmark", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in [*BENCHMARK_SETUPS, *BASELINES]:
        assert name in text.replace("- ", "-"), name


def test_the_default_output_is_per_env(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = "synthetic:n_users=10,n_movies=40,n_ratings=120,seed=3"
    common = ["train", "--algo", "dqn", "--data", data, "--timesteps", "30"]
    assert main(common) == 0
    assert main([*common, "--env", "rlrec/MovieLensSession-v0"]) == 0  # no clash with the first run
    assert (tmp_path / "runs" / "MovieLens-v0" / "dqn" / "run.json").is_file()
    assert (tmp_path / "runs" / "MovieLensSession-v0" / "dqn" / "run.json").is_file()
