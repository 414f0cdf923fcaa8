"""``rlrec train --eval-freq``: ranking metrics in TensorBoard, best_model kept; one scalar per
step; the same HParams keys for every learner."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from rlrec.cli import main

SYNTH = "synthetic:n_users=30,n_movies=80,n_ratings=600,seed=1"


def _events(run: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(run), size_guidance={"scalars": 0})
    accumulator.Reload()
    return accumulator


def _train(tmp_path: Path, algo: str, *extra: str) -> tuple[Path, Path]:
    tb, out = tmp_path / "tb", tmp_path / "models"
    argv = ["train", "--algo", algo, "--data", SYNTH, "-tb", str(tb), "-o", str(out), *extra]
    assert main(argv) == 0
    (run,) = [path for path in tb.iterdir() if path.name.startswith(algo)]
    return run, out / algo


@pytest.mark.slow
def test_eval_freq_logs_ranking_metrics_and_keeps_the_best_model(tmp_path: Path) -> None:
    run, run_dir = _train(
        tmp_path, "sb3-dqn", "--env", "rlrec/MovieLensSession-v0", "-n", "1280", "--eval-freq", "320",
        "--hyperparams", "n_envs=4",
    )  # fmt: skip
    events = _events(run)
    tags = set(events.Tags()["scalars"])
    assert {"eval/ndcg@10", "eval/precision@10", "eval/recall@10", "eval/popularity_ndcg@10"} <= tags
    assert "eval/ease_ndcg@10" in tags
    steps = [event.step for event in events.Scalars("eval/ndcg@10")]
    assert steps == [320, 640, 960, 1280]
    record = json.loads((run_dir / "evaluations.json").read_text())
    assert [row["timesteps"] for row in record["evaluations"]] == steps
    best = max(record["evaluations"], key=lambda row: row["ndcg@10"])
    assert record["best"]["timesteps"] == best["timesteps"]
    assert (run_dir / "best_model.zip").is_file()
    from stable_baselines3 import DQN

    assert DQN.load(run_dir / "best_model.zip").num_timesteps == best["timesteps"]
    # The run trained on the fit part; run.json says which validation part was carved out of train.
    config = json.loads((run_dir / "run.json").read_text())
    assert config["run_info"]["eval_freq"] == 320
    assert config["run_info"]["validation"]["test_ratings"] > 0
    assert (
        config["dataset"]["ratings"]
        == config["run_info"]["split"]["train_ratings"] - config["run_info"]["validation"]["test_ratings"]
    )


@pytest.mark.slow
def test_each_scalar_is_written_once_per_step(tmp_path: Path) -> None:
    # 16 short sessions end at the same steps: SB3 dumps its logs once per finished episode.
    run, _ = _train(
        tmp_path, "sb3-dqn", "--env", "rlrec/MovieLensSession-v0", "-n", "640", "--eval-freq", "0",
        "--hyperparams", "n_envs=16", "--env-kwargs", "max_episode_steps=2",
    )  # fmt: skip
    events = _events(run)
    fps = events.Scalars("time/fps")
    assert len(fps) > 1
    counts = Counter(event.step for event in fps)
    assert max(counts.values()) == 1


def _hparam_keys(run: Path) -> set[str]:
    content = _events(run).PluginTagToContent("hparams")["_hparams_/session_start_info"]
    data = plugin_data_pb2.HParamsPluginData.FromString(content)
    return set(data.session_start_info.hparams)


def _hparam_metrics(run: Path) -> set[str]:
    content = _events(run).PluginTagToContent("hparams")["_hparams_/experiment"]
    data = plugin_data_pb2.HParamsPluginData.FromString(content)
    return {info.name.tag for info in data.experiment.metric_infos}


@pytest.mark.slow
def test_every_learner_records_the_same_hparams_keys(tmp_path: Path) -> None:
    keys = {}
    for algo in ("qlearning", "dqn", "sb3-dqn"):
        run, _ = _train(tmp_path / algo, algo, "-n", "200", "--env-kwargs", "reward_mode=rating")
        keys[algo] = _hparam_keys(run)
        assert {"algo", "env_id", "data", "seed", "env/reward_mode"} <= keys[algo]
        assert "eval/ndcg@10" in _hparam_metrics(run)
    assert keys["qlearning"] & keys["dqn"] & keys["sb3-dqn"] >= {"data", "env/reward_mode", "learning_rate"}
