"""rlrec data log -> a Minari dataset: read back in a fresh process, replayed in the recovered env."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rlrec.cli import main

TINY = "synthetic:n_users=30,n_movies=50,n_ratings=500,seed=4"
ENV_KWARGS = ["observation=embedding", "embedding_dim=4", "reward_mode=simulated", "user_order=random"]

REPLAY = """
import json, sys
import minari, numpy as np
import rlrec  # registers the ids
dataset = minari.load_dataset(sys.argv[1])
env = dataset.recover_environment()
seeds = {m["id"]: m["seed"] for m in dataset.storage.get_episode_metadata(dataset.episode_indices)}
out = []
for episode in dataset.iterate_episodes():
    obs, _ = env.reset(seed=seeds[episode.id])
    rewards = [env.step(int(a))[1] for a in episode.actions]
    same_obs = bool(np.allclose(obs, episode.observations[0]))
    out.append({"logged": episode.rewards.tolist(), "replayed": rewards, "same_first_obs": same_obs,
                "propensity": episode.infos["propensity"].tolist()})
print(json.dumps(out))
"""


@pytest.fixture()
def minari_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(home))
    return home


def test_logged_dataset_loads_in_a_fresh_process_and_replays_to_the_same_rewards(
    minari_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["data", "log", "--data", TINY, "--env-kwargs", *ENV_KWARGS, "--policy", "popularity",
            "--temperature", "0.5", "--steps", "120", "--seed", "3"]  # fmt: skip
    assert main(argv) == 0
    assert "rlrec/MovieLens/popularity-v0" in capsys.readouterr().out
    env = {**os.environ, "MINARI_DATASETS_PATH": str(minari_home)}
    done = subprocess.run(
        [sys.executable, "-c", REPLAY, "rlrec/MovieLens/popularity-v0"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    episodes = json.loads(done.stdout)
    assert sum(len(e["logged"]) for e in episodes) >= 120
    for episode in episodes:
        np.testing.assert_allclose(episode["replayed"], episode["logged"])
        assert episode["same_first_obs"]
        props = np.asarray(episode["propensity"][1:])
        assert ((props > 0) & (props <= 1)).all()


def test_ope_end_to_end_with_the_truth(
    minari_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    train = ["train", "--algo", "qlearning", "--data", TINY, "--split", "none", "--timesteps", "300",
             "--env-kwargs", "reward_mode=simulated", "user_order=random", "--output", str(runs)]  # fmt: skip
    assert main(train) == 0
    log = ["data", "log", "--data", TINY, "--env-kwargs", "reward_mode=simulated", "user_order=random",
           "--policy", "epsilon-greedy", "--epsilon", "0.5", "--model", str(runs / "qlearning"),
           "--steps", "400"]  # fmt: skip
    assert main(log) == 0
    capsys.readouterr()
    ope = ["ope", "--dataset", "rlrec/MovieLens/epsilon-greedy-v0", "--model", str(runs / "qlearning"),
           "--truth", "--seeds", "2", "--bootstrap", "50"]  # fmt: skip
    assert main(ope) == 0
    out = capsys.readouterr().out
    for name in ("ips", "snips", "dm", "dr", "pdis", "wpdis"):
        assert name in out
    assert "truth" in out and "RMSE" in out
    dr = next(line for line in out.splitlines() if line.startswith("| dr |"))
    assert float(dr.split("|")[6].strip().rstrip("%")) < 50  # DR lands near the truth even on 400 steps


def test_ope_refuses_datasets_it_cannot_read(minari_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ope", "--dataset", "rlrec/Nope/none-v0", "--model", "x"]) == 2
    assert "rlrec ope: error:" in capsys.readouterr().err
