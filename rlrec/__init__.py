"""rlrec: MovieLens as a reinforcement-learning recommendation benchmark.

Importing ``rlrec`` registers its Gymnasium environments (``rlrec/MovieLens-v0`` ...).
"""

from __future__ import annotations

__version__ = "0.1.0"

from rlrec.envs import register_envs as _register_envs

_register_envs()
