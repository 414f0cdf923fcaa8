"""`rlrec recommend`: top-k unrated movies by the model's scores, and its errors."""

from __future__ import annotations

import re
from pathlib import Path

import gymnasium
import numpy as np
import pytest

from rlrec.agents.scoring import score_movies
from rlrec.cli import main
from rlrec.data import load_movielens, write_movielens_csv
from rlrec.data.dataset import RatingsDataset, build_dataset
from rlrec.experiments.training import load_run, train

# Movies (id -> index): 7->0, 11->1, 13->2, 42->3, 99->4, 123->5.
MOVIE_IDS = np.array([7, 11, 13, 42, 99, 123])
TITLES = [
    "Seven (1995)",
    "Eleven (2001)",
    "Thirteen (2003)",
    "Forty-Two (2013)",
    "Ninety-Nine (1999)",
    "Nobody (2020)",
]
RATINGS = {10: {7: 4.0, 13: 2.0}, 20: {11: 5.0, 42: 4.0, 99: 1.5}, 30: {7: 2.0, 99: 5.0}}

LINE = re.compile(r"^\s*(\d+)\.\s+(-?[\d.]+)\s+(\d+)\s+(.+)$")


def hand_dataset() -> RatingsDataset:
    rows = [(u, m, r) for u, movies in RATINGS.items() for m, r in movies.items()]
    users, movies, ratings = (np.array(column) for column in zip(*rows))
    return build_dataset(
        "hand",
        users,
        movies,
        ratings.astype(np.float32),
        np.arange(len(rows), dtype=np.int64),
        MOVIE_IDS,
        np.array(TITLES, dtype=object),
        np.array(["Drama"] * len(MOVIE_IDS), dtype=object),
    )


@pytest.fixture()
def hand_folder(tmp_path: Path) -> Path:
    return write_movielens_csv(hand_dataset(), tmp_path / "hand")


def parse(out: str) -> list[tuple[int, float, int, str]]:
    lines = out.strip().splitlines()
    assert lines[1].split() == ["rank", "score", "movieId", "title"]  # the columns are labelled
    rows = []
    for line in lines[2:]:
        match = LINE.match(line)
        assert match, line
        rows.append((int(match[1]), float(match[2]), int(match[3]), match[4]))
    return rows


def test_recommend_ranks_unrated_movies_by_the_model_scores(
    hand_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = train("qlearning", data=str(hand_folder), timesteps=20, output=tmp_path / "models")
    # Q-values set by hand for user 20 (index 1); rated: 11, 42, 99 (indices 1, 3, 4).
    model = result.model
    model.q_table[1] = np.array([0.5, 9.0, 3.0, 7.0, 1.0, 4.0], dtype=np.float32)
    model.save(result.model_path)

    assert main(["recommend", "--model", str(result.run_dir), "--user", "20", "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("top 2 for user 20 (qlearning")
    assert parse(out) == [(1, 4.0, 123, "Nobody (2020)"), (2, 3.0, 13, "Thirteen (2003)")]

    # The model file works as well as its folder; k larger than the unrated movies gives all 3.
    assert main(["recommend", "--model", str(result.model_path), "--user", "20", "-k", "10"]) == 0
    assert [row[2] for row in parse(capsys.readouterr().out)] == [123, 13, 7]


def test_recommend_with_an_sb3_model_matches_score_movies(
    hand_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hyperparams = {"learning_starts": 8, "batch_size": 4, "buffer_size": 64}
    train("sb3-dqn", data=str(hand_folder), hyperparams=hyperparams, timesteps=24, output=tmp_path)
    assert main(["recommend", "--model", str(tmp_path / "sb3-dqn"), "--user", "10", "-k", "3"]) == 0
    rows = parse(capsys.readouterr().out)

    # Independent route: the env's observation of user 10 scored by the loaded model.
    dataset = load_movielens(hand_folder)
    env = gymnasium.make("rlrec/MovieLens-v0", data=dataset)
    observation = env.unwrapped.observations(np.array([0]))  # type: ignore[attr-defined]
    scores = score_movies(load_run(tmp_path / "sb3-dqn").model, observation)[0]
    unrated = [1, 3, 4, 5]  # user 10 rated movies 7 and 13
    expected = sorted(unrated, key=lambda j: (-scores[j], j))[:3]
    assert [row[2] for row in rows] == [int(MOVIE_IDS[j]) for j in expected]
    assert [row[3] for row in rows] == [TITLES[j] for j in expected]
    np.testing.assert_allclose([row[1] for row in rows], scores[expected], atol=1e-4)
    assert [row[0] for row in rows] == [1, 2, 3]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "999"], "--user: unknown user id 999 in hand"),
        (["--user", "10", "-k", "0"], "-k: must be >= 1, got 0"),
    ],
)
def test_recommend_errors_are_one_line(
    args: list[str], message: str, hand_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = train("qlearning", data=str(hand_folder), timesteps=10, output=tmp_path)
    capsys.readouterr()
    assert main(["recommend", "--model", str(result.run_dir), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"rlrec recommend: error: {message}"]


def test_recommend_without_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recommend", "--model", str(tmp_path / "missing"), "--user", "1"]) == 2
    assert "no such model file or folder" in capsys.readouterr().err
    assert main(["recommend", "--model", str(tmp_path), "--user", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no run.json" in err[0]
