"""What TensorBoard reads of a run: one HParams key set for every learner, and the ranking chart."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.hparams import plugin_data_pb2

from rlrec.experiments.training import train

TINY = "synthetic:n_users=10,n_movies=40,n_ratings=120,seed=3"
RUNS = [
    ("qlearning", "rlrec/MovieLens-v0", {}),
    ("dqn", "rlrec/MovieLens-v0", {"learning_starts": 10}),
    ("sb3-dqn", "rlrec/MovieLens-v0", {"learning_starts": 10}),
    ("ppo", "rlrec/MovieLensSession-v0", {"n_envs": 2, "batch_size": 16}),
    ("slateq", "rlrec/MovieLensSlate-v0", {"learning_starts": 10}),
]


def _summaries(run_dir: Path) -> dict[str, object]:
    found: dict[str, object] = {}
    for path in run_dir.glob("events.out.tfevents.*"):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                found[value.tag] = value
    return found


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    root = tmp_path_factory.mktemp("tb")
    out = {}
    for algo, env_id, overrides in RUNS:
        result = train(
            algo, data=TINY, env_id=env_id, hyperparams=overrides, timesteps=40, output=root / "models",
            tensorboard_log=root / "tb",
        )  # fmt: skip
        out[algo] = _summaries(Path(result.config["tensorboard_run"]))
    return out


def _hparams(summaries: dict[str, object]) -> dict[str, object]:
    value = summaries["_hparams_/session_start_info"]
    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)  # type: ignore[attr-defined]
    return dict(data.session_start_info.hparams)


def test_every_learner_writes_the_same_hparams_keys_with_the_same_types(runs) -> None:
    keys = {algo: sorted(_hparams(summaries)) for algo, summaries in runs.items()}
    assert len({tuple(k) for k in keys.values()}) == 1, keys
    assert {"algo", "env_id", "batch_size", "net_arch", "env/hidden_fraction", "env/slate_size"} <= set(
        keys["qlearning"]
    )
    kinds = {algo: {k: v.WhichOneof("kind") for k, v in _hparams(s).items()} for algo, s in runs.items()}
    assert len({tuple(sorted(k.items())) for k in kinds.values()}) == 1
    ppo, qlearning = _hparams(runs["ppo"]), _hparams(runs["qlearning"])
    assert ppo["algo"].string_value == "ppo" and ppo["env/hidden_fraction"].number_value == 0.8
    assert ppo["learning_rate"].number_value == pytest.approx(3e-3)  # lin_3e-3: its start
    assert math.isnan(qlearning["env/hidden_fraction"].number_value)  # not an option of its env
    assert qlearning["policy_kwargs"].string_value == "-"


def test_every_run_has_the_ranking_chart_with_its_references(runs) -> None:
    for summaries in runs.values():
        value = summaries["custom_scalars__config__"]
        layout = layout_pb2.Layout.FromString(value.tensor.string_val[0])  # type: ignore[attr-defined]
        (chart,) = [c for category in layout.category for c in category.chart]
        assert list(chart.multiline.tag) == [
            r"^eval/ndcg@10$",
            r"^eval/popularity_ndcg@10$",
            r"^eval/ease_ndcg@10$",
        ]
