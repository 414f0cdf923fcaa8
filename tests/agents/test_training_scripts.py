"""scripts/train_all.py: the three mission learners side by side, then the PNG (tiny budget)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from rlrec.utils.io import load_json

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def load_script(name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_all_trains_the_three_learners_on_the_same_data_and_seed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train_all = load_script("train_all")
    data = "synthetic:n_users=10,n_movies=40,n_ratings=120,seed=3"
    assert train_all.main(["--data", data, "--timesteps", "120", "--seed", "7", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for algo in ("qlearning", "dqn", "sb3-dqn"):
        config = load_json(tmp_path / "models" / algo / "run.json")
        assert (config["data"], config["seed"], config["timesteps_done"]) == (data, 7, 120)
        assert (tmp_path / "tb" / f"{algo}_1").is_dir()
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert f"tensorboard --logdir {tmp_path / 'tb'}" in out


def test_train_all_runs_again_with_force_and_says_so_without(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train_all = load_script("train_all")
    argv = ["--data", "synthetic:n_users=10,n_movies=40,n_ratings=120,seed=3", "--timesteps", "60",
            "--algos", "qlearning", "--out", str(tmp_path)]  # fmt: skip
    assert train_all.main(argv) == 0
    capsys.readouterr()
    assert train_all.main(argv) == 2  # the folder holds the first call's run: one line naming --force
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--force" in err[0] and "Traceback" not in err[0]
    assert train_all.main([*argv, "--force"]) == 0
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == ["qlearning_1"]  # curves not mixed
