"""Crossing from a device to the host: what a numpy consumer of a torch-backend env calls."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["to_host"]


def to_host(value: Any) -> Any:
    """``value`` with every torch tensor in it (alone, in a dict, a tuple or an object array) as numpy."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, dict):
        return {key: to_host(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return tuple(to_host(item) for item in value)
    if isinstance(value, np.ndarray) and value.dtype == object:  # e.g. final_obs: rows or None
        return np.array([to_host(item) for item in value] + [None], dtype=object)[:-1]
    return value
