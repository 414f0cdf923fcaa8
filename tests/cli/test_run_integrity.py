"""Run integrity: a model is never silently paired with the wrong data, run record or flags.

One test (or more) per finding of the CLI probe: renamed movies, mixed run folders, ``--resume``
flags, SIGTERM / SIGINT, damaged artifacts, output paths under a file, env options, leftovers of
killed saves, and the validation gaps. Errors are checked as one line on stderr, exit 2, the file
named, no traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import gymnasium
import numpy as np
import pytest

import rlrec  # noqa: F401  (registers the env ids)
from rlrec.cli import main
from rlrec.data import load_movielens, write_movielens_csv
from rlrec.experiments.training import RUN_FILE, load_run, train
from rlrec.utils.io import atomic_open, load_json, remove_stale_temporaries, save_json
from tests.cli.test_train_cli import one_error_line

TINY = "synthetic:n_users=10,n_movies=40,n_ratings=120,seed=3"
FAST_DQN = ["--hyperparams", "learning_starts=10", "buffer_size=100"]


def _train(output: Path, *extra: str, algo: str = "dqn", data: str = TINY) -> int:
    argv = ["train", "--algo", algo, "--data", data, "--timesteps", "40", "--output", str(output)]
    return main([*argv, *(FAST_DQN if algo == "dqn" else []), *extra])


def _error(capsys: pytest.CaptureFixture[str], command: str) -> str:
    line = one_error_line(capsys)
    assert line.startswith(f"rlrec {command}: error: "), line
    return line


# ------------------------------------------------------------ 1. wrong data, right shape
@pytest.fixture()
def tiny_folder(tmp_path: Path) -> Path:
    return write_movielens_csv(load_movielens(TINY), tmp_path / "tiny")


def _renamed_copy(folder: Path, target: Path) -> Path:
    """The same release with one movieId renamed: the same number of movies, other ids."""
    target.mkdir()
    for name in ("ratings.csv", "movies.csv"):
        text = (folder / name).read_text(encoding="utf-8")
        lines = text.splitlines()
        first_movie = lines[1].split(",")[0] if name == "movies.csv" else None
        (target / name).write_text(text, encoding="utf-8")
        if first_movie is not None:
            renamed = 999_999
            movies = (target / "movies.csv").read_text(encoding="utf-8").splitlines()
            movies[1] = f"{renamed}," + movies[1].split(",", 1)[1]
            (target / "movies.csv").write_text("\n".join(movies) + "\n", encoding="utf-8")
            ratings = (target / "ratings.csv").read_text(encoding="utf-8").splitlines()
            fixed = [ratings[0]] + [
                ",".join([u, str(renamed) if m == first_movie else m, r, t])
                for u, m, r, t in (row.split(",") for row in ratings[1:])
            ]
            (target / "ratings.csv").write_text("\n".join(fixed) + "\n", encoding="utf-8")
    assert load_movielens(target).n_movies == load_movielens(folder).n_movies
    return target


def test_a_renamed_movie_is_refused_by_recommend_evaluate_and_resume(
    tiny_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    renamed = _renamed_copy(tiny_folder, tmp_path / "renamed")
    assert _train(tmp_path / "runs", data=str(tiny_folder)) == 0
    run = tmp_path / "runs" / "dqn"
    recorded = load_json(run / RUN_FILE)["data_fingerprint"]
    assert recorded == load_movielens(tiny_folder).fingerprint()
    capsys.readouterr()
    user = str(load_movielens(tiny_folder).user_ids[0])
    for argv, command in (
        (["recommend", "--model", str(run), "--user", user, "--data", str(renamed)], "recommend"),
        (["evaluate", "--model", str(run), "--data", str(renamed)], "evaluate"),
    ):
        assert main(argv) == 2
        line = _error(capsys, command)
        assert "is not the data" in line and "renamed" in line and str(tiny_folder) in line
    # the model's own data still works
    assert main(["recommend", "--model", str(run), "--user", user, "--data", str(tiny_folder)]) == 0


def test_another_release_with_another_movie_count_gets_the_intended_message(
    tiny_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = write_movielens_csv(
        load_movielens("synthetic:n_users=10,n_movies=30,n_ratings=100"), tmp_path / "o"
    )
    for algo in ("dqn", "sb3-dqn"):
        assert _train(tmp_path / "runs", algo=algo, data=str(tiny_folder)) == 0
        capsys.readouterr()
        run = tmp_path / "runs" / algo
        assert main(["recommend", "--model", str(run), "--user", "1", "--data", str(other)]) == 2
        line = _error(capsys, "recommend")
        assert "30 movies" in line and "40 movies" in line and "reshape" not in line


def test_an_old_run_without_fingerprint_loads_with_one_warning(
    tiny_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(tmp_path / "runs", data=str(tiny_folder)) == 0
    record = tmp_path / "runs" / "dqn" / RUN_FILE
    config = load_json(record)
    del config["data_fingerprint"]
    save_json(record, config)
    capsys.readouterr()
    user = str(load_movielens(tiny_folder).user_ids[0])
    assert main(["recommend", "--model", str(record.parent), "--user", user]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1 and err[0].startswith("rlrec recommend: warning: ") and "no data fingerprint" in err[0]
    )


# ------------------------------------------------------------ 2. run folders never mixed
def test_a_folder_with_a_run_is_refused_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(tmp_path) == 0
    before = (tmp_path / "dqn" / "model.pt").read_bytes(), (tmp_path / "dqn" / RUN_FILE).read_bytes()
    capsys.readouterr()
    assert _train(tmp_path, "--hyperparams", "net_arch=[32]") == 2
    line = _error(capsys, "train")
    assert "already holds a done dqn run (40 timesteps)" in line and "--force" in line and "--resume" in line
    assert (
        (tmp_path / "dqn" / "model.pt").read_bytes(),
        (tmp_path / "dqn" / RUN_FILE).read_bytes(),
    ) == before


class _Crash(RuntimeError):
    pass


def test_a_forced_run_that_dies_before_its_first_checkpoint_leaves_the_old_run_intact(tmp_path: Path) -> None:
    from stable_baselines3.common.callbacks import BaseCallback

    train(
        "dqn", data=TINY, timesteps=40, output=tmp_path, hyperparams={"net_arch": [64], "learning_starts": 10}
    )
    before = {p.name: p.read_bytes() for p in (tmp_path / "dqn").iterdir()}

    class CrashAt(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps >= 5:
                raise _Crash("the machine went away")
            return True

    with pytest.raises(_Crash):
        train(
            "dqn",
            data=TINY,
            timesteps=40,
            output=tmp_path,
            hyperparams={"net_arch": [32], "learning_starts": 10},
            force=True,
            checkpoint_freq=1000,
            callbacks=[CrashAt()],
        )
    after = {p.name: p.read_bytes() for p in (tmp_path / "dqn").iterdir()}
    assert after == before  # the old run came back, whole
    assert not list(tmp_path.glob(".dqn.replaced-*"))
    assert load_run(tmp_path / "dqn").model.net_arch == [64]
    # A forced run that does save replaces the old one completely.
    train("dqn", data=TINY, timesteps=40, output=tmp_path, hyperparams={"net_arch": [32]}, force=True)
    assert load_run(tmp_path / "dqn").model.net_arch == [32]
    assert load_json(tmp_path / "dqn" / RUN_FILE)["hyperparameters"]["net_arch"] == [32]
    assert not list(tmp_path.glob(".dqn.replaced-*"))


# ------------------------------------------------------------ 3. --resume is exact
@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--data", "synthetic"], "--data synthetic"),
        (["--seed", "99"], "--seed 99"),
        (["--split", "none"], "--split none"),
        (["--env", "rlrec/MovieLensSession-v0"], "--env rlrec/MovieLensSession-v0"),
        (["--eval-freq", "20"], "--eval-freq 20"),
    ],
)
def test_resume_refuses_flags_that_contradict_the_record(
    flags: list[str], named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(tmp_path, "--seed", "3") == 0
    capsys.readouterr()
    argv = ["train", "--algo", "dqn", "--output", str(tmp_path), "--resume", "--timesteps", "80", *flags]
    assert main(argv) == 2
    line = _error(capsys, "train")
    assert named in line and "contradicts" in line and str(tmp_path / "dqn" / RUN_FILE) in line
    assert load_json(tmp_path / "dqn" / RUN_FILE)["timesteps_done"] == 40


def test_resume_accepts_flags_that_repeat_the_record(tmp_path: Path) -> None:
    assert _train(tmp_path, "--seed", "3") == 0
    argv = ["train", "--algo", "dqn", "--output", str(tmp_path), "--resume", "--timesteps", "80"]
    assert main([*argv, "--data", TINY, "--seed", "3", "--split", "temporal"]) == 0
    assert load_json(tmp_path / "dqn" / RUN_FILE)["timesteps_done"] == 80


def test_resume_and_force_together_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _train(tmp_path) == 0
    capsys.readouterr()
    assert main(["train", "--algo", "dqn", "--output", str(tmp_path), "--resume", "--force"]) == 2
    assert "give one of them" in _error(capsys, "train")


# ------------------------------------------------------------ 4-5. signals
def _rlrec(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "rlrec.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(path: Path, process: subprocess.Popen[str], seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not (path.exists() if "*" not in path.name else list(path.parent.glob(path.name))):
        if process.poll() is not None:
            pytest.fail(f"the command ended first: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"{path} never appeared")
        time.sleep(0.1)


@pytest.mark.slow
def test_sigterm_checkpoints_marks_the_run_and_exits_143(tmp_path: Path) -> None:
    args = ["train", "--algo", "dqn", "--data", TINY, "--timesteps", "2000000", "--output", "runs"]
    process = _rlrec(*args, "--checkpoint-freq", "200", *FAST_DQN, cwd=tmp_path)
    _wait_for(tmp_path / "runs" / "dqn" / RUN_FILE, process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert (
        err.strip().splitlines() == [err.strip()] and "stopped by SIGTERM" in err and "Traceback" not in err
    )
    config = load_json(tmp_path / "runs" / "dqn" / RUN_FILE)
    assert config["status"] == "interrupted" and config["timesteps_done"] > 0
    done = config["timesteps_done"]
    assert load_run(tmp_path / "runs" / "dqn").model.num_timesteps == done
    resumed = _rlrec(*args[:5], "--output", "runs", "--resume", "--timesteps", str(done + 100), cwd=tmp_path)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert load_json(tmp_path / "runs" / "dqn" / RUN_FILE)["timesteps_done"] == done + 100


@pytest.mark.slow
def test_ctrl_c_during_benchmark_writes_an_interrupted_report_and_exits_130(tmp_path: Path) -> None:
    args = ["benchmark", "--data", TINY, "--algos", "dqn", "--timesteps", "3000000", "--out", "bench"]
    process = _rlrec(*args, cwd=tmp_path)
    # The learner's TensorBoard run appears when its training starts.
    _wait_for(tmp_path / "bench" / "tb" / "dqn_1" / "events.out.tfevents.*", process, seconds=300)
    time.sleep(3)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "interrupted by SIGINT" in err
    report = load_json(tmp_path / "bench" / "benchmark.json")
    stopped = report["interrupted"]
    assert stopped["signal"] == "SIGINT" and stopped["exit_status"] == 130
    steps = stopped["steps_done"]["dqn"]
    assert 0 < steps["timesteps"] < steps["timesteps_target"] == 3_000_000
    assert set(stopped["not_run"]) == {"random", "popularity", "ease", "edlae", "als"}
    assert "random" not in report["results"]  # nothing measured after the stop
    markdown = (tmp_path / "bench" / "benchmark.md").read_text(encoding="utf-8")
    assert "**Interrupted** by SIGINT" in markdown and "of 3,000,000 timesteps" in markdown


# ------------------------------------------------------------ 6. damaged / foreign artifacts
def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if how == "truncated" else b"\x00garbage\xff" * 50)


@pytest.mark.parametrize("how", ["truncated", "garbage"])
@pytest.mark.parametrize(
    ("algo", "model_file"), [("dqn", "model.pt"), ("qlearning", "model.npz"), ("sb3-dqn", "model.zip")]
)
def test_damaged_model_files_give_one_line_naming_the_file(
    algo: str, model_file: str, how: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(tmp_path, algo=algo) == 0
    model = tmp_path / algo / model_file
    _damage(model, how)
    capsys.readouterr()
    for argv, command in (
        (["evaluate", "--model", str(tmp_path / algo)], "evaluate"),
        (["recommend", "--model", str(tmp_path / algo), "--user", "1"], "recommend"),
        (["train", "--algo", algo, "--output", str(tmp_path), "--resume", "--timesteps", "80"], "train"),
    ):
        assert main(argv) == 2
        line = _error(capsys, command)
        assert str(model) in line and "weights_only" not in line and "pickle" not in line.lower()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2, 3]", "expected a JSON object, got a JSON list"),
        (
            '{"algo": "ppo", "env_id": "x", "model_file": "model.pt", "data": "d"}',
            "a ppo run saves model.zip",
        ),
        ('{"algo": "nope", "env_id": "x", "model_file": "model.pt", "data": "d"}', "unknown algo 'nope'"),
        ('{"env_id": "x"}', "algo, model_file, data missing"),
    ],
)
def test_damaged_run_json_gives_one_line_naming_the_file(
    content: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(tmp_path) == 0
    record = tmp_path / "dqn" / RUN_FILE
    record.write_text(content, encoding="utf-8")
    capsys.readouterr()
    for argv, command in (
        (["evaluate", "--model", str(tmp_path / "dqn")], "evaluate"),
        (["train", "--algo", "dqn", "--output", str(tmp_path), "--resume", "--timesteps", "80"], "train"),
    ):
        assert main(argv) == 2
        line = _error(capsys, command)
        assert str(record) in line and message in line


def test_a_model_file_of_another_algo_gives_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(tmp_path / "a") == 0
    assert _train(tmp_path / "b", algo="qlearning") == 0
    foreign = tmp_path / "b" / "qlearning" / "model.npz"
    (tmp_path / "a" / "dqn" / "model.pt").write_bytes(foreign.read_bytes())
    capsys.readouterr()
    assert main(["evaluate", "--model", str(tmp_path / "a" / "dqn")]) == 2
    line = _error(capsys, "evaluate")
    assert str(tmp_path / "a" / "dqn" / "model.pt") in line and "not a dqn model" in line


def test_the_readable_model_json_copy_is_not_needed_to_load(tmp_path: Path) -> None:
    assert _train(tmp_path) == 0
    (tmp_path / "dqn" / "model.json").write_text("{garbage", encoding="utf-8")
    assert load_run(tmp_path / "dqn").model.num_timesteps == 40  # the weights carry their own copy


# ------------------------------------------------------------ 7. output paths under a file
def test_output_paths_under_a_regular_file_give_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    assert _train(tmp_path / "runs", "--tensorboard-log", str(tmp_path / "tb")) == 0
    capsys.readouterr()
    under = str(blocker / "x")
    for argv, command in (
        (["train", "--algo", "dqn", "--data", TINY, "--timesteps", "20", "--output", under], "train"),
        (["evaluate", "--baseline", "popularity", "--data", TINY, "--json", f"{under}/m.json"], "evaluate"),
        (["plot", str(tmp_path / "tb"), "-o", f"{under}/c.png"], "plot"),
        (["benchmark", "--data", TINY, "--algos", "--out", under], "benchmark"),
    ):
        assert main(argv) == 2, argv
        line = _error(capsys, command)
        assert str(blocker) in line and "regular file" in line


# ------------------------------------------------------------ 8. env options
@pytest.mark.parametrize("env_id", ["rlrec/MovieLens-v0", "rlrec/MovieLensSession-v0"])
def test_both_env_families_take_user_id_and_refuse_unknown_options(env_id: str) -> None:
    data = load_movielens(TINY)
    user_id = int(data.user_ids[3])
    env = gymnasium.make(env_id, data=data)
    assert env.reset(seed=0, options={"user_id": user_id})[1]["user_id"] == user_id
    vector = gymnasium.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point", data=data)
    assert list(vector.reset(seed=0, options={"user_id": user_id})[1]["user_id"]) == [user_id, user_id]
    for target in (env, vector):
        with pytest.raises(ValueError, match="unknown key"):
            target.reset(options={"user": 1})
        with pytest.raises(ValueError, match="integer userId"):
            target.reset(options={"user_id": 1.7})


# ------------------------------------------------------------ 9. leftovers of killed saves
def test_a_stale_temporary_of_a_killed_writer_is_removed_at_the_next_save(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)
    stale = tmp_path / f".model.pt.{pid}.abc123.tmp"
    stale.write_bytes(b"x" * 1000)
    alive = tmp_path / f".model.pt.{os.getpid()}.def456.tmp"  # a save in progress: kept
    alive.write_bytes(b"y")
    unrelated = tmp_path / ".model.pt.notapid.tmp"
    unrelated.write_bytes(b"z")
    with atomic_open(tmp_path / "run.json") as handle:
        handle.write("{}")
    assert not stale.exists() and alive.exists() and unrelated.exists()
    alive.unlink()
    assert remove_stale_temporaries(tmp_path) == []


def test_identical_runs_save_identical_bytes(tmp_path: Path) -> None:
    def digests(output: Path) -> dict[str, str]:
        assert _train(output, "--seed", "5") == 0
        folder = output / "dqn"
        return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in ("model.pt",)}

    assert digests(tmp_path / "one") == digests(tmp_path / "two")
    for algo in ("qlearning",):
        assert _train(tmp_path / "q1", algo=algo) == 0 and _train(tmp_path / "q2", algo=algo) == 0
        first, second = (tmp_path / f"q{i}" / algo / "model.npz" for i in (1, 2))
        assert first.read_bytes() == second.read_bytes()


# ------------------------------------------------------------ 10. validation gaps
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--env-kwargs", "max_episode_steps=abc"], "max_episode_steps: expected a whole number, got"),
        (["--env-kwargs", "mask_recommended=maybe"], "mask_recommended: expected True or False, got 'maybe'"),
        (["--env-kwargs", "users=abc"], "users: expected a list of userIds"),
        (["--hyperparams", "device=tpu"], "hyperparameter device: 'auto', 'cpu', 'cuda'"),
        (["--hyperparams", "gamma=2"], "hyperparameter gamma: must be a number in [0, 1], got 2"),
        (["--hyperparams", "_spaces=1"], "unknown hyperparameter '_spaces'"),
        (["--hyperparams", "net_arch=abc"], "hyperparameter net_arch: expected layer widths like [64, 64]"),
        (["--checkpoint-freq", "0"], "--checkpoint-freq: must be >= 1"),
    ],
)
def test_validation_gaps_are_one_line(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(tmp_path, *extra) == 2
    assert message in _error(capsys, "train")


def test_unknown_hyperparameters_do_not_list_private_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(tmp_path, "--hyperparams", "nope=1") == 2
    assert "_spaces" not in _error(capsys, "train")


def _csv(tmp_path: Path, rows: list[str]) -> Path:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + "\n".join(rows) + "\n")
    (folder / "movies.csv").write_text("movieId,title,genres\n1,A,Drama\n2,B,Drama\n")
    return folder


def test_nan_ratings_and_negative_ids_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nan = _csv(tmp_path, ["1,1,4.0,10", "1,2,NaN,11"])
    assert main(["data", "info", str(nan)]) == 2
    assert "line 3: rating must be a number, got an empty field or NaN" in _error(capsys, "data")
    (nan / "ratings.csv").write_text("userId,movieId,rating,timestamp\n-3,1,4.0,10\n")
    assert main(["data", "info", str(nan)]) == 2
    assert "line 2: userId must be a non-negative id, got -3" in _error(capsys, "data")


def test_the_duplicate_rating_notice_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _csv(tmp_path, ["1,1,4.0,10", "1,1,3.0,11", "1,2,3.0,12"])
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        assert main(["data", "info", str(folder)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rlrec data: warning: ") and "repeated" in err[0]


@pytest.mark.parametrize("action", [np.array([3]), None, 2.5, "3"])
def test_movielens_step_refuses_what_is_not_one_movie_index(action: object) -> None:
    env = gymnasium.make("rlrec/MovieLens-v0", data=TINY)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="one movie index"):
        env.step(action)


def test_json_is_written_atomically_and_sorted(tmp_path: Path) -> None:
    save_json(tmp_path / "a.json", {"b": 1, "a": np.int64(2)})
    assert json.loads((tmp_path / "a.json").read_text()) == {"a": 2, "b": 1}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
