"""Make, save and load a model of any ``--algo``, running nothing a file holds."""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm

from rlrec.agents.recipes import split_hyperparams
from rlrec.agents.registry import algo_class, algo_spec
from rlrec.agents.sb3_zip import load_sb3_zip
from rlrec.utils.io import atomic_path

__all__ = ["load_model", "make_model", "save_model"]


def make_model(
    algo: str,
    env: Any,
    model_kwargs: Mapping[str, Any],
    *,
    seed: int | None = 0,
    tensorboard_log: str | None = None,
    verbose: int = 0,
) -> Any:
    """A fresh learner of ``algo`` on ``env`` (an SB3 ``VecEnv`` or a Gymnasium env).

    :param model_kwargs: constructor arguments, e.g. :attr:`RunHyperparams.model_kwargs`.
    :param seed: seeds the learner (SB3: ``set_random_seed``; ours: ``seed_everything``).
    """
    cls = algo_class(algo)
    kwargs = dict(model_kwargs)
    if algo_spec(algo).family == "sb3":
        policy = kwargs.pop("policy", "MlpPolicy")
        return cls(policy, env, seed=seed, tensorboard_log=tensorboard_log, verbose=verbose, **kwargs)
    return cls(env, seed=seed, tensorboard_log=tensorboard_log, verbose=verbose, **kwargs)


def save_model(model: Any, path: str | os.PathLike[str]) -> Path:
    """Save any learner at ``path`` (its final name, with the algo's suffix), atomically.

    Our learners write atomically themselves (``rlrec.utils.io``); SB3's ``save`` writes in place,
    so it writes a temporary file that is renamed when complete.
    """
    target = Path(path)
    if isinstance(model, BaseAlgorithm):
        with atomic_path(target, suffix=target.suffix) as tmp:
            model.save(tmp)
    else:
        model.save(target)
    return target


def load_model(
    algo: str,
    path: str | os.PathLike[str],
    env: Any = None,
    device: str = "auto",
    hyperparams: Mapping[str, Any] | None = None,
) -> Any:
    """Load a model saved by :func:`save_model`, running nothing the file holds.

    Our learners read ``state_dict`` (``weights_only=True``) and JSON. An SB3 zip is never given
    to SB3's ``load`` (which unpickles the zip's ``data``): the model is rebuilt from
    ``hyperparams`` and its weights read alone (:func:`rlrec.agents.sb3_zip.load_sb3_zip`).

    :param hyperparams: the run's hyperparameters (``run.json``'s ``hyperparameters``): the
        recipe the SB3 model is rebuilt from; default: those of the ``run.json`` beside the
        file (a best model's too), else the algo's constructor defaults.
    :raises FileNotFoundError: no such file.
    :raises ValueError: a file ``algo`` cannot read (truncated, damaged, another algo's, not a
        model at all, weights that do not fit the recipe), in one line naming the file; never a
        loader's traceback, never a hint to load it unsafely.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    cls = algo_class(algo)
    try:
        if algo_spec(algo).family == "sb3":
            if hyperparams is None:
                hyperparams = _recorded_hyperparams(path)
            # ``device`` is where to load it now (a model trained on CUDA loads on the CPU).
            kept = {k: v for k, v in hyperparams.items() if k not in ("n_timesteps", "device")}
            recipe = split_hyperparams(algo, kept)
            return load_sb3_zip(cls, path, recipe.model_kwargs, env=env, device=device)
        return cls.load(path, env=env, device=device)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except ValueError as exc:
        if str(path) in str(exc):  # our loaders' own messages already say what is wrong
            raise
        raise ValueError(f"{path}: not a {algo} model rlrec can read ({_unreadable(exc)})") from None
    except Exception as exc:
        raise ValueError(f"{path}: not a {algo} model rlrec can read ({_unreadable(exc)})") from None


def _recorded_hyperparams(model_path: Path) -> dict[str, Any]:
    """The hyperparameters of the ``run.json`` beside ``model_path`` ({} when there is none)."""
    record = model_path.parent / "run.json"
    if not record.is_file():
        return {}
    try:
        recorded = json.loads(record.read_text(encoding="utf-8")).get("hyperparameters", {})
    except (OSError, ValueError, AttributeError):
        raise ValueError(f"{record}: not a run record rlrec can read") from None
    return dict(recorded) if isinstance(recorded, dict) else {}


def _unreadable(exc: BaseException) -> str:
    """Why a model file could not be read, in words of ours: loaders' own messages may advise
    ``weights_only=False`` (running the file's code), which we never want to print."""
    if isinstance(exc, zipfile.BadZipFile):
        return "not a zip archive: truncated or damaged"
    # torch's weights_only loader raises pickle's UnpicklingError: told by name, as rlrec's own
    # code never imports pickle.
    if isinstance(exc, EOFError) or type(exc).__name__ == "UnpicklingError":
        return "truncated, or not written by rlrec"
    if isinstance(exc, KeyError):
        return f"entry {exc} missing: another kind of file"
    if isinstance(exc, RuntimeError):
        return "truncated or damaged archive"
    return f"{type(exc).__name__}: a damaged file or one of another algo"
