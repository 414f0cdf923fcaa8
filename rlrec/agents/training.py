"""One training run, for every ``--algo``: env, hyperparameters, logging, checkpoints, resume.

A run lives in one folder, ``<output>/<algo>/``::

    run.json     what was trained and how: algo, env id and kwargs, data, hyperparameters, seed,
                 timesteps asked for and done, status, library versions (see :func:`run_config`)
    model.zip    SB3's own zip for SB3 / sb3-contrib models (model.npz / model.pt for ours)

The model file always holds the latest state: periodic checkpoints (every ``checkpoint_freq`` steps)
and the end of training replace it atomically, then ``run.json`` is rewritten. Ctrl-C during
training saves the same way and returns with ``interrupted=True``; ``resume=True`` continues from the
saved model with its step count (``reset_num_timesteps=False``) up to the run's target.

Resuming an SB3 DQN / QR-DQN restarts with an EMPTY replay buffer: the SB3 zip does not hold it and
saving it separately costs as much disk as the buffer's RAM (~0.8 GB at the shipped sizes).
"""

from __future__ import annotations

import datetime as _dt
import functools
import inspect
import os
import platform
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ProgressBarCallback

from rlrec.agents.factory import (
    DEFAULT_ENV_ID,
    algo_spec,
    load_hyperparams,
    load_model,
    make_model,
    save_model,
    split_hyperparams,
)
from rlrec.utils.io import jsonable, load_json, save_json
from rlrec.utils.logging import HParamsCallback, make_logger
from rlrec.utils.seeding import set_torch_threads

if TYPE_CHECKING:
    from rlrec.data.dataset import RatingsDataset

__all__ = [
    "DEFAULT_CHECKPOINT_FREQ",
    "RUN_FILE",
    "AtomicCheckpointCallback",
    "LoadedRun",
    "Recommendation",
    "TrainResult",
    "check_env_kwargs",
    "data_label",
    "load_run",
    "make_training_env",
    "recommend",
    "run_dir_of",
    "top_k_movies",
    "train",
]

RUN_FILE = "run.json"
#: Steps between two checkpoints. Saving an SB3 model of ~10k actions takes well under a second.
DEFAULT_CHECKPOINT_FREQ = 10_000
_VERSIONED = ("rlrec", "stable-baselines3", "sb3-contrib", "gymnasium", "torch", "numpy", "scipy")


@dataclass
class TrainResult:
    """What :func:`train` returns.

    :param model: the trained learner (SB3 model or ours).
    :param run_dir: the run's folder (``<output>/<algo>``).
    :param model_path: the saved model inside it.
    :param config: the content of ``run.json``.
    :param interrupted: ``True`` when Ctrl-C stopped training (the checkpoint is saved).
    """

    model: Any
    run_dir: Path
    model_path: Path
    config: dict[str, Any]
    interrupted: bool = False

    @property
    def timesteps(self) -> int:
        return int(self.model.num_timesteps)


class AtomicCheckpointCallback(BaseCallback):
    """Call ``save()`` every ``save_freq`` environment steps (counted like SB3: ``num_timesteps``).

    SB3's own ``CheckpointCallback`` writes numbered zips in place; ours calls the run's atomic save,
    so a checkpoint is never half-written and one file always holds the latest state.
    """

    def __init__(self, save_freq: int, save: Callable[[], None]) -> None:
        super().__init__()
        if save_freq < 1:
            raise ValueError(f"checkpoint_freq must be >= 1, got {save_freq}")
        self.save_freq = save_freq
        self._save = save
        self._last_saved = 0

    def _on_training_start(self) -> None:
        self._last_saved = self.num_timesteps

    def _on_step(self) -> bool:
        if self.num_timesteps - self._last_saved >= self.save_freq:
            self._save()
            self._last_saved = self.num_timesteps
        return True


# ------------------------------------------------------------------ env
def make_training_env(
    algo: str,
    dataset: RatingsDataset | None,
    env_id: str = DEFAULT_ENV_ID,
    env_kwargs: Mapping[str, Any] | None = None,
    n_envs: int = 1,
    seed: int | None = 0,
) -> Any:
    """The env ``algo`` trains on: an SB3 ``VecEnv`` (with ``Monitor``) for SB3 models, a Gymnasium
    env for ours. The dataset is loaded once and shared by every copy of the env.

    :param dataset: passed as the env's ``data`` argument when its constructor takes one.
    :param env_kwargs: further constructor arguments (``max_episode_steps`` goes to ``gymnasium.make``).
    :param n_envs: SB3 models: number of envs, seeded ``seed + i`` as ``make_vec_env`` does: the
        env's own batched ``vector_entry_point`` behind :class:`rlrec.envs.sb3_vec.GymnasiumVecEnv`
        when it can reset within a step (``MovieLensSession-v0``), else a ``DummyVecEnv``. Our
        learners: one env, or a Gymnasium vector env (the env's own batched
        ``vector_entry_point`` when it has one).
    """
    import gymnasium

    kwargs = _env_kwargs_with_data(env_id, dataset, env_kwargs)
    if algo_spec(algo).family == "sb3":
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

        if _batched_same_step(env_id):
            from rlrec.envs.sb3_vec import GymnasiumVecEnv

            venv = gymnasium.make_vec(
                env_id,
                num_envs=n_envs,
                vectorization_mode="vector_entry_point",
                autoreset_mode="same_step",
                **kwargs,
            )
            vec_env = VecMonitor(GymnasiumVecEnv(venv))
            vec_env.seed(seed)
            return vec_env

        # A callable rather than the id: given an id, make_vec_env asks for render_mode="rgb_array".
        make = functools.partial(gymnasium.make, env_id)
        return make_vec_env(make, n_envs=n_envs, seed=seed, env_kwargs=kwargs, vec_env_cls=DummyVecEnv)
    if n_envs == 1:
        return gymnasium.make(env_id, **kwargs)
    if _batched_same_step(env_id):  # no step wasted on resetting a finished session
        return gymnasium.make_vec(
            env_id,
            num_envs=n_envs,
            vectorization_mode="vector_entry_point",
            autoreset_mode="same_step",
            **kwargs,
        )
    # Gymnasium picks the env's vector_entry_point when it has one, else a SyncVectorEnv.
    return gymnasium.make_vec(env_id, num_envs=n_envs, vectorization_mode=None, **kwargs)


def _batched_same_step(env_id: str) -> bool:
    """Whether ``env_id`` has a batched vector env that can reset within a step (SB3's convention)."""
    import gymnasium

    entry = gymnasium.spec(env_id).vector_entry_point
    if entry is None:
        return False
    params = _constructor_params(entry)
    return params is not None and "autoreset_mode" in params


def check_env_kwargs(env_id: str, env_kwargs: Mapping[str, Any]) -> None:
    """``ValueError`` for an unknown env id or a keyword its constructor does not take."""
    import gymnasium

    try:
        spec = gymnasium.spec(env_id)
    except gymnasium.error.Error as exc:
        raise ValueError(f"--env: unknown Gymnasium id {env_id!r} ({exc})") from None
    if "data" in env_kwargs:
        raise ValueError("--env-kwargs: give the data with --data, not data=")
    params = _constructor_params(spec.entry_point)
    if params is None:  # the constructor takes **kwargs: nothing to check against
        return
    make_args = {"max_episode_steps", "disable_env_checker", "render_mode"}
    for key in env_kwargs:
        if key not in params and key not in make_args:
            known = ", ".join(sorted((set(params) - {"data"}) | make_args))
            raise ValueError(f"--env-kwargs: unknown key {key!r} for {env_id} (known: {known})")


def _constructor_params(entry_point: Any) -> dict[str, inspect.Parameter] | None:
    from gymnasium.envs.registration import load_env_creator

    creator = load_env_creator(entry_point) if isinstance(entry_point, str) else entry_point
    target = creator.__init__ if inspect.isclass(creator) else creator
    params = dict(inspect.signature(target).parameters)
    params.pop("self", None)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return params


def _env_takes_data(env_id: str) -> bool:
    import gymnasium

    params = _constructor_params(gymnasium.spec(env_id).entry_point)
    return params is None or "data" in params


def _env_kwargs_with_data(
    env_id: str, dataset: RatingsDataset | None, env_kwargs: Mapping[str, Any] | None
) -> dict[str, Any]:
    kwargs = dict(env_kwargs or {})
    check_env_kwargs(env_id, kwargs)
    if dataset is not None and _env_takes_data(env_id):
        kwargs["data"] = dataset
    return kwargs


# --------------------------------------------------------------- config
def run_dir_of(output: str | os.PathLike[str], algo: str) -> Path:
    """The folder of ``algo``'s run under ``output``: ``<output>/<algo>``."""
    return Path(output) / algo_spec(algo).name


def data_label(data: Any) -> str:
    """How ``run.json`` names the data: an absolute path for files, the name for the rest."""
    if isinstance(data, str | os.PathLike):
        path = Path(data)
        return str(path.resolve()) if path.exists() else str(data)
    return str(getattr(data, "name", data))


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            import rlrec

            versions[name] = rlrec.__version__ if name == "rlrec" else "not installed"
    return versions


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def run_config(
    algo: str,
    env_id: str,
    env_kwargs: Mapping[str, Any],
    data: Any,
    dataset: RatingsDataset | None,
    hyperparams: Mapping[str, Any],
    seed: int | None,
    timesteps_target: int,
    tensorboard_log: str | None,
    run_info: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The content of a fresh run's ``run.json`` (timesteps done and status are filled in later)."""
    return {
        "algo": algo,
        "env_id": env_id,
        "env_kwargs": jsonable(env_kwargs),
        "data": data_label(data),
        "dataset": dataset.summary() if dataset is not None else None,
        "hyperparameters": jsonable(hyperparams),
        "seed": seed,
        "timesteps_target": int(timesteps_target),
        "timesteps_done": 0,
        "status": "running",
        "model_file": algo_spec(algo).model_file,
        "tensorboard_log": None if tensorboard_log is None else str(Path(tensorboard_log).resolve()),
        "tensorboard_run": None,
        "train_seconds": 0.0,
        "started_at": _now(),
        "updated_at": _now(),
        "versions": library_versions(),
        "run_info": jsonable(run_info or {}),
    }


# ---------------------------------------------------------------- train
def train(
    algo: str,
    data: str | os.PathLike[str] | RatingsDataset | None = "synthetic",
    env_id: str = DEFAULT_ENV_ID,
    env_kwargs: Mapping[str, Any] | None = None,
    hyperparams: Mapping[str, Any] | None = None,
    timesteps: int | None = None,
    seed: int | None = 0,
    tensorboard_log: str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] = "runs/models",
    progress: bool = False,
    resume: bool = False,
    checkpoint_freq: int | None = DEFAULT_CHECKPOINT_FREQ,
    callbacks: Sequence[BaseCallback] = (),
    verbose: int = 0,
    run_info: Mapping[str, Any] | None = None,
    torch_threads: int | None = 1,
) -> TrainResult:
    """Train ``algo`` and save it in ``<output>/<algo>/`` (see the module docstring for the layout).

    :param algo: one of ``rlrec.agents.factory.ALGOS``.
    :param data: anything ``rlrec.data.load_movielens`` takes (a ``RatingsDataset`` too, e.g. the train
        part of a split). On ``resume``, ``None`` means the run's own data.
    :param env_id: Gymnasium id; its section of the algo's YAML gives the defaults.
    :param env_kwargs: env constructor arguments, on top of the YAML's ``env_kwargs``.
    :param hyperparams: values replacing the YAML's (the zoo's ``--hyperparams``).
    :param timesteps: training budget; default: the YAML's ``n_timesteps``. On ``resume`` it is the
        TOTAL to reach (default: the run's own target), so an interrupted run finishes its budget.
    :param seed: seeds the learner and the env (``None``: not reproducible).
    :param tensorboard_log: folder of TensorBoard runs; each learner writes ``<algo>_<n>/`` there.
    :param output: parent folder of the run folder.
    :param progress: show a progress bar (tqdm / rich).
    :param resume: continue the run in ``<output>/<algo>/`` instead of starting a new one.
    :param checkpoint_freq: steps between checkpoints; ``None`` saves only at the end (and on Ctrl-C).
    :param callbacks: further SB3 callbacks (e.g. a ranking evaluation).
    :param verbose: passed to the learner (SB3's meaning: 1 prints the logger's tables).
    :param run_info: extra JSON-able facts to record in ``run.json`` (e.g. how the data was split).
    :param torch_threads: torch's intra-op threads for the run. 1 (default) is the fastest for these
        small networks and does not fight other processes for the cores; ``None`` keeps torch's own.
    """
    from rlrec.data import load_movielens

    if torch_threads is not None:
        set_torch_threads(torch_threads)
    run_dir = run_dir_of(output, algo)
    env_kwargs = dict(env_kwargs or {})
    if resume:
        config = _resume_config(run_dir, algo, data, env_id, env_kwargs, hyperparams, tensorboard_log)
        data = config["data"] if data is None else data
        hyperparams_all = dict(config["hyperparameters"])
        env_id = config["env_id"]
        merged_env_kwargs = dict(config["env_kwargs"])
        seed = config["seed"]
        tensorboard_log = config["tensorboard_log"]
    else:
        if data is None:
            raise ValueError("data: required unless resume=True")
        check_env_kwargs(env_id, env_kwargs)
        hyperparams_all = load_hyperparams(algo, env_id, hyperparams)
    split = split_hyperparams(algo, hyperparams_all)
    if not resume:
        merged_env_kwargs = {**split.env_kwargs, **env_kwargs}
    target = (
        timesteps if timesteps is not None else (config["timesteps_target"] if resume else split.n_timesteps)
    )
    if target is None:
        raise ValueError(f"--timesteps: required, the {algo} YAML gives no n_timesteps for {env_id}")
    if target < 1:
        raise ValueError(f"--timesteps: must be >= 1, got {target}")
    if not resume:
        # Like the zoo's -n: the budget asked for replaces the YAML's in what the run records.
        hyperparams_all["n_timesteps"] = int(target)

    dataset = load_movielens(data) if _env_takes_data(env_id) else None
    env = make_training_env(algo, dataset, env_id, merged_env_kwargs, split.n_envs, seed)
    tb_log = None if tensorboard_log is None else str(tensorboard_log)
    model_path = run_dir / algo_spec(algo).model_file

    if resume:
        model = load_model(algo, model_path, env=env)
        if tb_log is not None and getattr(model, "tensorboard_log", None) is None:
            model.tensorboard_log = tb_log
        done = int(model.num_timesteps)
        if target <= done:
            raise ValueError(
                f"--resume: {run_dir} already has {done} timesteps (target {target}); "
                "ask for more with --timesteps"
            )
        to_learn = target - done
        config["timesteps_target"] = int(target)
    else:
        try:
            model = make_model(
                algo, env, split.model_kwargs, seed=seed, tensorboard_log=tb_log, verbose=verbose
            )
        except TypeError as exc:
            raise ValueError(f"--hyperparams: {algo}: {exc}") from None
        config = run_config(
            algo, env_id, merged_env_kwargs, data, dataset, hyperparams_all, seed, target, tb_log, run_info
        )
        to_learn = target

    started = time.perf_counter()
    seconds_before = float(config.get("train_seconds", 0.0))

    def checkpoint(status: str) -> None:
        save_model(model, model_path)
        config["timesteps_done"] = int(model.num_timesteps)
        config["status"] = status
        config["updated_at"] = _now()
        config["train_seconds"] = round(seconds_before + time.perf_counter() - started, 3)
        config["tensorboard_run"] = _tensorboard_run(model)
        save_json(run_dir / RUN_FILE, config)

    # One logger setup for every learner: SB3's run folders, each tag once per step.
    model.set_logger(make_logger(tb_log, algo_spec(algo).name, verbose, reset_num_timesteps=not resume))
    callback_list: list[BaseCallback] = list(callbacks)
    if not resume:
        callback_list.append(HParamsCallback(_hparams_for_tensorboard(config)))
    if checkpoint_freq is not None:
        callback_list.append(AtomicCheckpointCallback(checkpoint_freq, lambda: checkpoint("running")))
    progress_bar: ProgressBarCallback | None = None
    if progress:
        # Our own instance rather than learn(progress_bar=True): Ctrl-C must be able to close it.
        progress_bar = ProgressBarCallback()
        callback_list.append(progress_bar)

    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        save_json(run_dir / RUN_FILE, config)
    interrupted = False
    try:
        with warnings.catch_warnings():
            # SB3's progress bar is tqdm.rich, which warns on every run that it is experimental.
            warnings.filterwarnings("ignore", message="rich is experimental")
            model.learn(
                to_learn,
                callback=CallbackList(callback_list),
                tb_log_name=algo_spec(algo).name,
                reset_num_timesteps=not resume,
            )
    except KeyboardInterrupt:
        interrupted = True
        if progress_bar is not None and getattr(progress_bar, "pbar", None) is not None:
            progress_bar.pbar.close()
    checkpoint("interrupted" if interrupted else "done")
    return TrainResult(
        model=model, run_dir=run_dir, model_path=model_path, config=config, interrupted=interrupted
    )


def _resume_config(
    run_dir: Path,
    algo: str,
    data: Any,
    env_id: str,
    env_kwargs: Mapping[str, Any],
    hyperparams: Mapping[str, Any] | None,
    tensorboard_log: str | os.PathLike[str] | None,
) -> dict[str, Any]:
    """The run's ``run.json``, after checking the caller asks to continue the same run."""
    path = run_dir / RUN_FILE
    if not path.is_file():
        raise FileNotFoundError(f"--resume: no run to resume in {run_dir} ({RUN_FILE} not found)")
    config: dict[str, Any] = load_json(path)
    if config.get("algo") != algo:
        raise ValueError(f"--resume: {run_dir} holds a {config.get('algo')} run, not {algo}")
    if data is not None and data_label(data) != config["data"]:
        raise ValueError(f"--resume: {run_dir} was trained on {config['data']}, not {data_label(data)}")
    if env_id != config["env_id"]:
        raise ValueError(f"--resume: {run_dir} was trained on {config['env_id']}, not {env_id}")
    if env_kwargs or hyperparams:
        raise ValueError("--resume: continues with the run's own --env-kwargs and --hyperparams; omit them")
    if tensorboard_log is not None:
        config["tensorboard_log"] = str(Path(tensorboard_log).resolve())
    return config


def _tensorboard_run(model: Any) -> str | None:
    from stable_baselines3.common.logger import TensorBoardOutputFormat

    logger = getattr(model, "_logger", None)
    for fmt in getattr(logger, "output_formats", ()):
        if isinstance(fmt, TensorBoardOutputFormat):
            return str(Path(fmt.writer.log_dir).resolve())
    return None


def _hparams_for_tensorboard(config: Mapping[str, Any]) -> dict[str, Any]:
    hparams = {
        "algo": config["algo"],
        "env_id": config["env_id"],
        "data": config["data"],
        "seed": config["seed"],
    }
    for key, value in config["hyperparameters"].items():
        hparams[key] = value if isinstance(value, bool | int | float | str) else str(value)
    for key, value in config["env_kwargs"].items():
        hparams[f"env/{key}"] = value if isinstance(value, bool | int | float | str) else str(value)
    return hparams


# ------------------------------------------------------------ load, use
@dataclass
class LoadedRun:
    """A saved run: the model, its ``run.json`` and where it lies."""

    model: Any
    config: dict[str, Any]
    run_dir: Path
    model_path: Path


def load_run(path: str | os.PathLike[str], env: Any = None) -> LoadedRun:
    """Load a run from its folder or its model file (``run.json`` says which algo it is).

    :raises FileNotFoundError: no such path, or no ``run.json`` beside the model.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such model file or folder")
    run_dir = path if path.is_dir() else path.parent
    config_path = run_dir / RUN_FILE
    if not config_path.is_file():
        raise FileNotFoundError(f"{run_dir}: no {RUN_FILE} (not a folder written by rlrec train)")
    config = load_json(config_path)
    model_path = path if path.is_file() else run_dir / config["model_file"]
    model = load_model(config["algo"], model_path, env=env)
    return LoadedRun(model=model, config=config, run_dir=run_dir, model_path=model_path)


@dataclass(frozen=True)
class Recommendation:
    """One recommended movie."""

    rank: int
    movie_id: int
    title: str
    score: float


def top_k_movies(scores: np.ndarray, exclude: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best scores, best first, never one of ``exclude``.

    Ties go to the lower movie index (a stable sort), so the answer does not depend on the platform.
    """
    scores = np.asarray(scores, dtype=np.float64).copy()
    scores[np.asarray(exclude, dtype=np.int64)] = -np.inf
    allowed = int(np.isfinite(scores).sum())
    order = np.argsort(-scores, kind="stable")
    return order[: min(k, allowed)]


def recommend(
    model_path: str | os.PathLike[str], user_id: int, k: int = 10, data: Any = None
) -> tuple[LoadedRun, list[Recommendation]]:
    """The ``k`` movies the saved model scores highest for ``user_id``, among those the user has not rated.

    Scores come from ``rlrec.agents.scoring.score_movies`` on the user's observation in the run's env.

    :param model_path: a run folder or its model file.
    :param data: the ratings to read the user from; default: the run's own data.
    :raises ValueError: unknown user, or ``k < 1``.
    """
    import gymnasium

    from rlrec.agents.scoring import score_movies
    from rlrec.data import load_movielens

    if k < 1:
        raise ValueError(f"-k: must be >= 1, got {k}")
    run = load_run(model_path)
    if data is None:
        # run_info.data_source is the source as given ("ml-latest-small", "synthetic:n_users=60");
        # "data" is only its label when the run trained on a split's train part.
        data = (run.config.get("run_info") or {}).get("data_source", run.config["data"])
    dataset = load_movielens(data)
    try:
        user_index = dataset.user_index(int(user_id))
    except KeyError:
        raise ValueError(f"--user: unknown user id {user_id} in {dataset.name}") from None
    env_kwargs = dict(run.config.get("env_kwargs") or {})
    env_kwargs.pop("max_episode_steps", None)
    env = gymnasium.make(run.config["env_id"], data=dataset, **env_kwargs)
    states = np.array([user_index], dtype=np.int64)
    observations = env.unwrapped.observations(states)  # type: ignore[attr-defined]
    scores = score_movies(run.model, observations, states=states)[0]
    if scores.shape[0] != dataset.n_movies:
        raise ValueError(
            f"--data: the model scores {scores.shape[0]} movies but {dataset.name} has {dataset.n_movies}"
        )
    rated, _ = dataset.user_row(user_index)
    best = top_k_movies(scores, rated, k)
    picks = [
        Recommendation(
            rank=i + 1,
            movie_id=int(dataset.movie_ids[j]),
            title=str(dataset.titles[j]),
            score=float(scores[j]),
        )
        for i, j in enumerate(best)
    ]
    env.close()
    return run, picks
