"""Loading an SB3 zip without running anything it holds.

SB3's ``load`` unpickles (cloudpickle) every ``":serialized:"`` value of the zip's ``data`` entry:
the policy class, its kwargs, the spaces, the schedules. A shared zip whose ``data`` carries a
payload there runs it on load. rlrec never calls SB3's ``load``: it builds the model afresh from
the run's own recipe (``run.json``'s hyperparameters, the same code path as training), takes the
spaces from the env or from the plain (JSON) fields of ``data``, and then reads the weights
with SB3's ``set_parameters``, which opens only the ``.pth`` entries with
``torch.load(weights_only=True)``. A few plain counters (timesteps done, updates, exploration
rate) come from the JSON as numbers. Nothing of ``data`` is ever unpickled.
"""

from __future__ import annotations

import json
import math
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

__all__ = ["COUNTERS", "load_sb3_zip", "read_zip_data", "spaces_of"]

#: Plain numbers of ``data`` a loaded model takes back: where training stands, for resume.
COUNTERS = {
    "num_timesteps": int,
    "_total_timesteps": int,
    "_num_timesteps_at_start": int,
    "_episode_num": int,
    "_n_updates": int,
    "_n_calls": int,
    "_current_progress_remaining": float,
    "exploration_rate": float,
}
_SPACE_TYPE = re.compile(
    r"^<class 'gymnasium\.spaces\.(box\.Box|discrete\.Discrete|multi_discrete\.MultiDiscrete)'>$"
)


def read_zip_data(path: Path) -> dict[str, Any]:
    """The ``data`` entry of an SB3 zip as JSON (``ValueError`` naming ``path`` otherwise)."""
    try:
        with zipfile.ZipFile(path) as archive:
            text = archive.read("data").decode("utf-8")
    except zipfile.BadZipFile:
        raise ValueError(f"{path}: not a zip archive: truncated or damaged") from None
    except KeyError:
        raise ValueError(f"{path}: no 'data' entry: not an SB3 model") from None
    try:
        data = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"{path}: its 'data' entry is not JSON: not an SB3 model rlrec can read") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: its 'data' entry is not a JSON object")
    return data


def _numbers(text: Any, path: Path, key: str) -> np.ndarray:
    """Numbers of a NumPy ``str()`` (``"[-1. -1. ... -1.]"``) or a scalar repr, never ``eval``ed."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return np.array([float(text)])
    if not isinstance(text, str):
        raise ValueError(f"{path}: observation_space {key} is not written as numbers")
    words = [word for word in text.replace("[", " ").replace("]", " ").split() if word != "..."]
    try:
        return np.array([float(word) for word in words])
    except ValueError:
        raise ValueError(f"{path}: observation_space {key} is not written as numbers") from None


def _plain_space(entry: Any, path: Path, key: str) -> spaces.Space:
    """A Box / Discrete / MultiDiscrete from the plain fields SB3 writes beside its pickle."""
    kind = entry.get(":type:", "") if isinstance(entry, dict) else ""
    match = _SPACE_TYPE.match(str(kind))
    if match is None:
        raise ValueError(f"{path}: {key} is a {kind or 'value'} rlrec cannot rebuild without its pickle")
    try:
        if match.group(1) == "discrete.Discrete":
            return spaces.Discrete(int(entry["n"]), start=int(entry.get("start", 0)))
        if match.group(1) == "multi_discrete.MultiDiscrete":
            return spaces.MultiDiscrete(_numbers(entry["nvec"], path, "nvec").astype(np.int64))
        shape = tuple(int(n) for n in entry["_shape"])
        dtype = np.dtype(str(entry["dtype"]))
        bounds = []
        for side in ("low", "high"):
            values = _numbers(entry.get(f"{side}_repr") or entry[side], path, side)
            # A long array is written summarised ("a b c ... x y z"): only a constant one is exact.
            if len(values) != math.prod(shape) and not (len(values) and np.all(values == values[0])):
                raise ValueError(f"{path}: {key} bounds are summarised; pass the env to load it")
            exact = values.reshape(shape) if len(values) == math.prod(shape) else np.full(shape, values[0])
            bounds.append(exact.astype(dtype))
        return spaces.Box(bounds[0], bounds[1], shape=shape, dtype=dtype)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: {key} lacks its field {exc}") from None


def spaces_of(data: Mapping[str, Any], path: Path) -> tuple[spaces.Space, spaces.Space]:
    """(observation_space, action_space) rebuilt from ``data``'s plain fields."""
    return (
        _plain_space(data.get("observation_space"), path, "observation_space"),
        _plain_space(data.get("action_space"), path, "action_space"),
    )


def load_sb3_zip(
    cls: type, path: Path, model_kwargs: Mapping[str, Any], env: Any = None, device: str = "auto"
) -> Any:
    """An SB3 model of class ``cls`` built from ``model_kwargs`` (the run's recipe, as
    ``rlrec.agents.recipes.split_hyperparams`` gives them) with the weights of the zip at ``path``.

    :param env: the env to attach (resume); None: the spaces come from the zip's plain fields.
    :raises ValueError: a zip whose weights do not fit the recipe, or that is not an SB3 model.
    """
    data = read_zip_data(path)
    kwargs = dict(model_kwargs)
    policy = kwargs.pop("policy", "MlpPolicy")
    model = cls(policy, env=env, device=device, _init_setup_model=False, **kwargs)
    if env is None:
        model.observation_space, model.action_space = spaces_of(data, path)
        n_envs = data.get("n_envs", 1)
        model.n_envs = n_envs if isinstance(n_envs, int) and n_envs >= 1 else 1
    model._setup_model()
    for key, kind in COUNTERS.items():
        value = data.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and hasattr(model, key):
            setattr(model, key, kind(value))
    try:
        model.set_parameters(str(path), exact_match=True, device=device)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: its weights do not fit the run's recipe ({first[:200]})") from None
    return model
