"""Scaling out for real: a PostgreSQL server, two ``rlrec tune`` worker processes, one study.

The test starts its own server (``initdb`` + ``pg_ctl start`` on 127.0.0.1, a free port, a temp data
directory; as the ``postgres`` or ``nobody`` user when run as root, since PostgreSQL refuses root) and
always stops it. It skips only when no PostgreSQL binary is found AND ``CI`` is unset; in CI a missing
server is a failure (``.ci/run`` installs Debian's ``postgresql`` package when ``initdb`` is missing).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from rlrec.tuning import hyperparams_from_trial

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

DATA = "synthetic:n_users=60,n_movies=200,n_ratings=3000"
ALGO = "sb3-dqn"
TIMESTEPS = 200
TRIALS_PER_WORKER = 2


def find_postgres_bin() -> Path | None:
    """Folder holding ``initdb`` and ``pg_ctl``: on PATH, else Debian's /usr/lib/postgresql/<v>/bin."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as(user: str | None, *command: str) -> subprocess.CompletedProcess[str]:
    prefix = ["runuser", "-u", user, "--"] if user else []
    return subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=60, check=False)


@contextlib.contextmanager
def postgres_server(bin_dir: Path) -> Iterator[str]:
    """A throw-away PostgreSQL server; yields its URL. Trust auth on 127.0.0.1 only, fsync off."""
    user: str | None = None
    if os.geteuid() == 0:
        user = next((name for name in ("postgres", "nobody") if _user_exists(name)), None)
        if user is None or shutil.which("runuser") is None:
            pytest.fail(
                "running as root without a 'postgres'/'nobody' user and runuser: cannot start PostgreSQL"
            )
    root = Path(tempfile.mkdtemp(prefix="rlrec-pg-"))
    data_dir, log = root / "data", root / "server.log"
    if user:
        shutil.chown(root, user=user)
    started = False
    try:
        done = _run_as(
            user,
            str(bin_dir / "initdb"),
            "-D",
            str(data_dir),
            "-U",
            "rlrec",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )
        assert done.returncode == 0, f"initdb failed: {done.stderr.strip()}"
        for _ in range(3):  # the free port may be taken between choosing it and binding it
            port = _free_port()
            options = f"-h 127.0.0.1 -p {port} -k {root} -F -c max_connections=50"
            done = _run_as(
                user,
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data_dir),
                "-l",
                str(log),
                "-w",
                "-t",
                "30",
                "-o",
                options,
                "start",
            )
            if done.returncode == 0:
                started = True
                break
        assert started, (
            f"pg_ctl start failed: {done.stderr.strip()} {log.read_text() if log.exists() else ''}"
        )
        yield f"postgresql://rlrec@127.0.0.1:{port}/postgres"
    finally:
        if started:
            _run_as(user, str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail(
                "CI: PostgreSQL binaries (initdb, pg_ctl) not found; install Debian's postgresql package"
            )
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found")
    with postgres_server(bin_dir) as url:
        yield url


def _rlrec(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "rlrec.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_workers_share_one_study_and_the_best_trial_retrains(postgres_url: str, tmp_path: Path) -> None:
    tune_args = [
        "tune",
        "--algo",
        ALGO,
        "--data",
        DATA,
        "--n-trials",
        str(TRIALS_PER_WORKER),
        "--storage",
        postgres_url,
        "--study-name",
        "shared",
        "--timesteps",
        str(TIMESTEPS),
        "--seed",
        "0",
    ]
    # Both workers start at once on an empty database: they also race to create Optuna's tables.
    workers = [_rlrec(*tune_args, cwd=tmp_path) for _ in range(2)]
    outputs = [worker.communicate(timeout=300) for worker in workers]
    for worker, (out, err) in zip(workers, outputs):
        assert worker.returncode == 0, f"worker failed:\n{out}\n{err}"
        assert "best trial" in out.lower()

    study = optuna.load_study(
        study_name="shared", storage=postgres_url.replace("postgresql://", "postgresql+psycopg2://")
    )
    trials = study.get_trials()
    # Nothing lost: every trial of both workers is there, and finished.
    assert len(trials) == 2 * TRIALS_PER_WORKER
    assert sorted(t.number for t in trials) == list(range(2 * TRIALS_PER_WORKER))
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    # Both workers contributed their share.
    per_worker: dict[str, int] = {}
    for trial in trials:
        per_worker[trial.user_attrs["worker"]] = per_worker.get(trial.user_attrs["worker"], 0) + 1
    assert sorted(per_worker.values()) == [TRIALS_PER_WORKER, TRIALS_PER_WORKER]
    # Same --seed on both workers, yet no two trials proposed the same learning rate.
    assert len({t.params["learning_rate"] for t in trials}) == len(trials)
    for trial in trials:
        assert trial.user_attrs["algo"] == ALGO and trial.user_attrs["data"] == DATA
        assert trial.user_attrs["seed"] == 0 and trial.user_attrs["timesteps"] == TIMESTEPS

    best = study.best_trial
    algo, hyperparams = hyperparams_from_trial(f"shared:{best.number}", postgres_url)
    assert algo == ALGO
    assert hyperparams["learning_rate"] == pytest.approx(best.params["learning_rate"])

    out_dir = tmp_path / "retrained"
    retrain = _rlrec(
        "train",
        "--algo",
        ALGO,
        "--data",
        DATA,
        "--from-trial",
        f"shared:{best.number}",
        "--storage",
        postgres_url,
        "--timesteps",
        str(TIMESTEPS),
        "--output",
        str(out_dir),
        cwd=tmp_path,
    )
    out, err = retrain.communicate(timeout=300)
    assert retrain.returncode == 0, f"retrain failed:\n{out}\n{err}"
    run = json.loads((out_dir / ALGO / "run.json").read_text())
    assert run["hyperparameters"]["learning_rate"] == pytest.approx(best.params["learning_rate"])
    assert run["hyperparameters"]["policy_kwargs"] == hyperparams["policy_kwargs"]
