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


def test_the_demo_runs_twice_in_a_row_and_ends_with_its_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    demo = load_script("demo")
    argv = ["--data", "synthetic:n_users=60,n_movies=120,n_ratings=2000,seed=2", "--budget-scale", "0.02",
            "--out", str(tmp_path / "demo_out")]  # fmt: skip
    for _ in range(2):  # its own folder, replaced each time
        assert demo.main(argv) == 0
        last = capsys.readouterr().out.strip().splitlines()[-1]
        assert last.startswith("ppo-session (SB3 PPO, session recipe): held-out NDCG@10 ")
        assert "popularity's" in last and "its prior alone scores" in last
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("not the demo's")
    assert demo.main([*argv[:-1], str(tmp_path / "mine")]) == 2  # a folder it did not write is kept
    assert (tmp_path / "mine" / "notes.txt").exists()
