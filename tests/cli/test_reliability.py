"""Reliability: what rlrec loads runs no code, a run that dies or races loses nothing, tune stops
cleanly, and hostile inputs are refused in one line.

One section per class of the adversarial probe. Where the old behaviour can be shown in-process,
a test first shows the failure with the library call rlrec used to make (SB3's ``load``,
Minari's ``recover_environment``), then that rlrec's own path does not fail that way.
"""

from __future__ import annotations

import base64
import json
import pickle
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import optuna
import pytest

import rlrec  # noqa: F401  (registers the env ids)
from rlrec.agents.runs import RunFolder
from rlrec.agents.scoring import score_movies
from rlrec.cli import main
from rlrec.data import DatasetError, load_movielens, write_movielens_csv
from rlrec.experiments.training import RUN_FILE, load_run, train
from rlrec.tuning.storage import create_study, open_storage
from tests.cli.test_run_integrity import _rlrec, _wait_for
from tests.cli.test_train_cli import one_error_line

TINY = "synthetic:n_users=10,n_movies=40,n_ratings=120,seed=3"
REPO = Path(__file__).resolve().parents[2]


class _Touch:
    """A pickle payload: unpickling it creates ``path`` (what a hostile file would do, harmlessly)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.path,))


def _payload(marker: Path) -> str:
    return base64.b64encode(pickle.dumps(_Touch(marker))).decode()


def _plant_in_zip(model_zip: Path, marker: Path) -> None:
    """Rewrite the zip's ``data`` entry: every serialized value, and one extra key, carry the payload."""
    with zipfile.ZipFile(model_zip) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(entries["data"])
    for value in data.values():
        if isinstance(value, dict) and ":serialized:" in value:
            value[":serialized:"] = _payload(marker)
    data["extra_entry"] = {":type:": "<class 'object'>", ":serialized:": _payload(marker)}
    entries["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(model_zip, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)


# ------------------------------------------------------------ 1. loading runs no code
@pytest.mark.parametrize("algo", ["sb3-dqn", "ppo"])
def test_a_payload_in_a_shared_sb3_zip_never_runs(
    algo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from stable_baselines3 import DQN, PPO

    run = train(
        algo,
        data=TINY,
        timesteps=64,
        output=tmp_path / "runs",
        hyperparams={"n_steps": 16} if algo == "ppo" else {},
    )
    observations = run.model.get_env().get_attr("observations")[0](np.arange(5))
    before = score_movies(run.model, observations)
    marker = tmp_path / "payload-ran"
    _plant_in_zip(run.model_path, marker)

    # What rlrec used to do: SB3's own load unpickles the planted entries.
    with pytest.raises((TypeError, AttributeError, KeyError, ValueError)):  # None where a class was
        (DQN if algo == "sb3-dqn" else PPO).load(run.model_path)
    assert marker.exists()
    marker.unlink()

    loaded = load_run(run.run_dir)
    assert not marker.exists()
    np.testing.assert_array_equal(score_movies(loaded.model, observations), before)
    assert loaded.model.num_timesteps == run.model.num_timesteps
    assert main(["recommend", "--model", str(run.run_dir), "--data", TINY, "--user", "1", "-k", "3"]) == 0
    assert not marker.exists()
    capsys.readouterr()


def test_a_zip_whose_weights_do_not_fit_its_recipe_is_one_line(tmp_path: Path) -> None:
    run = train("sb3-dqn", data=TINY, timesteps=40, output=tmp_path / "runs")
    config = json.loads((run.run_dir / RUN_FILE).read_text())
    config["hyperparameters"]["policy_kwargs"] = "dict(net_arch=[7])"
    (run.run_dir / RUN_FILE).write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"model\.zip: .*do not fit") as caught:
        load_run(run.run_dir)
    assert "\n" not in str(caught.value)


@pytest.fixture()
def minari_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(home))
    return home


def _log(name: str, steps: int = 60, data: str = TINY, env: str = "rlrec/MovieLens-v0") -> None:
    argv = ["data", "log", "--data", data, "--env", env, "--policy", "uniform", "--steps", str(steps)]
    assert main([*argv, "--dataset-id", name]) == 0


def _set_entry_point(home: Path, name: str, entry_point: str) -> None:
    metadata = home / name / "data" / "metadata.json"
    content = json.loads(metadata.read_text())
    spec = json.loads(content["env_spec"])
    spec["entry_point"] = entry_point
    content["env_spec"] = json.dumps(spec)
    metadata.write_text(json.dumps(content))


def test_a_dataset_naming_foreign_code_is_refused_before_it_runs(
    minari_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import minari

    marker = tmp_path / "payload-ran"
    (tmp_path / "evil_env.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).touch()\nEnv = None\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    _log("rlrec/MovieLens/shared-v0")
    _set_entry_point(minari_home, "rlrec/MovieLens/shared-v0", "evil_env:Env")
    runs = tmp_path / "runs"
    assert main(["train", "--algo", "qlearning", "--data", TINY, "--split", "none", "--timesteps", "50",
                 "--output", str(runs)]) == 0  # fmt: skip
    capsys.readouterr()

    # What rlrec used to do: Minari imports whatever the dataset names.
    with pytest.raises((TypeError, AttributeError, ValueError)):  # its Env is None: not callable
        minari.load_dataset("rlrec/MovieLens/shared-v0").recover_environment()
    assert marker.exists()
    marker.unlink()
    sys.modules.pop("evil_env", None)

    argv = [
        "ope",
        "--dataset",
        "rlrec/MovieLens/shared-v0",
        "--model",
        str(runs / "qlearning"),
        "--bootstrap",
        "5",
    ]
    assert main(argv) == 2
    line = one_error_line(capsys)
    assert "evil_env:Env" in line and "not rlrec's" in line
    assert not marker.exists()


def test_ope_refuses_a_log_of_another_env_and_a_model_of_other_data(
    minari_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    assert main(["train", "--algo", "qlearning", "--data", TINY, "--split", "none", "--timesteps", "50",
                 "--output", str(runs)]) == 0  # fmt: skip
    _log("rlrec/MovieLensSession/uniform-v0", env="rlrec/MovieLensSession-v0")
    capsys.readouterr()
    assert (
        main(["ope", "--dataset", "rlrec/MovieLensSession/uniform-v0", "--model", str(runs / "qlearning")])
        == 2
    )
    assert "MovieLensSession-v0" in one_error_line(capsys)

    other = "synthetic:n_users=10,n_movies=40,n_ratings=120,seed=4"  # same shape, other ratings
    _log("rlrec/MovieLens/other-v0", data=other)
    capsys.readouterr()
    assert main(["ope", "--dataset", "rlrec/MovieLens/other-v0", "--model", str(runs / "qlearning")]) == 2
    assert "is not the data" in one_error_line(capsys)


# ------------------------------------------------------------ 2. nothing lost when a run dies
def _contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.slow
def test_a_forced_run_killed_by_sigkill_leaves_the_old_run_in_place(tmp_path: Path) -> None:
    base = ["train", "--algo", "dqn", "--data", TINY, "--output", "runs", "--split", "none",
            "--hyperparams", "learning_starts=10", "buffer_size=100"]  # fmt: skip
    assert (
        subprocess.run(
            [sys.executable, "-m", "rlrec.cli", *base, "--timesteps", "40"], cwd=tmp_path
        ).returncode
        == 0
    )
    before = _contents(tmp_path / "runs" / "dqn")
    forced = _rlrec(*base, "--timesteps", "5000000", "--checkpoint-freq", "4000000", "--force", cwd=tmp_path)
    _wait_for(tmp_path / "runs" / ".dqn.staging-*", forced)
    time.sleep(2.0)  # into training, long before its first checkpoint
    forced.kill()
    forced.communicate(timeout=60)
    assert _contents(tmp_path / "runs" / "dqn") == before  # in place, whole
    assert list((tmp_path / "runs").glob(".dqn.staging-*"))  # the dead run's partial work
    # The next command on the folder settles the leftover and the old run is still the run.
    assert main(["recommend", "--model", str(tmp_path / "runs" / "dqn"), "--data", TINY, "--user", "1"]) == 0
    with pytest.warns(UserWarning, match="partial work of a killed --force"):
        with RunFolder(tmp_path / "runs" / "dqn"):
            pass
    assert not list((tmp_path / "runs").glob(".dqn.staging-*"))
    assert _contents(tmp_path / "runs" / "dqn") == before


def test_a_swap_cut_between_its_renames_is_put_back(tmp_path: Path) -> None:
    run = train("dqn", data=TINY, timesteps=40, output=tmp_path, hyperparams={"learning_starts": 10})
    before = _contents(run.run_dir)
    run.run_dir.rename(tmp_path / ".dqn.replaced-999999")  # killed after the first rename
    with pytest.warns(UserWarning, match="put back"):
        with RunFolder(run.run_dir):
            pass
    assert _contents(run.run_dir) == before


def _mount_small_tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    return done.returncode == 0


def test_a_full_disk_during_force_is_one_line_and_keeps_the_old_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    disk = tmp_path / "disk"
    if not _mount_small_tmpfs(disk, "4m"):
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    try:
        argv = ["train", "--algo", "qlearning", "--data", TINY, "--split", "none", "--timesteps", "50",
                "--output", str(disk / "runs")]  # fmt: skip
        assert main(argv) == 0
        before = _contents(disk / "runs" / "qlearning")
        with open(disk / "filler", "wb") as filler:  # leave the disk (almost) full
            try:
                while True:
                    filler.write(b"\0" * 65536)
                    filler.flush()
            except OSError:
                pass
        capsys.readouterr()
        assert main([*argv, "--force"]) == 2
        line = one_error_line(capsys)
        assert "No space left" in line, line
        assert _contents(disk / "runs" / "qlearning") == before
        assert not list((disk / "runs").glob(".qlearning.staging-*"))
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_a_failing_checkpoint_under_force_keeps_the_old_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The full-disk case without a tmpfs: the first save of the new run raises ENOSPC."""
    import errno

    from rlrec.experiments import training

    run = train("qlearning", data=TINY, timesteps=50, output=tmp_path)
    before = _contents(run.run_dir)

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(training, "save_model", full)
    with pytest.raises(OSError, match="No space left"):
        train("qlearning", data=TINY, timesteps=50, output=tmp_path, force=True)
    assert _contents(run.run_dir) == before
    assert not list(tmp_path.glob(".qlearning.*-*"))


def test_relogging_a_dataset_keeps_the_old_one_until_the_new_one_is_whole(
    minari_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import minari

    _log("rlrec/MovieLens/kept-v0", steps=60)
    old_steps = minari.load_dataset("rlrec/MovieLens/kept-v0").total_steps

    real = minari.create_dataset_from_buffers

    def dies_midway(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # the process is stopped while Minari writes

    monkeypatch.setattr(minari, "create_dataset_from_buffers", dies_midway)
    argv = ["data", "log", "--data", TINY, "--policy", "uniform", "--steps", "90"]
    assert main([*argv, "--dataset-id", "rlrec/MovieLens/kept-v0"]) == 130
    assert minari.load_dataset("rlrec/MovieLens/kept-v0").total_steps == old_steps
    monkeypatch.setattr(minari, "create_dataset_from_buffers", real)
    _log("rlrec/MovieLens/kept-v0", steps=90)
    assert minari.load_dataset("rlrec/MovieLens/kept-v0").total_steps >= 90
    assert not [p for p in minari_home.rglob(".*") if "staging" in p.name or "replaced" in p.name]


# ------------------------------------------------------------ 3. races
HOLD_LOCK = """
import sys, time
from pathlib import Path
from rlrec.agents.runs import RunFolder
with RunFolder(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_second_train_into_a_locked_folder_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path / "dqn")], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        argv = ["train", "--algo", "dqn", "--data", TINY, "--timesteps", "20", "--output", str(tmp_path)]
        assert main(argv) == 2
        line = one_error_line(capsys)
        assert f"pid {holder.pid}" in line and "in use by another rlrec run" in line
    finally:
        holder.kill()
        holder.wait()
    # The kernel dropped the dead holder's lock: the stale lock file blocks nothing.
    assert (tmp_path / ".dqn.lock").exists()
    assert main([*argv, "--hyperparams", "learning_starts=5"]) == 0


@pytest.mark.slow
def test_two_trains_started_together_into_one_folder_do_not_both_succeed(tmp_path: Path) -> None:
    args = ["train", "--algo", "dqn", "--data", TINY, "--timesteps", "3000", "--output", "runs",
            "--split", "none", "--hyperparams", "learning_starts=10", "buffer_size=100"]  # fmt: skip
    first, second = _rlrec(*args, cwd=tmp_path), _rlrec(*args, cwd=tmp_path)
    outcomes = sorted(p.wait(timeout=300) for p in (first, second))
    errors = first.stderr.read() + second.stderr.read()  # type: ignore[union-attr]
    assert outcomes == [0, 2], errors
    assert "in use by another rlrec run" in errors or "already holds" in errors


WORKER = """
import sys
from rlrec.tuning.storage import create_study
create_study("dqn", "synthetic", sys.argv[1], "race", heartbeat=None)
print("ok")
"""


def test_workers_started_together_on_a_fresh_sqlite_study_all_start(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, url], cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(6)]  # fmt: skip
    results = [w.communicate(timeout=300) for w in workers]
    assert [w.returncode for w in workers] == [0] * 6, [err for _, err in results if err]


def test_the_sqlite_schema_race_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlalchemy.exc

    from rlrec.tuning import storage

    calls: list[str] = []

    def racing(url: str, **kwargs: object) -> str:
        calls.append(url)
        if len(calls) < 3:  # what SQLite says to the worker that lost the race
            raise sqlalchemy.exc.OperationalError(
                "CREATE TABLE studies", {}, Exception("table studies already exists")
            )
        return "storage"

    monkeypatch.setattr(optuna.storages, "RDBStorage", racing)
    monkeypatch.setattr(storage.time, "sleep", lambda seconds: None)
    assert open_storage("sqlite:///x.db") == "storage" and len(calls) == 3


# ------------------------------------------------------------ 4. tune stops like train
TUNE = ["tune", "--algo", "dqn", "--data", TINY, "--n-trials", "3", "--timesteps", "3000000",
        "--storage", "sqlite:///tune.db"]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_a_trial_fails_it_and_stops_the_worker(
    tmp_path: Path, signum: int, status: int
) -> None:
    worker = _rlrec(*TUNE, cwd=tmp_path)
    _wait_for(tmp_path / "tune.db", worker)
    deadline = time.monotonic() + 120
    storage = f"sqlite:///{tmp_path / 'tune.db'}"
    while time.monotonic() < deadline:
        try:
            study = optuna.load_study(study_name=optuna.get_all_study_names(storage)[0], storage=storage)
            if study.get_trials(states=(optuna.trial.TrialState.RUNNING,)):
                break
        except (IndexError, KeyError, Exception):
            pass
        time.sleep(0.3)
    time.sleep(2.0)  # training
    worker.send_signal(signum)
    _, err = worker.communicate(timeout=120)
    assert worker.returncode == status, err
    assert "Traceback" not in err
    trials = study.get_trials()
    assert len(trials) == 1  # the worker did not go on to its next trials
    assert trials[0].state == optuna.trial.TrialState.FAIL  # never COMPLETE with a partial value


def test_a_killed_workers_trial_is_failed_and_retried(tmp_path: Path) -> None:
    from rlrec.tuning import tune

    url = f"sqlite:///{tmp_path / 'stale.db'}"
    study = create_study("qlearning", TINY, url, "stale", heartbeat=(1, 2))
    stale = study.ask({"learning_rate": optuna.distributions.FloatDistribution(1e-3, 0.5, log=True)})
    study._storage.record_heartbeat(stale._trial_id)  # type: ignore[attr-defined]
    time.sleep(3.0)  # its worker was killed: no heartbeat for longer than the grace period
    tune("qlearning", data=TINY, n_trials=1, storage=url, study_name="stale", timesteps=100,
         heartbeat=(1, 2))  # fmt: skip
    trials = {t.number: t for t in optuna.load_study(study_name="stale", storage=url).get_trials()}
    assert trials[stale.number].state == optuna.trial.TrialState.FAIL
    retried = [t for t in trials.values() if t.system_attrs.get("failed_trial") == stale.number]
    assert retried and retried[0].params["learning_rate"] == stale.params["learning_rate"]


# ------------------------------------------------------------ 5. one-line refusals
@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--hyperparams", "max_grad_norm=-1"], "max_grad_norm"),
        (["--hyperparams", "learning_rate=0"], "learning_rate"),
        (["--hyperparams", "batch_size=1e30"], "batch_size"),
        (["--hyperparams", "buffer_size=10000000000"], "buffer_size"),
        (["--hyperparams", "policy_kwargs=dict(net_arch=[10000000000])"], "net_arch"),
        (["--env-kwargs", "users='12'"], "users"),
    ],
)
def test_hostile_sizes_and_values_are_one_line(
    flags: list[str], named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "train",
        "--algo",
        "sb3-dqn",
        "--data",
        TINY,
        "--timesteps",
        "20",
        "--output",
        str(tmp_path),
        *flags,
    ]
    assert main(argv) == 2
    assert named in one_error_line(capsys)
    assert not list(tmp_path.glob("*/model.*"))


def test_a_string_of_user_ids_is_not_read_character_by_character() -> None:
    import gymnasium

    with pytest.raises(ValueError, match="users: expected a list of userIds"):
        gymnasium.make("rlrec/MovieLens-v0", data=TINY, users="12")


def test_a_timestamp_past_int64_is_refused_naming_the_line(tmp_path: Path) -> None:
    folder = write_movielens_csv(load_movielens(TINY), tmp_path / "release")
    lines = (folder / "ratings.csv").read_text().splitlines()
    fields = lines[3].split(",")
    fields[3] = "99999999999999999999"
    lines[3] = ",".join(fields)
    (folder / "ratings.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"ratings\.csv.*line 4.*64-bit"):
        load_movielens(folder)


def test_a_zip_holding_two_releases_is_refused_like_the_folder(tmp_path: Path) -> None:
    release = write_movielens_csv(load_movielens(TINY), tmp_path / "one")
    archive = tmp_path / "two.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for prefix in ("a", "b"):
            for name in ("ratings.csv", "movies.csv"):
                out.write(release / name, f"{prefix}/{name}")
    with pytest.raises(DatasetError, match=r"two\.zip: several MovieLens releases inside \(a/, b/\)"):
        load_movielens(archive)


def test_training_leaves_no_stray_folder_in_the_temp_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    train("sb3-dqn", data=TINY, timesteps=40, output=tmp_path / "runs")
    assert [p.name for p in temp.iterdir()] == []


def test_a_refused_train_leaves_no_folder_and_no_lock_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "runs"
    assert main(["train", "--algo", "dqn", "--data", str(tmp_path / "nope"), "--output", str(output)]) == 2
    assert (
        main(["train", "--algo", "dqn", "--data", TINY, "--output", str(output), "--hyperparams", "gamma=2"])
        == 2
    )
    capsys.readouterr()
    assert not output.exists()


def test_a_run_a_killed_swap_left_aside_is_reported_by_readers(tmp_path: Path) -> None:
    run = train("qlearning", data=TINY, timesteps=50, output=tmp_path)
    run.run_dir.rename(tmp_path / ".qlearning.replaced-999999")
    with pytest.raises(FileNotFoundError, match=r"a killed --force left the run in .*replaced-999999"):
        load_run(run.run_dir)
