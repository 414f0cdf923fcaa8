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

import functools
import inspect
import math
import os
import signal
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ProgressBarCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import TensorBoardOutputFormat
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

from rlrec.agents.factory import load_model, make_model, save_model
from rlrec.agents.recipes import (
    ZOO_KEYS,
    accepted_keys,
    constructor_defaults,
    load_hyperparams,
    schedule_start,
    split_hyperparams,
)
from rlrec.agents.registry import ALGOS, DEFAULT_ENV_ID, algo_spec
from rlrec.agents.runs import (
    RUN_FILE,
    LoadedRun,
    RunFolder,
    check_data_fingerprint,
    data_label,
    load_run,
    now,
    read_run_config,
    refuse_occupied_run_dir,
    run_config,
    run_dir_of,
)
from rlrec.data import load_movielens
from rlrec.data.dataset import RatingsDataset
from rlrec.envs import ENV_IDS, batched_same_step, check_env_kwargs, constructor_params, env_takes_data
from rlrec.envs.sb3_vec import GymnasiumVecEnv
from rlrec.utils.io import save_json
from rlrec.utils.logging import HParamsCallback, make_logger
from rlrec.utils.seeding import set_torch_threads
from rlrec.utils.signals import StopTrainingOnRequest, stop_requested, stop_signals

__all__ = [
    "DEFAULT_CHECKPOINT_FREQ",
    "RUN_FILE",
    "AtomicCheckpointCallback",
    "LoadedRun",
    "TrainResult",
    "data_label",
    "load_run",
    "make_training_env",
    "run_dir_of",
    "train",
]

#: Steps between two checkpoints. Saving an SB3 model of ~10k actions takes well under a second.
DEFAULT_CHECKPOINT_FREQ = 10_000


@dataclass
class TrainResult:
    """What :func:`train` returns.

    :param model: the trained learner (SB3 model or ours).
    :param run_dir: the run's folder (``<output>/<algo>``).
    :param model_path: the saved model inside it.
    :param config: the content of ``run.json``.
    :param interrupted: ``True`` when a signal stopped training (the checkpoint is saved).
    :param signal: the signal that stopped it (``signal.SIGINT`` for Ctrl-C, ``SIGTERM``), else None.
    """

    model: Any
    run_dir: Path
    model_path: Path
    config: dict[str, Any]
    interrupted: bool = False
    signal: int | None = None

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
    kwargs = _env_kwargs_with_data(env_id, dataset, env_kwargs)
    if algo_spec(algo).family == "sb3":
        if batched_same_step(env_id):
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
    if n_envs == 1 and kwargs.get("backend", "numpy") == "numpy":
        return gymnasium.make(env_id, **kwargs)
    if batched_same_step(env_id):  # no step wasted on resetting a finished session
        return gymnasium.make_vec(
            env_id,
            num_envs=n_envs,
            vectorization_mode="vector_entry_point",
            autoreset_mode="same_step",
            **kwargs,
        )
    # Gymnasium picks the env's vector_entry_point when it has one, else a SyncVectorEnv.
    return gymnasium.make_vec(env_id, num_envs=n_envs, vectorization_mode=None, **kwargs)


def _env_kwargs_with_data(
    env_id: str, dataset: RatingsDataset | None, env_kwargs: Mapping[str, Any] | None
) -> dict[str, Any]:
    kwargs = dict(env_kwargs or {})
    check_env_kwargs(env_id, kwargs)
    if dataset is not None and env_takes_data(env_id):
        kwargs["data"] = dataset
    return kwargs


def resumable_run(run_dir: Path, algo: str, force: bool = False) -> dict[str, Any]:
    """The ``run.json`` of the ``algo`` run in ``run_dir``, which ``resume`` is to continue."""
    if force:
        raise ValueError("--force: replaces a run, --resume continues it; give one of them")
    path = run_dir / RUN_FILE
    if not path.is_file():
        raise FileNotFoundError(f"--resume: no run to resume in {run_dir} (train without --resume first)")
    config = read_run_config(path)
    if config["algo"] != algo:
        raise ValueError(f"--resume: {run_dir} holds a {config['algo']} run, not {algo}")
    return config


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
    config = resumable_run(run_dir, algo)
    if data is not None and data_label(data) != config["data"]:
        raise ValueError(f"--resume: {run_dir} was trained on {config['data']}, not {data_label(data)}")
    if env_id != config["env_id"]:
        raise ValueError(f"--resume: {run_dir} was trained on {config['env_id']}, not {env_id}")
    if env_kwargs or hyperparams:
        raise ValueError("--resume: continues with the run's own --env-kwargs and --hyperparams; omit them")
    if tensorboard_log is not None:
        config["tensorboard_log"] = str(Path(tensorboard_log).resolve())
    return config


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
    force: bool = False,
) -> TrainResult:
    """Train ``algo`` and save it in ``<output>/<algo>/`` (see the module docstring for the layout).

    :param algo: one of ``rlrec.agents.registry.ALGOS``.
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
    :param checkpoint_freq: steps between checkpoints; ``None`` saves only at the end (and on a stop).
    :param callbacks: further SB3 callbacks (e.g. a ranking evaluation).
    :param verbose: passed to the learner (SB3's meaning: 1 prints the logger's tables).
    :param run_info: extra JSON-able facts to record in ``run.json`` (e.g. how the data was split).
    :param torch_threads: torch's intra-op threads for the run. 1 (default) is the fastest for these
        small networks and does not fight other processes for the cores; ``None`` keeps torch's own.
    :param force: replace a run already in ``<output>/<algo>/``. Without it a new run refuses such a
        folder. The new run writes beside the old one (``.<algo>.staging-<pid>``) and takes its
        place at its first complete checkpoint; killed or failing before that, it leaves the old
        run where it was (:class:`rlrec.agents.runs.RunFolder`).
    :raises ValueError: a folder that holds a run (without ``force`` or ``resume``), data that is
        not the run's own on ``resume`` (:func:`check_data_fingerprint`), bad arguments.
    """
    if resume and force:
        resumable_run(run_dir_of(output, algo), algo, force)
    if torch_threads is not None:
        set_torch_threads(torch_threads)
    run_dir = run_dir_of(output, algo)
    if not resume:  # refuse bad arguments before the folder is touched
        check_env_kwargs(env_id, env_kwargs or {})
        split_hyperparams(algo, load_hyperparams(algo, env_id, hyperparams))
    # Everything from here on holds the run folder's lock: two runs never write one folder.
    with RunFolder(run_dir, force=force) as folder:
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
            if not force:
                refuse_occupied_run_dir(run_dir)
            check_env_kwargs(env_id, env_kwargs)
            hyperparams_all = load_hyperparams(algo, env_id, hyperparams)
        split = split_hyperparams(algo, hyperparams_all)
        if not resume:
            merged_env_kwargs = {**split.env_kwargs, **env_kwargs}
        target = (
            timesteps
            if timesteps is not None
            else (config["timesteps_target"] if resume else split.n_timesteps)
        )
        if target is None:
            raise ValueError(f"--timesteps: required, the {algo} YAML gives no n_timesteps for {env_id}")
        if target < 1:
            raise ValueError(f"--timesteps: must be >= 1, got {target}")
        if not resume:
            # Like the zoo's -n: the budget asked for replaces the YAML's in what the run records.
            hyperparams_all["n_timesteps"] = int(target)

        dataset = load_movielens(data) if env_takes_data(env_id) else None
        if resume and dataset is not None:
            check_data_fingerprint(config, dataset, run_dir / RUN_FILE)
        env = make_training_env(algo, dataset, env_id, merged_env_kwargs, split.n_envs, seed)
        tb_log = None if tensorboard_log is None else str(tensorboard_log)
        model_path = run_dir / algo_spec(algo).model_file

        if resume:
            model = load_model(algo, model_path, env=env, hyperparams=hyperparams_all)
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
            except (MemoryError, OverflowError, RuntimeError) as exc:
                # Sizes that pass the range checks can still exceed this machine (a replay buffer
                # of huge observations): one line, not an allocation traceback.
                first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
                raise ValueError(f"--hyperparams: {algo}: cannot build the model here ({first})") from None
            config = run_config(
                algo,
                env_id,
                merged_env_kwargs,
                data,
                dataset,
                hyperparams_all,
                seed,
                target,
                tb_log,
                run_info,
            )
            to_learn = target
        # Where the networks ran (a tabular learner's table: the CPU); a resume may move them.
        config["device"] = str(getattr(model, "device", "cpu"))

        started = time.perf_counter()
        seconds_before = float(config.get("train_seconds", 0.0))
        # Under --force the new run writes beside the old one until its first checkpoint is whole.
        _follow(callbacks, run_dir, folder.path)

        def checkpoint(status: str) -> None:
            # The model first, then run.json: a run.json always describes a model that is there.
            save_model(model, folder.path / model_path.name)
            config["timesteps_done"] = int(model.num_timesteps)
            config["status"] = status
            config["updated_at"] = now()
            config["train_seconds"] = round(seconds_before + time.perf_counter() - started, 3)
            config["tensorboard_run"] = _tensorboard_run(model)
            save_json(folder.path / RUN_FILE, config)
            staged = folder.staging
            if staged is not None:
                folder.commit()
                _follow(callbacks, staged, run_dir)

        # One logger setup for every learner: SB3's run folders, each tag once per step.
        model.set_logger(make_logger(tb_log, algo_spec(algo).name, verbose, reset_num_timesteps=not resume))
        # The recipe's own callbacks (e.g. rlrec.nn.ActionPriorCallback) come before any that evaluate.
        recipe_callbacks = [cls() for cls in split.callbacks]
        callback_list: list[BaseCallback] = [StopTrainingOnRequest(), *recipe_callbacks, *callbacks]
        if not resume:
            callback_list.append(HParamsCallback(_hparams_for_tensorboard(config)))
        if checkpoint_freq is not None:
            callback_list.append(AtomicCheckpointCallback(checkpoint_freq, lambda: checkpoint("running")))
        progress_bar: ProgressBarCallback | None = None
        if progress:
            # Our own instance rather than learn(progress_bar=True): a stop must be able to close it.
            progress_bar = ProgressBarCallback()
            callback_list.append(progress_bar)

        folder.path.mkdir(parents=True, exist_ok=True)
        hard_stop = False
        with stop_signals():
            try:
                with warnings.catch_warnings():
                    # SB3's progress bar is tqdm.rich, which warns on every run that it is experimental.
                    warnings.filterwarnings("ignore", message="rich is experimental")
                    if stop_requested() is None:
                        model.learn(
                            to_learn,
                            callback=CallbackList(callback_list),
                            tb_log_name=algo_spec(algo).name,
                            reset_num_timesteps=not resume,
                        )
            except KeyboardInterrupt:  # a second Ctrl-C, or one outside rlrec's signal handling
                hard_stop = True
            except BaseException:
                folder.abandon(config)
                raise
            finally:
                if progress_bar is not None and getattr(progress_bar, "pbar", None) is not None:
                    progress_bar.pbar.close()
            stopped_by = stop_requested()
        if stopped_by is None and hard_stop:
            stopped_by = signal.SIGINT
        interrupted = stopped_by is not None
        learned = int(model.num_timesteps) > (config["timesteps_done"] if resume else 0)
        if interrupted and not learned:
            folder.abandon(config, status="interrupted")
        else:
            try:
                checkpoint("interrupted" if interrupted else "done")
            except BaseException:  # e.g. a full disk: the old run (under --force) stays in place
                folder.abandon(config)
                raise
        return TrainResult(
            model=model,
            run_dir=run_dir,
            model_path=model_path,
            config=config,
            interrupted=interrupted,
            signal=stopped_by,
        )


def _follow(callbacks: Sequence[BaseCallback], old: Path, new: Path) -> None:
    """Callbacks that keep files in the run folder (a best model) write where the run writes now."""
    if old == new:
        return
    for callback in callbacks:
        path = getattr(callback, "best_model_path", None)
        if isinstance(path, Path) and path.parent == old:
            callback.best_model_path = new / path.name  # type: ignore[attr-defined]


def _tensorboard_run(model: Any) -> str | None:
    logger = getattr(model, "_logger", None)
    for fmt in getattr(logger, "output_formats", ()):
        if isinstance(fmt, TensorBoardOutputFormat):
            return str(Path(fmt.writer.log_dir).resolve())
    return None


@functools.cache
def hparam_types() -> dict[str, type]:
    """Every HParams key a run writes, with its type: the same set for every learner and env.

    The run's facts (algo, env id, data, seed), every hyperparameter any algo's constructor or the
    zoo format takes, and every env argument as ``env/<name>``; a number's type is ``float``,
    anything else ``str``. TensorBoard's HParams view builds its columns from the runs it reads:
    with one key set for all, every column can be chosen whatever the learner.
    """

    def kind(value: Any) -> type:
        return float if isinstance(value, int | float) and not isinstance(value, bool) else str

    types: dict[str, type] = {"algo": str, "env_id": str, "data": str, "seed": float}
    zoo = {"n_timesteps": float, "n_envs": float, "policy": str, "policy_kwargs": str, "callback": str}
    types.update(zoo)
    for algo in ALGOS:
        defaults = constructor_defaults(algo)
        for key in sorted(accepted_keys(algo) - ZOO_KEYS):
            types.setdefault(key, kind(defaults.get(key)))
    for env_id in ENV_IDS:
        params = constructor_params(gymnasium.spec(env_id).entry_point) or {}
        for name, param in params.items():
            if name != "data" and param.kind is not inspect.Parameter.VAR_KEYWORD:
                types.setdefault(f"env/{name}", kind(param.default))
    types.setdefault("env/max_episode_steps", float)
    return dict(sorted(types.items()))


def _hparams_for_tensorboard(config: Mapping[str, Any]) -> dict[str, Any]:
    """The run's HParams on :func:`hparam_types`' keys: a missing number is NaN, a missing text
    "-", never a missing key. A number key keeps its type: a ``lin_<x>`` schedule is written as
    ``x``, its start, and any other text as NaN (the full value is in ``run.json``)."""
    given: dict[str, Any] = {
        "algo": config["algo"],
        "env_id": config["env_id"],
        "data": config["data"],
        "seed": config["seed"],
        **dict(config["hyperparameters"]),
        **{f"env/{key}": value for key, value in config["env_kwargs"].items()},
    }
    hparams: dict[str, Any] = {}
    for key, kind in hparam_types().items():
        value = given.get(key)
        if kind is float:
            start = schedule_start(value) if value is not None else None
            hparams[key] = math.nan if start is None else start
        else:
            hparams[key] = "-" if value is None else str(value)
    return hparams
