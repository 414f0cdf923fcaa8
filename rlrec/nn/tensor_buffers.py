"""Memories that hold tensors where they already are: what a learner stepping a torch-backend env
(``backend="torch"``) learns from without copying a batch to the host.

* :class:`FreshBatch`: the batch just collected, nothing older (``buffer_size=0``: SlateQ, and the
  session DQN recipe). Takes numpy arrays or tensors.
* :class:`TensorReplayBuffer`: a replay ring of dense tensors on one device. Dense, unlike
  :class:`~rlrec.nn.CompactReplayBuffer` (non-zeros on the host): on a GPU a catalogue-wide row
  is cheap to keep and a gather of sampled rows is one kernel; the memory it needs is checked
  against what the device has free before anything is allocated.

Both answer SB3's ``ReplayBufferSamples`` (``observations, actions, next_observations, dones,
rewards``), ``dones`` as ``(n, 1)`` float32, the other fields as added.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.type_aliases import ReplayBufferSamples

__all__ = ["FreshBatch", "TensorReplayBuffer"]


def _samples(
    device: torch.device, obs: Any, actions: Any, next_obs: Any, dones: Any, rewards: Any
) -> ReplayBufferSamples:
    done = torch.as_tensor(dones, device=device).float().reshape(-1, 1)
    obs_t, actions_t, next_t = (torch.as_tensor(value, device=device) for value in (obs, actions, next_obs))
    return ReplayBufferSamples(obs_t, actions_t, next_t, done, torch.as_tensor(rewards, device=device))


class FreshBatch:
    """The batch of transitions just collected, nothing older (``buffer_size=0``).

    :param device: where the batch is handed over (arrays are copied there; tensors already there
        are not).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._batch: ReplayBufferSamples | None = None

    def add_transitions(
        self,
        obs: Any,
        next_obs: Any,
        actions: Any,
        rewards: Any,
        dones: Any,
        states: Any = None,
        next_states: Any = None,
    ) -> None:
        self._batch = _samples(self.device, obs, actions, next_obs, dones, rewards)

    def latest(self) -> ReplayBufferSamples:
        if self._batch is None:
            raise ValueError("latest: nothing added yet")
        return self._batch

    def sample(self, batch_size: int) -> ReplayBufferSamples:
        raise ValueError("buffer_size=0 learns from each fresh batch: nothing to sample")


def _free_bytes(device: torch.device) -> int:
    """Memory the device has free now: CUDA's ``mem_get_info``, else the host's available pages."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # not POSIX: do not guess, do not refuse
        return np.iinfo(np.int64).max


class TensorReplayBuffer:
    """A replay ring of ``buffer_size`` transitions as dense tensors on ``device``.

    Storage is allocated at the first :meth:`add_transitions`, shaped after it; when it would take
    more than the device has free, that call raises a ``ValueError`` naming ``buffer_size``.
    Sampling draws uniformly among the stored transitions with ``generator`` (on ``device``).

    :param buffer_size: capacity in transitions.
    :param device: where the ring lives.
    :param generator: the ``torch.Generator`` of the draws (seeded by the learner).
    """

    def __init__(self, buffer_size: int, device: torch.device, generator: torch.Generator) -> None:
        if buffer_size < 1:
            raise ValueError(f"buffer_size: must be >= 1, got {buffer_size}")
        self.buffer_size, self.device, self.generator = int(buffer_size), device, generator
        self.pos, self.full = 0, False
        self._store: list[torch.Tensor] = []
        self._latest = torch.empty(0, dtype=torch.int64, device=device)

    def size(self) -> int:
        return self.buffer_size if self.full else self.pos

    def _allocate(self, rows: tuple[torch.Tensor, ...]) -> None:
        needed = self.buffer_size * sum(row[0].numel() * row.element_size() for row in rows)
        free = _free_bytes(self.device)
        if needed > free:
            raise ValueError(
                f"buffer_size: {self.buffer_size:,} transitions need {needed / 1e9:.1f} GB on {self.device}, "
                f"{free / 1e9:.1f} GB free; lower buffer_size, or use backend='numpy' "
                "(CompactReplayBuffer keeps only the non-zeros)"
            )
        self._store = [torch.empty((self.buffer_size, *row.shape[1:]), dtype=row.dtype, device=self.device)
                       for row in rows]  # fmt: skip

    def add_transitions(
        self,
        obs: Any,
        next_obs: Any,
        actions: Any,
        rewards: Any,
        dones: Any,
        states: Any = None,
        next_states: Any = None,
    ) -> None:
        batch = _samples(self.device, obs, actions, next_obs, dones, rewards)
        n = len(batch.observations)
        if n == 0:
            return
        if n > self.buffer_size:
            raise ValueError(f"buffer_size: {self.buffer_size} is smaller than one step's {n} transitions")
        stored = (batch.observations, batch.actions, batch.next_observations, batch.dones, batch.rewards)
        if not self._store:
            self._allocate(stored)
        slots = (self.pos + torch.arange(n, device=self.device)) % self.buffer_size
        for store, values in zip(self._store, stored, strict=True):
            store.index_copy_(0, slots, values.to(store.dtype))
        self._latest = slots
        self.full = self.full or self.pos + n >= self.buffer_size
        self.pos = (self.pos + n) % self.buffer_size

    def _at(self, slots: torch.Tensor) -> ReplayBufferSamples:
        obs, actions, next_obs, dones, rewards = (store.index_select(0, slots) for store in self._store)
        return ReplayBufferSamples(obs, actions, next_obs, dones, rewards)

    def latest(self) -> ReplayBufferSamples:
        """The transitions of the last :meth:`add_transitions`, in order."""
        if not len(self._latest):
            raise ValueError("latest: nothing added yet")
        return self._at(self._latest)

    def sample(self, batch_size: int) -> ReplayBufferSamples:
        """``batch_size`` transitions drawn uniformly, with replacement, among those stored."""
        if self.size() == 0:
            raise ValueError("sample: nothing added yet")
        slots = torch.randint(0, self.size(), (batch_size,), generator=self.generator, device=self.device)
        return self._at(slots)
