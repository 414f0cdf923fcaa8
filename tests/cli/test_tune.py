"""``rlrec tune`` from the command line (in-process): output, default storage, one-line errors."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest

from rlrec.cli import main

optuna.logging.set_verbosity(optuna.logging.WARNING)

DATA = "synthetic:n_users=60,n_movies=200,n_ratings=3000"


def test_tune_uses_sqlite_in_cwd_and_prints_the_best_trial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code = main(
        [
            "tune",
            "--algo",
            "sb3-dqn",
            "--data",
            DATA,
            "--n-trials",
            "2",
            "--timesteps",
            "200",
            "--study-name",
            "cli",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert (tmp_path / "rlrec-tune.db").is_file()
    assert "study 'cli' in sqlite:///rlrec-tune.db: 2 trials" in out
    assert "this worker ran 2" in out
    study = optuna.load_study(study_name="cli", storage="sqlite:///rlrec-tune.db")
    best = study.best_trial
    assert f"best trial: {best.number}, validation ndcg@10 = {best.value:.4f}" in out
    assert f"  learning_rate: {best.params['learning_rate']}" in out
    # Default storage: no --storage in the retrain command.
    expected = f"retrain: rlrec train --algo sb3-dqn --data {DATA} --from-trial cli:{best.number}"
    assert re.search(f"^{re.escape(expected)}$", out, re.M)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--storage", "nosuchdb://x"], "rlrec tune: error: --storage: cannot use 'nosuchdb://x'"),
        (["--storage", "tune.db"], "rlrec tune: error: --storage: 'tune.db' is not a database URL"),
        (["--n-trials", "0"], "rlrec tune: error: --n-trials: must be >= 1, got 0"),
    ],
)
def test_tune_errors_are_one_line(
    args: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    code = main(["tune", "--algo", "sb3-dqn", "--data", DATA, *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(message)
    assert err.count("\n") == 1


def test_tune_refuses_to_mix_algos_in_one_study(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    optuna.create_study(
        study_name="s", storage="sqlite:///rlrec-tune.db", direction="maximize"
    ).set_user_attr("algo", "ppo")
    code = main(["tune", "--algo", "sb3-dqn", "--data", DATA, "--study-name", "s", "--n-trials", "1"])
    assert code == 2
    assert "--study-name: study 's' tunes 'ppo', not 'sb3-dqn'" in capsys.readouterr().err
