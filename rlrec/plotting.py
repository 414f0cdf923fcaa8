"""Learning curves read back from TensorBoard event files, drawn with matplotlib.

Every learner (SB3's and ours) writes through SB3's logger into ``<tensorboard_log>/<algo>_<n>/``,
so one reader serves them all: :func:`find_runs` lists the run folders under a root,
:func:`read_scalars` reads a run's scalars with TensorBoard's own ``EventAccumulator``,
:func:`draw_learning_curves` draws one line per run in one panel per tag, and
:func:`plot_learning_curves` does all three into a PNG.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.hparams import plugin_data_pb2

from rlrec.utils.io import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "DEFAULT_TAGS",
    "draw_learning_curves",
    "find_runs",
    "plot_learning_curves",
    "read_scalars",
    "run_identity",
]

#: The curves ``rlrec plot`` draws: the episode return, the training loss (SB3's tag names) and the
#: ranking metric of ``rlrec train --eval-freq``.
DEFAULT_TAGS: tuple[str, ...] = ("rollout/ep_rew_mean", "train/loss", "eval/ndcg@10")
#: Baselines drawn as horizontal lines on an ``eval/<metric>`` panel, read from the tags
#: ``eval/<baseline>_<metric>`` that ``RankingEvalCallback`` logs beside the learner's metric.
REFERENCE_BASELINES: tuple[str, ...] = ("popularity", "ease")

_EVENT_PREFIX = "events.out.tfevents."


def find_runs(root: str | os.PathLike[str]) -> list[Path]:
    """Every folder under ``root`` (itself included) that holds a TensorBoard event file, sorted.

    :param root: a folder such as a ``--tensorboard-log`` folder.
    :raises FileNotFoundError: when ``root`` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    runs = {path.parent for path in root.rglob(f"{_EVENT_PREFIX}*") if path.is_file()}
    return sorted(runs)


def read_scalars(run_dir: str | os.PathLike[str], tags: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """The scalars of one run as ``{tag: (n, 2) float64 array of (step, value)}``, sorted by step.

    A run resumed with ``reset_num_timesteps=False`` writes a second event file into the same folder;
    the accumulator merges them. Tags the run did not write are left out.

    :param run_dir: a folder holding event files (one of :func:`find_runs`).
    :param tags: the tags to keep; default: all scalar tags.
    """
    # size_guidance 0 keeps every point (the default samples scalars down to 10,000).
    accumulator = EventAccumulator(str(run_dir), size_guidance={SCALARS: 0})
    accumulator.Reload()
    available = accumulator.Tags().get(SCALARS, [])
    asked = None if tags is None else [*tags, *(ref for tag in tags for ref in _reference_tags(tag).values())]
    wanted = available if asked is None else [tag for tag in asked if tag in available]
    scalars: dict[str, np.ndarray] = {}
    for tag in wanted:
        events = accumulator.Scalars(tag)
        points = np.array([(event.step, event.value) for event in events], dtype=np.float64).reshape(-1, 2)
        scalars[tag] = points[np.argsort(points[:, 0], kind="stable")]
    return scalars


def draw_learning_curves(
    curves: Mapping[str, Mapping[str, np.ndarray]],
    tags: Sequence[str] = DEFAULT_TAGS,
    title: str = "",
    envs: Mapping[str, str] | None = None,
) -> Figure:
    """A figure with one panel per tag and one line per run (no file written).

    A run keeps one colour in every panel. A tag no run logged gets no panel. The episode return
    (``rollout/*``) of runs on different envs is on different scales (a session's few hits
    against MovieLens-v0's summed ratings): given ``envs``, it gets one panel per env.

    :param curves: ``{run label: {tag: (n, 2) array of (step, value)}}`` as :func:`read_scalars` gives.
    :param tags: the panels' tags, in this order.
    :param title: the figure's title.
    :param envs: ``{run label: env id}``, for the per-env reward panels; default: one panel per tag.
    """
    palette = colormaps["tab10"]  # 10 distinct colours, sampled at 0, 0.1, ..., 0.9
    colours = {label: palette((number % 10) / 10 + 0.05) for number, label in enumerate(sorted(curves))}
    panels = _panels(curves, tags, envs or {})
    # A bare Figure (not pyplot): no global state, no GUI backend, nothing to close.
    fig = Figure(figsize=(6.0 * max(1, len(panels)), 4.2), layout="tight")
    axes = fig.subplots(1, max(1, len(panels)), squeeze=False)[0]
    for ax, (panel_title, tag, labels) in zip(axes, panels):
        for label in labels:
            points = curves[label][tag]
            ax.plot(points[:, 0], points[:, 1], label=label, linewidth=1.4, color=colours[label])
        _draw_references(ax, tag, {label: curves[label] for label in labels})
        ax.set_title(panel_title)
        ax.set_xlabel("timesteps")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(title)
    return fig


def _panels(
    curves: Mapping[str, Mapping[str, np.ndarray]], tags: Sequence[str], envs: Mapping[str, str]
) -> list[tuple[str, str, list[str]]]:
    """(title, tag, runs drawn) per panel: none for a tag nobody logged, one per env for returns."""
    panels = []
    for tag in tags:
        labels = [label for label in curves if tag in curves[label]]
        if not labels:
            continue
        families = sorted({envs.get(label, "") for label in labels})
        if tag.startswith("rollout/") and len(families) > 1:
            for env in families:
                chosen = [label for label in labels if envs.get(label, "") == env]
                panels.append((f"{tag} ({env.rsplit('/', 1)[-1] or 'env not recorded'})", tag, chosen))
        else:
            panels.append((tag, tag, labels))
    return panels


def _reference_tags(tag: str) -> dict[str, str]:
    """``{baseline: its tag}`` for an ``eval/<metric>`` tag (``eval/ndcg@10`` -> ``eval/ease_ndcg@10``)."""
    if not tag.startswith("eval/"):
        return {}
    metric = tag.removeprefix("eval/")
    return {name: f"eval/{name}_{metric}" for name in REFERENCE_BASELINES}


def _draw_references(ax: Any, tag: str, curves: Mapping[str, Mapping[str, np.ndarray]]) -> None:
    """Dashed horizontal lines, labelled, for each baseline value the runs logged beside ``tag``."""
    styles = ("--", ":", "-.")
    for number, (name, ref_tag) in enumerate(_reference_tags(tag).items()):
        values = sorted({round(float(s[ref_tag][-1, 1]), 4) for s in curves.values() if ref_tag in s})
        for value in values:
            ax.axhline(value, color="black", linestyle=styles[number % len(styles)], linewidth=1.0,
                       label=f"{name} {value:.4f}")  # fmt: skip


def plot_learning_curves(
    runs_dir: str | os.PathLike[str],
    output: str | os.PathLike[str],
    tags: Sequence[str] = DEFAULT_TAGS,
    title: str | None = None,
) -> Path:
    """Draw the curves of every run under ``runs_dir`` into a PNG written atomically.

    :param runs_dir: root folder searched for runs (see :func:`find_runs`); each line is labelled
        with the run's algo, env and folder (``dqn on MovieLens-v0 (dqn_1)``).
    :param output: the PNG to write.
    :param tags: one panel per tag, default :data:`DEFAULT_TAGS`.
    :param title: figure title; default: the folder name.
    :return: the path of the PNG.
    :raises FileNotFoundError: ``runs_dir`` is not a folder.
    :raises ValueError: no run under ``runs_dir``, or no run logged any of ``tags``.
    """
    root = Path(runs_dir)
    runs = find_runs(root)
    if not runs:
        raise ValueError(f"{root}: no TensorBoard event files found (train with --tensorboard-log {root})")
    identities = {run: run_identity(run) for run in runs}
    labels = {run: _label(run, root, identities[run]) for run in runs}
    curves = {labels[run]: read_scalars(run, tags) for run in runs}
    if not any(curves.values()):
        raise ValueError(f"{root}: no run logged any of {', '.join(tags)}")
    envs = {labels[run]: identities[run].get("env_id", "") for run in runs}
    fig = draw_learning_curves(curves, tags, title if title is not None else root.resolve().name, envs)
    with atomic_path(output, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return Path(output)


def run_identity(run_dir: str | os.PathLike[str]) -> dict[str, str]:
    """``{"algo": ..., "env_id": ...}`` of a run, from the HParams record every rlrec run writes
    at its start ({} for a run without one)."""
    for path in sorted(Path(run_dir).glob(f"{_EVENT_PREFIX}*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.tag == "_hparams_/session_start_info":
                    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                    hparams = data.session_start_info.hparams
                    return {key: hparams[key].string_value for key in ("algo", "env_id") if key in hparams}
    return {}


def _label(run: Path, root: Path, identity: Mapping[str, str]) -> str:
    """``dqn on MovieLensSession-v0 (dqn_1)``; the folder alone for a run that recorded neither."""
    folder = root.resolve().name if run == root else run.relative_to(root).as_posix()
    if "algo" in identity and "env_id" in identity:
        return f"{identity['algo']} on {identity['env_id'].rsplit('/', 1)[-1]} ({folder})"
    return folder
