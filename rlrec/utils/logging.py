"""The one logger: SB3's, so hand-written agents and SB3 models write the same TensorBoard tags.

Tags every learner writes (SB3's own names): ``rollout/ep_rew_mean``, ``rollout/ep_len_mean``,
``rollout/exploration_rate``, ``train/loss``, ``time/fps``, ``time/total_timesteps``, plus the
hyperparameters as a TensorBoard HParams entry.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import (
    HParam,
    Logger,
    TensorBoardOutputFormat,
    configure,
    make_output_format,
)
from stable_baselines3.common.utils import get_latest_run_id

__all__ = [
    "CUSTOM_SCALARS",
    "HPARAMS_METRICS",
    "HParamsCallback",
    "OncePerStepTensorBoardFormat",
    "make_logger",
    "record_hparams",
]

#: TensorBoard's Custom Scalars layout every run writes: ``eval/ndcg@10`` drawn on one chart with
#: the popularity and EASE references (``rlrec.evaluation.callbacks.RankingEvalCallback``).
CUSTOM_SCALARS = {
    "ranking (validation)": {
        "ndcg@10 against popularity and EASE": [
            "Multiline",
            [r"^eval/ndcg@10$", r"^eval/popularity_ndcg@10$", r"^eval/ease_ndcg@10$"],
        ],
    },
}
#: The metrics TensorBoard's HParams tab shows for every run (empty for a run that never logs one).
HPARAMS_METRICS = ("eval/ndcg@10", "rollout/ep_rew_mean", "train/loss")


class OncePerStepTensorBoardFormat(TensorBoardOutputFormat):
    """SB3's TensorBoard output, writing each tag at most once per step.

    SB3's off-policy loop dumps its logs once per finished episode, so 64 sessions ending at the
    same step write ``time/fps`` and ``rollout/*`` 64 times at that step; only the first is kept.
    """

    def __init__(self, folder: str) -> None:
        super().__init__(folder)
        self._step: int | None = None
        self._written: set[str] = set()

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        if step != self._step:
            self._step, self._written = step, set()
        fresh = {key: value for key, value in key_values.items() if key not in self._written}
        self._written.update(fresh)
        super().write(fresh, {key: key_excluded[key] for key in fresh if key in key_excluded}, step)


def make_logger(
    tensorboard_log: str | os.PathLike[str] | None,
    tb_log_name: str,
    verbose: int = 0,
    reset_num_timesteps: bool = True,
) -> Logger:
    """SB3's logger with SB3's run folders (``<tensorboard_log>/<tb_log_name>_<n>/``, n the next
    free id, the last one when continuing) and :class:`OncePerStepTensorBoardFormat`."""
    stdout = ["stdout"] if verbose >= 1 else []
    if tensorboard_log is None:
        # SB3's configure(None) makes an empty SB3-<timestamp> folder in the temp dir each time.
        return Logger(folder=None, output_formats=[make_output_format("stdout", "")] if stdout else [])
    run_id = get_latest_run_id(str(tensorboard_log), tb_log_name)
    if reset_num_timesteps or run_id == 0:
        run_id += 1
    folder = os.path.join(str(tensorboard_log), f"{tb_log_name}_{run_id}")
    logger = configure(folder, stdout)
    tensorboard = OncePerStepTensorBoardFormat(folder)
    # TensorBoard's Custom Scalars tab: the ranking metric with its reference baselines on one chart.
    tensorboard.writer.add_custom_scalars(CUSTOM_SCALARS)
    logger.output_formats.append(tensorboard)
    return logger


def _scalar(value: Any) -> float | int | bool | str:
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def record_hparams(logger: Logger, hparams: Mapping[str, Any]) -> None:
    """Write the hyperparameters once, with the metrics TensorBoard's HParams tab should show."""
    metrics: dict[str, float | int] = dict.fromkeys(HPARAMS_METRICS, 0)
    logger.record(
        "hparams",
        HParam({k: _scalar(v) for k, v in hparams.items()}, metrics),
        exclude=("stdout", "log", "json", "csv"),
    )


class HParamsCallback(BaseCallback):
    """Record the run's hyperparameters at the start of training (``rlrec train`` adds it to every
    learner, with the same keys: algo, env, data, seed, hyperparameters, ``env/*``)."""

    def __init__(self, hparams: Mapping[str, Any]) -> None:
        super().__init__()
        self.hparams = hparams

    def _on_training_start(self) -> None:
        record_hparams(self.logger, self.hparams)
        self.logger.dump(self.num_timesteps)

    def _on_step(self) -> bool:
        return True
