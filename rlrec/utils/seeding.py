"""The one place where randomness is seeded."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int | None) -> np.random.Generator:
    """Seed Python, NumPy's legacy global state and torch; return a fresh ``Generator``.

    Learners draw from the returned generator, never from global state, so that two runs with
    the same seed give the same numbers on the CPU.

    :param seed: the seed; ``None`` draws one from the OS (not reproducible).
    """
    if seed is not None:
        random.seed(seed)
        np.random.seed(seed % 2**32)  # noqa: NPY002 - third-party code (SB3) draws from the legacy state
        torch.manual_seed(seed)
    return np.random.default_rng(seed)


def set_torch_threads(n_threads: int | None = None) -> None:
    """Use at most the cores we have: oversubscribing 2 cores with intra-op threads halves speed."""
    if n_threads is None:
        n_threads = max(1, min(4, os.cpu_count() or 1))
    torch.set_num_threads(n_threads)
