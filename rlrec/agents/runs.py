"""A run folder and its record: what ``rlrec train`` writes, and the checks that keep them paired.

``<output>/<algo>/run.json`` records a run (:func:`run_config`); the model file beside it always
holds the state that record describes: a run's record is written only after its model, one run
at a time holds a folder and a new run never writes into another one's (:class:`RunFolder`,
:func:`refuse_occupied_run_dir`), and every reader checks the record (:func:`read_run_config`)
and the data it is given (:func:`check_data_fingerprint`).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import platform
import shutil
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlrec import __version__
from rlrec.agents.factory import load_model
from rlrec.agents.registry import algo_spec
from rlrec.utils.io import jsonable, load_json, save_json

if TYPE_CHECKING:
    from rlrec.data.dataset import RatingsDataset

RUN_FILE = "run.json"
_VERSIONED = ("rlrec", "stable-baselines3", "sb3-contrib", "gymnasium", "torch", "numpy", "scipy")


def default_output(env_id: str) -> Path:
    """``runs/<env name>`` (``runs/MovieLensSession-v0``): the parent folder ``rlrec train`` puts a
    run in when ``--output`` is not given, so runs of one algo on two envs never share a folder."""
    return Path("runs") / env_id.rsplit("/", 1)[-1]


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
            versions[name] = __version__ if name == "rlrec" else "not installed"
    return versions


def now() -> str:
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
        "data_fingerprint": dataset.fingerprint() if dataset is not None else None,
        "hyperparameters": jsonable(hyperparams),
        "seed": seed,
        "timesteps_target": int(timesteps_target),
        "timesteps_done": 0,
        "status": "running",
        "model_file": algo_spec(algo).model_file,
        "tensorboard_log": None if tensorboard_log is None else str(Path(tensorboard_log).resolve()),
        "tensorboard_run": None,
        "train_seconds": 0.0,
        "started_at": now(),
        "updated_at": now(),
        "versions": library_versions(),
        "run_info": jsonable(run_info or {}),
    }


def read_run_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A run's ``run.json``, checked; ``ValueError`` naming the file and what is wrong with it."""
    path = Path(path)
    try:
        config = load_json(path)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a JSON object, got a JSON {type(config).__name__}")
    required = ("algo", "env_id", "model_file", "data")
    missing = [key for key in required if not isinstance(config.get(key), str)]
    if missing:
        raise ValueError(f"{path}: not a run record of rlrec train ({', '.join(missing)} missing)")
    try:
        spec = algo_spec(config["algo"])
    except ValueError:
        raise ValueError(f"{path}: unknown algo {config['algo']!r}") from None
    if config["model_file"] != spec.model_file:
        raise ValueError(f"{path}: a {spec.name} run saves {spec.model_file}, not {config['model_file']!r}")
    config.setdefault("status", "unknown")
    config.setdefault("timesteps_done", 0)
    return config


class DataFingerprintWarning(UserWarning):
    """A run recorded no fingerprint of its data (written before rlrec recorded one)."""


def check_data_fingerprint(config: Mapping[str, Any], dataset: RatingsDataset, record: Path) -> None:
    """``ValueError`` when ``dataset`` is not over the users and movies the run was trained on.

    Compares :meth:`RatingsDataset.fingerprint` with the one ``run.json`` recorded; a run without
    one (an older rlrec) gets a :class:`DataFingerprintWarning` and is not checked.
    """
    recorded = config.get("data_fingerprint")
    if not recorded:
        # An older run: its summary's counts are all there is to compare.
        summary = config.get("dataset") or {}
        recorded = {key: summary[key] for key in ("users", "movies") if key in summary}
        counts = {key: dataset.fingerprint()[key] for key in recorded}
        if recorded and counts != recorded:
            raise ValueError(
                f"--data: {dataset.name} has {counts} but {record.parent} was trained on {recorded}"
            )
        warnings.warn(
            f"{record}: no data fingerprint (an older run); {dataset.name} is assumed to be its data",
            DataFingerprintWarning,
            stacklevel=2,
        )
        return
    actual = dataset.fingerprint()
    if actual == recorded:
        return

    def describe(name: Any, fingerprint: Mapping[str, Any]) -> str:
        return (
            f"{name} ({fingerprint.get('users', '?'):,} users, {fingerprint.get('movies', '?'):,} movies, "
            f"ids {str(fingerprint.get('ids_sha256', '?'))[:12]})"
        )

    trained_on = (config.get("run_info") or {}).get("data_source", config.get("data"))
    raise ValueError(
        f"--data: {describe(dataset.name, actual)} is not the data {record.parent} was trained on: "
        f"{describe(trained_on, recorded)}"
    )


#: What a run folder may hold besides run.json: a folder with any of these holds (part of) a run.
_RUN_ARTIFACTS = ("model.*", "best_model.*", "evaluations.json")


def refuse_occupied_run_dir(run_dir: Path) -> None:
    """``ValueError`` when ``run_dir`` holds a run (or the pieces of one): a new run must not mix in."""
    if not run_dir.is_dir():
        return
    found = sorted({path.name for pattern in (RUN_FILE, *_RUN_ARTIFACTS) for path in run_dir.glob(pattern)})
    if not found:
        return
    what = "a run"
    if RUN_FILE in found:
        try:
            recorded = read_run_config(run_dir / RUN_FILE)
            what = f"a {recorded['status']} {recorded['algo']} run ({recorded['timesteps_done']} timesteps)"
        except ValueError:
            what = "an unreadable run"
    raise ValueError(
        f"--output: {run_dir} already holds {what} ({', '.join(found)}); --force replaces it, "
        "--resume continues it, or choose another --output"
    )


class RunFolder:
    """Where one run writes, from its start to its end: locked, and never half another run's.

    * **Lock.** ``<output>/.<algo>.lock`` is held (``flock``, exclusive) for the life of the
      run: a second run into the same folder is refused in one line while the first runs. The
      kernel drops the lock when its process dies, however it dies, so a stale lock never blocks.
    * **Leftovers** of a run killed mid-swap are settled on entry, under the lock: a
      ``.<algo>.replaced-<pid>`` whose folder is missing is put back, any other is deleted, and a
      ``.<algo>.staging-<pid>`` is deleted (each said in a warning).
    * **--force** over a folder that holds a run writes into ``.<algo>.staging-<pid>`` beside it;
      the old run stays in place until the new one has a complete checkpoint, then
      :meth:`commit` swaps them (two renames) and deletes the old one. A run killed before that,
      by any signal or a full disk, leaves the old run where it was.

    Use as a context manager; :attr:`path` is the folder to write now.
    """

    def __init__(self, run_dir: Path, force: bool = False) -> None:
        self.final = Path(run_dir)
        self.force = bool(force)
        self.staging: Path | None = None
        self.created = False
        self._made_parent = False
        self._lock_path = self.final.with_name(f".{self.final.name}.lock")
        self._lock_fd: int | None = None

    def _sibling(self, kind: str, pid: int | None = None) -> Path:
        return self.final.with_name(f".{self.final.name}.{kind}-{os.getpid() if pid is None else pid}")

    def __enter__(self) -> RunFolder:
        self._made_parent = not self.final.parent.exists()
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self._lock_path = self.final.with_name(f".{self.final.name}.lock")
        self._lock_fd = self._lock()
        self._settle_leftovers()
        occupied = self.final.is_dir() and any(self.final.iterdir())
        if self.force and occupied:
            self.staging = self._sibling("staging")
            self.staging.mkdir()
        self.created = not self.final.exists()
        return self

    def _lock(self) -> int | None:
        while True:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise ValueError(
                    f"--output: {self.final} is in use by another rlrec run (pid {holder}); "
                    "wait for it to end or choose another --output"
                ) from None
            except OSError as exc:  # a filesystem without locks (some NFS mounts): go on unlocked
                os.close(fd)
                warnings.warn(
                    f"{self._lock_path}: cannot lock ({exc.strerror}); two runs here would mix", stacklevel=4
                )
                return None
            # The file may have been unlinked by a run that just ended: lock the one on disk.
            try:
                if os.fstat(fd).st_ino == os.stat(self._lock_path).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return fd

    def __exit__(self, *exc: object) -> None:
        if self._lock_fd is None:
            return
        if not self.final.exists():  # nothing written: leave no lock file, no empty --output
            with contextlib.suppress(OSError):
                self._lock_path.unlink()
            if self._made_parent:
                with contextlib.suppress(OSError):
                    self.final.parent.rmdir()
        os.close(self._lock_fd)  # releases the flock
        self._lock_fd = None

    def _settle_leftovers(self) -> None:
        for aside in sorted(self.final.parent.glob(f".{self.final.name}.replaced-*")):
            if not self.final.exists():
                aside.rename(self.final)
                warnings.warn(
                    f"{self.final}: put back the run a killed --force had moved aside", stacklevel=3
                )
            else:
                shutil.rmtree(aside, ignore_errors=True)
        for staging in self.final.parent.glob(f".{self.final.name}.staging-*"):
            shutil.rmtree(staging, ignore_errors=True)
            warnings.warn(
                f"{self.final}: removed {staging.name}, the partial work of a killed --force run",
                stacklevel=3,
            )

    @property
    def path(self) -> Path:
        """The folder the run writes to now: the staging folder until :meth:`commit`, then the run's."""
        return self.staging if self.staging is not None else self.final

    def commit(self) -> None:
        """After a complete checkpoint in the staging folder: swap it in, delete the old run."""
        if self.staging is None:
            return
        aside = self._sibling("replaced")
        shutil.rmtree(aside, ignore_errors=True)
        self.final.rename(aside)
        self.staging.rename(self.final)
        self.staging = None
        shutil.rmtree(aside, ignore_errors=True)

    def abandon(self, config: dict[str, Any], status: str = "failed") -> None:
        """A run ended without its final save: keep its checkpoint (marked ``status``), or leave
        the folder as it was before the run (the old run, under --force, never moved)."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
            return
        if (self.final / RUN_FILE).is_file() and config.get("timesteps_done"):
            with contextlib.suppress(OSError):
                save_json(self.final / RUN_FILE, {**config, "status": status, "updated_at": now()})
            return
        if self.created:
            shutil.rmtree(self.final, ignore_errors=True)


@dataclass
class LoadedRun:
    """A saved run: the model, its ``run.json`` and where it lies."""

    model: Any
    config: dict[str, Any]
    run_dir: Path
    model_path: Path


def load_run_config(path: str | os.PathLike[str]) -> tuple[dict[str, Any], Path]:
    """(``run.json``'s content, its path) of a run given by its folder or its model file.

    :raises FileNotFoundError: no such path, or no ``run.json`` beside the model.
    """
    path = Path(path)
    if not path.exists():
        aside = sorted(path.parent.glob(f".{path.name}.replaced-*")) if path.name else []
        if aside:
            raise FileNotFoundError(
                f"{path}: missing; a killed --force left the run in {aside[-1]} "
                "(the next rlrec train into this folder puts it back)"
            )
        raise FileNotFoundError(f"{path}: no such model file or folder")
    run_dir = path if path.is_dir() else path.parent
    config_path = run_dir / RUN_FILE
    if not config_path.is_file():
        raise FileNotFoundError(f"{run_dir}: no {RUN_FILE} (not a folder written by rlrec train)")
    return read_run_config(config_path), config_path


def load_run(path: str | os.PathLike[str], env: Any = None) -> LoadedRun:
    """Load a run from its folder or its model file (``run.json`` says which algo it is).

    :raises FileNotFoundError: no such path, or no ``run.json`` beside the model.
    """
    path = Path(path)
    config, config_path = load_run_config(path)
    run_dir = config_path.parent
    model_path = path if path.is_file() else run_dir / config["model_file"]
    model = load_model(config["algo"], model_path, env=env, hyperparams=config.get("hyperparameters"))
    return LoadedRun(model=model, config=config, run_dir=run_dir, model_path=model_path)
