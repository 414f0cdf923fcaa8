"""The bootstrap values ``max_a' Q_target(s', a')`` of a sampled batch, as DQN's targets need them.

:class:`TargetValues` is SB3 ``DQN.train``'s computation: the target network on the batch's next
observations. :class:`StateTargetValues` gives the same numbers faster for an env that names its
states (``MovieLens-v0``: the next observation is the next user's profile, a function of the
user index): between two target syncs the target network is frozen, so each state's value is
computed once, on first use, and looked up after. It is exact only with hard target updates
(``tau=1``): a Polyak update changes the target network every sync.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from torch import nn

__all__ = ["StateTargetValues", "TargetValues"]

#: States per forward pass when filling the cache.
_CHUNK = 1024


class TargetValues:
    """``max_a' Q_target(s', a')`` of each row of a batch, from its ``next_observations``.

    :param q_net_target: the target network, ``(B, obs_dim) -> (B, n_actions)``.
    """

    def __init__(self, q_net_target: nn.Module) -> None:
        self.q_net_target = q_net_target

    def __call__(self, batch: ReplayBufferSamples) -> torch.Tensor:
        with torch.no_grad():
            return self.q_net_target(batch.next_observations).max(dim=1).values

    def target_updated(self) -> None:
        """Called after every target sync; nothing is kept here."""


class StateTargetValues(TargetValues):
    """:class:`TargetValues` cached per state between target syncs (hard updates only).

    A batch's ``next_states`` (:class:`~rlrec.nn.buffers.IndexedReplayBufferSamples`) name its
    rows' states; a batch without them falls back to the forward pass.

    :param observations_fn: ``states -> observations`` (the env's ``observations``).
    :param n_states: number of states (``env.unwrapped.n_states``).
    """

    def __init__(
        self,
        q_net_target: nn.Module,
        observations_fn: Callable[[np.ndarray], np.ndarray],
        n_states: int,
    ) -> None:
        super().__init__(q_net_target)
        self.observations_fn = observations_fn
        self.values = np.full(int(n_states), np.nan, dtype=np.float32)

    def __call__(self, batch: ReplayBufferSamples) -> torch.Tensor:
        states = getattr(batch, "next_states", None)
        if states is None:
            return super().__call__(batch)
        missing = np.unique(states[np.isnan(self.values[states])])
        device = batch.next_observations.device
        with torch.no_grad():
            for start in range(0, len(missing), _CHUNK):
                chunk = missing[start : start + _CHUNK]
                obs = torch.as_tensor(self.observations_fn(chunk), dtype=torch.float32, device=device)
                self.values[chunk] = self.q_net_target(obs).max(dim=1).values.cpu().numpy()
        return torch.from_numpy(self.values[states]).to(device)

    def target_updated(self) -> None:
        self.values.fill(np.nan)
