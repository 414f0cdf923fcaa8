"""The one place where a hyperparameter becomes an SB3 schedule (``progress_remaining -> value``).

RL Baselines3 Zoo writes a linear decay to 0 as ``"lin_<initial>"``; SB3 takes a number or a
callable. Our learners and ``rlrec train`` read all three forms here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from stable_baselines3.common.utils import LinearSchedule

__all__ = ["Schedule", "schedule_from", "schedule_json"]

Schedule = Callable[[float], float]
_LINEAR = re.compile(r"^lin_([+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)$")


def schedule_from(value: float | str | Schedule, key: str = "learning_rate") -> Schedule:
    """``value`` as a schedule: a number is constant, ``"lin_<x>"`` decays linearly from ``x`` at
    the start (progress 1) to 0 at the end, a callable is used as it is."""
    if isinstance(value, str):
        match = _LINEAR.match(value.strip())
        if match is None:
            raise ValueError(f"hyperparameter {key}: expected a number or 'lin_<number>', got {value!r}")
        return LinearSchedule(float(match[1]), 0.0, 1.0)
    if callable(value):
        return value
    number = float(value)
    return lambda _: number


def schedule_json(value: Any, key: str = "learning_rate") -> float | str:
    """How a schedule is saved: a number, or ``"lin_<x>"`` for a linear decay to 0 from ``x``."""
    if isinstance(value, LinearSchedule) and value.end == 0.0 and value.end_fraction == 1.0:
        return f"lin_{value.start:g}"
    if isinstance(value, str):
        schedule_from(value, key)
        return value
    if callable(value):
        raise ValueError(f"{key}: only a number, 'lin_<x>' or LinearSchedule(x, 0, 1) can be saved")
    return float(value)
