"""SB3's ``VecEnv`` over a batched Gymnasium ``VectorEnv``: one numpy step for all sub-envs.

SB3 steps ``n_envs`` copies of an env in a ``DummyVecEnv``: one Python ``step`` per sub-env and a
copy of each 10,329-float observation. An rlrec env with a batched ``vector_entry_point`` steps
them all as arrays; :class:`GymnasiumVecEnv` hands that batch to SB3 with SB3's conventions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn

from rlrec.utils.arrays import to_host

__all__ = ["GymnasiumVecEnv"]

_FINAL_KEYS = frozenset({"final_obs", "_final_obs", "final_info", "_final_info"})


class GymnasiumVecEnv(VecEnv):
    """A Gymnasium ``VectorEnv`` (autoreset ``SAME_STEP``) seen as an SB3 ``VecEnv``.

    SB3 semantics: a finished sub-env is already reset when ``step`` returns; its last observation
    is ``infos[i]["terminal_observation"]``, its last info the rest of ``infos[i]``, and
    ``infos[i]["TimeLimit.truncated"]`` (in every info, as ``DummyVecEnv`` writes it) is True when
    it was truncated rather than terminated.
    Every ``step`` / ``reset`` returns a fresh observation array. ``env_method("action_masks")``
    returns the vector env's masks row by row (what sb3-contrib's ``MaskablePPO`` calls);
    ``get_attr`` / ``env_method`` otherwise read the vector env itself, the same for every index.

    :param venv: a vector env built with ``autoreset_mode="same_step"``.
    """

    def __init__(self, venv: VectorEnv) -> None:
        mode = venv.metadata.get("autoreset_mode")
        if mode != AutoresetMode.SAME_STEP:
            raise ValueError(f"GymnasiumVecEnv needs a vector env with autoreset_mode SAME_STEP, got {mode}")
        self.venv = venv
        self._actions = np.zeros((venv.num_envs, *(venv.single_action_space.shape or ())), dtype=np.int64)
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)

    def reset(self) -> VecEnvObs:
        seeds: Sequence[int | None] | None = self._seeds if any(s is not None for s in self._seeds) else None
        options = self._options[0] if self._options and self._options[0] else None
        # rlrec's vector envs take one seed per sub-env (Gymnasium's own take an int or a list too).
        obs, info = self.venv.reset(
            seed=None if seeds is None else list(seeds),  # type: ignore[arg-type]
            options=options,
        )
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = self._unbatch(to_host(info))
        return np.array(to_host(obs), copy=True)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape(self.num_envs, *(self.action_space.shape or ()))

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, terminated, truncated, info = to_host(self.venv.step(self._actions))
        dones = np.asarray(terminated) | np.asarray(truncated)
        infos = self._unbatch(info)
        finished = np.flatnonzero(dones)
        if len(finished):
            final_infos = self._unbatch(info["final_info"])
            for i in finished:
                infos[i] = final_infos[i]
                infos[i]["terminal_observation"] = info["final_obs"][i]
        cut_short = np.asarray(truncated) & ~np.asarray(terminated)
        for info_i, cut in zip(infos, cut_short.tolist()):
            info_i["TimeLimit.truncated"] = bool(cut)  # as DummyVecEnv writes it: in every info
        return np.array(obs, copy=True), np.asarray(rewards, dtype=np.float32), dones, infos

    def _unbatch(self, info: dict[str, Any]) -> list[dict[str, Any]]:
        """Gymnasium's dict of arrays (with ``_key`` masks) as SB3's list of dicts."""
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for key, values in info.items():
            if key.startswith("_") or key in _FINAL_KEYS:
                continue
            present = info.get(f"_{key}", np.ones(self.num_envs, dtype=bool))
            for i in np.flatnonzero(present):
                value = values[i]
                infos[i][key] = value.item() if isinstance(value, np.generic) else value
        return infos

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self.venv, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        chosen: Iterable[int] = self._get_indices(indices)
        if method_name == "action_masks":
            masks = to_host(self.venv.action_masks())  # type: ignore[attr-defined]
            return [masks[i] for i in chosen]
        method = getattr(self.venv, method_name)
        return [method(*method_args, **method_kwargs) for _ in chosen]

    def env_is_wrapped(
        self, wrapper_class: type[gymnasium.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        return [False for _ in self._get_indices(indices)]
