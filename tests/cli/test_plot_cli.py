"""`rlrec plot`: learning curves read back from event files written with known values."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from rlrec.cli import main
from rlrec.plotting import draw_learning_curves, find_runs, plot_learning_curves, read_scalars
from rlrec.utils.logging import make_logger

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_run(root: Path, name: str, points: dict[str, list[tuple[int, float]]]) -> Path:
    """A run folder written through SB3's logger (what every learner uses), with the given scalars."""
    logger = make_logger(str(root), name)
    steps = sorted({step for series in points.values() for step, _ in series})
    for step in steps:
        for tag, series in points.items():
            for at, value in series:
                if at == step:
                    logger.record(tag, value)
        logger.dump(step)
    logger.close()
    run_dir = logger.get_dir()
    assert run_dir is not None
    return Path(run_dir)


@pytest.fixture()
def runs(tmp_path: Path) -> Path:
    root = tmp_path / "tb"
    write_run(
        root, "sb3-dqn", {"rollout/ep_rew_mean": [(10, 1.0), (20, 2.5), (30, 3.0)], "train/loss": [(20, 0.5)]}
    )
    write_run(
        root / "other", "dqn", {"rollout/ep_rew_mean": [(5, -1.0), (15, 0.25)], "time/fps": [(15, 99.0)]}
    )
    return root


def test_read_scalars_gives_back_what_was_logged(runs: Path) -> None:
    found = find_runs(runs)
    assert [run.relative_to(runs).as_posix() for run in found] == ["other/dqn_1", "sb3-dqn_1"]
    scalars = read_scalars(runs / "sb3-dqn_1", ["rollout/ep_rew_mean", "train/loss", "not/logged"])
    assert set(scalars) == {"rollout/ep_rew_mean", "train/loss"}
    np.testing.assert_array_equal(scalars["rollout/ep_rew_mean"], [[10, 1.0], [20, 2.5], [30, 3.0]])
    np.testing.assert_array_equal(scalars["train/loss"], [[20, 0.5]])
    assert "time/fps" in read_scalars(runs / "other" / "dqn_1")


def test_draw_one_panel_per_tag_one_line_per_run(runs: Path) -> None:
    curves = {run.relative_to(runs).as_posix(): read_scalars(run) for run in find_runs(runs)}
    fig = draw_learning_curves(curves, ("rollout/ep_rew_mean", "train/loss"), title="t")
    reward, loss = fig.axes
    assert reward.get_title() == "rollout/ep_rew_mean" and loss.get_title() == "train/loss"
    lines = {line.get_label(): line for line in reward.get_lines()}
    assert set(lines) == {"other/dqn_1", "sb3-dqn_1"}
    np.testing.assert_array_equal(lines["other/dqn_1"].get_xydata(), [[5, -1.0], [15, 0.25]])
    assert [line.get_label() for line in loss.get_lines()] == ["sb3-dqn_1"]


def test_plot_cli_writes_a_png(runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "out" / "curves.png"
    assert main(["plot", str(runs), "-o", str(output)]) == 0
    assert "learning curves of 2 runs" in capsys.readouterr().out
    assert output.read_bytes()[:8] == PNG_MAGIC
    image = matplotlib.image.imread(output)
    assert image.shape[1] > image.shape[0] > 100  # two panels side by side
    assert [p.name for p in output.parent.iterdir()] == ["curves.png"]  # no temporary file left


def test_plot_of_a_training_run(tmp_path: Path) -> None:
    from rlrec.experiments.training import train

    train(
        "qlearning",
        data="synthetic:n_users=10,n_movies=40,n_ratings=120,seed=3",
        timesteps=300,
        output=tmp_path / "models",
        tensorboard_log=tmp_path / "tb",
    )
    path = plot_learning_curves(tmp_path / "tb", tmp_path / "c.png")
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert (
        len(read_scalars(tmp_path / "tb" / "qlearning_1", ["rollout/ep_rew_mean"])["rollout/ep_rew_mean"]) > 1
    )


@pytest.mark.parametrize("make", [lambda p: p.mkdir(), lambda p: None])
def test_plot_without_runs_is_one_line_exit_2(
    make: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "empty"
    make(folder)  # type: ignore[operator]
    assert main(["plot", str(folder), "-o", str(tmp_path / "c.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"rlrec plot: error: {folder}")
    assert not (tmp_path / "c.png").exists()


def test_a_run_keeps_its_colour_and_returns_get_a_panel_per_env(tmp_path: Path) -> None:
    root = tmp_path / "tb"
    for name, reward in (("a", 700.0), ("b", 2.0)):
        write_run(root, name, {"rollout/ep_rew_mean": [(10, reward)], "train/loss": [(10, 0.1)]})
    curves = {run.name: read_scalars(run) for run in find_runs(root)}
    envs = {"a_1": "rlrec/MovieLens-v0", "b_1": "rlrec/MovieLensSession-v0"}
    fig = draw_learning_curves(curves, ("rollout/ep_rew_mean", "train/loss", "eval/ndcg@10"), envs=envs)
    titles = [ax.get_title() for ax in fig.axes]
    # Rewards on two scales get two panels; eval/ndcg@10, logged by no run, gets none.
    assert titles == [
        "rollout/ep_rew_mean (MovieLens-v0)",
        "rollout/ep_rew_mean (MovieLensSession-v0)",
        "train/loss",
    ]
    colour = {
        (ax.get_title(), line.get_label()): line.get_color() for ax in fig.axes for line in ax.get_lines()
    }
    assert colour[(titles[0], "a_1")] == colour[("train/loss", "a_1")]
    assert colour[(titles[1], "b_1")] == colour[("train/loss", "b_1")]
    assert colour[("train/loss", "a_1")] != colour[("train/loss", "b_1")]


def test_run_names_say_algo_and_env(tmp_path: Path) -> None:
    from rlrec.experiments.training import train
    from rlrec.plotting import _label, run_identity

    data = "synthetic:n_users=10,n_movies=40,n_ratings=120,seed=3"
    train("qlearning", data=data, timesteps=50, output=tmp_path / "m", tensorboard_log=tmp_path / "tb")
    (run,) = find_runs(tmp_path / "tb")
    identity = run_identity(run)
    assert identity == {"algo": "qlearning", "env_id": "rlrec/MovieLens-v0"}
    assert _label(run, tmp_path / "tb", identity) == "qlearning on MovieLens-v0 (qlearning_1)"
