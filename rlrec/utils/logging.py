"""The one logger: SB3's, so hand-written agents and SB3 models write the same TensorBoard tags.

Tags every learner writes (SB3's own names): ``rollout/ep_rew_mean``, ``rollout/ep_len_mean``,
``rollout/exploration_rate``, ``train/loss``, ``time/fps``, ``time/total_timesteps``, plus the
hyperparameters as a TensorBoard HParams entry.
"""

from __future__ import annotations

from typing import Any

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import HParam, Logger
from stable_baselines3.common.utils import configure_logger

__all__ = ["HParamsCallback", "make_logger", "record_hparams"]


def make_logger(
    tensorboard_log: str | None, tb_log_name: str, verbose: int = 0, reset_num_timesteps: bool = True
) -> Logger:
    """SB3's own run-folder logic: ``<tensorboard_log>/<tb_log_name>_<n>/`` with n the next free id."""
    return configure_logger(verbose, tensorboard_log, tb_log_name, reset_num_timesteps)


def _scalar(value: Any) -> float | int | bool | str:
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def record_hparams(logger: Logger, hparams: dict[str, Any]) -> None:
    """Write the hyperparameters once, with the metrics TensorBoard's HParams tab should show."""
    metrics: dict[str, float | int] = {"rollout/ep_rew_mean": 0, "train/loss": 0}
    logger.record(
        "hparams",
        HParam({k: _scalar(v) for k, v in hparams.items()}, metrics),
        exclude=("stdout", "log", "json", "csv"),
    )


class HParamsCallback(BaseCallback):
    """Record the run's hyperparameters at the start of training (used for SB3 models)."""

    def __init__(self, hparams: dict[str, Any]) -> None:
        super().__init__()
        self.hparams = hparams

    def _on_training_start(self) -> None:
        record_hparams(self.logger, self.hparams)
        self.logger.dump(self.num_timesteps)

    def _on_step(self) -> bool:
        return True
