"""Policies that never pick a movie the observation already shows (SB3's ``policy`` argument).

In ``rlrec/MovieLensSession-v0`` with ``show_misses=True`` an observation is non-zero exactly on
the movies that may not be recommended any more: those visible at reset, the hits found and the
misses tried. Masking those movies when acting is then the env's own ``action_masks()``, read from
the observation: what MaskablePPO does for PPO, available to the value-based learners (DQN and
QR-DQN have no masking in SB3) without any env access. Without it a greedy agent keeps
recommending the same miss for the rest of a session, since a miss changes nothing it sees.

Only acting is masked. The loss is SB3's own: with ``gamma=0`` (the session recipes) the target is
the reward and no maximum over next actions is taken.
"""

from __future__ import annotations

import torch
from sb3_contrib.qrdqn.policies import QRDQNPolicy
from stable_baselines3.dqn.policies import DQNPolicy

__all__ = ["UnseenDQNPolicy", "UnseenQRDQNPolicy", "mask_seen"]


def mask_seen(scores: torch.Tensor, observation: torch.Tensor) -> torch.Tensor:
    """``scores`` with ``-inf`` where ``observation`` is non-zero (a row with nothing left keeps all)."""
    seen = observation.reshape(scores.shape) != 0
    seen &= ~seen.all(dim=1, keepdim=True)
    return scores.masked_fill(seen, -torch.inf)


class UnseenDQNPolicy(DQNPolicy):
    """SB3's ``DQNPolicy`` (``MlpPolicy``) whose greedy action skips movies the observation shows.

    Use it as ``DQN(UnseenDQNPolicy, env, ...)`` or, in a zoo YAML, ``policy: rlrec.nn.UnseenDQNPolicy``.
    The observation must have one entry per action (rlrec's envs do).
    """

    def _predict(self, observation: torch.Tensor, deterministic: bool = True) -> torch.Tensor:  # type: ignore[override]
        q_values = self.q_net(observation)
        return mask_seen(q_values, observation).argmax(dim=1).reshape(-1)


class UnseenQRDQNPolicy(QRDQNPolicy):
    """sb3-contrib's ``QRDQNPolicy`` with the greedy action of :class:`UnseenDQNPolicy`."""

    def _predict(self, observation: torch.Tensor, deterministic: bool = True) -> torch.Tensor:  # type: ignore[override]
        q_values = self.quantile_net(observation).mean(dim=1)
        return mask_seen(q_values, observation).argmax(dim=1).reshape(-1)
