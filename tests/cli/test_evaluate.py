"""``rlrec evaluate``: checked against a plain pandas computation of the same protocol."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rlrec.cli import main
from rlrec.data import load_movielens
from rlrec.data.split import temporal_split


def pandas_popularity(folder: Path, k: int = 10) -> dict[str, float]:
    """Popularity under the protocol, written independently: pandas, ids, integer arithmetic.

    Per user: sort by (timestamp, movieId), hold out the last ceil(n / 5) when n >= 5; count train
    ratings per movie; rank every movie of movies.csv the user has not rated in train by
    (-count, movieId); relevant = held-out ratings >= 4.
    """
    ratings = pd.read_csv(folder / "ratings.csv").sort_values(["userId", "timestamp", "movieId"])
    catalogue = np.sort(pd.read_csv(folder / "movies.csv")["movieId"].unique())
    n = ratings.groupby("userId")["movieId"].transform("size")
    position = ratings.groupby("userId").cumcount()
    held_out = np.where(n >= 5, (n + 4) // 5, 0)  # ceil(0.2 n) without floating point
    test_mask = position >= n - held_out
    train, test = ratings[~test_mask], ratings[test_mask]
    counts = train["movieId"].value_counts().reindex(catalogue, fill_value=0)
    order = sorted(catalogue, key=lambda movie: (-counts[movie], movie))
    ndcg, precision, hits, shown = [], [], [], set()
    for user, rows in test.groupby("userId"):
        relevant = set(rows.loc[rows["rating"] >= 4.0, "movieId"])
        if not relevant:
            continue
        seen = set(train.loc[train["userId"] == user, "movieId"])
        top = [movie for movie in order if movie not in seen][:k]
        shown.update(top)
        gains = [1.0 / np.log2(rank + 2) for rank, movie in enumerate(top) if movie in relevant]
        ideal = sum(1.0 / np.log2(rank + 2) for rank in range(min(k, len(relevant))))
        ndcg.append(sum(gains) / ideal)
        precision.append(len(gains) / k)
        hits.append(1.0 if gains else 0.0)
    return {
        f"ndcg@{k}": float(np.mean(ndcg)),
        f"precision@{k}": float(np.mean(precision)),
        f"hit_rate@{k}": float(np.mean(hits)),
        f"coverage@{k}": len(shown) / len(catalogue),
        "n_users": len(ndcg),
    }


def _write_tiny(folder: Path) -> Path:
    rng = np.random.default_rng(7)
    movie_ids = np.arange(40) * 10 + 3  # ids are not indices
    popularity = np.linspace(3, 0.2, len(movie_ids))
    rows = []
    for user in range(1, 31):
        n = int(rng.integers(2, 16))  # some users below 5 ratings stay in train
        for movie in rng.choice(movie_ids, size=n, replace=False, p=popularity / popularity.sum()):
            rows.append(
                (user, int(movie), float(rng.choice([2.0, 3.5, 4.0, 5.0])), int(rng.integers(1000, 1010)))
            )
    folder.mkdir()
    pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"]).to_csv(
        folder / "ratings.csv", index=False
    )
    titles = [f"Movie {m} (2000)" for m in movie_ids]
    pd.DataFrame({"movieId": movie_ids, "title": titles, "genres": "Drama"}).to_csv(
        folder / "movies.csv", index=False
    )
    return folder


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _printed(out: str) -> dict[str, float]:
    values = {}
    for line in out.splitlines():
        key, sep, value = line.partition(": ")
        if (sep and "@" in key) or key == "n_users":
            values[key] = float(value)
    return values


def test_popularity_on_a_tiny_dataset(tmp_path, capsys):
    folder = _write_tiny(tmp_path / "tiny")
    target = tmp_path / "out" / "popularity.json"
    code, out, err = _run(
        capsys,
        "evaluate",
        "--baseline",
        "popularity",
        "--data",
        str(folder),
        "-k",
        "5",
        "--json",
        str(target),
    )
    assert code == 0, err
    expected = pandas_popularity(folder, k=5)
    result = json.loads(target.read_text())
    assert result["baseline"] == "popularity" and result["protocol"]["k"] == 5
    for key, value in expected.items():
        assert result["metrics"][key] == pytest.approx(value, abs=1e-12), key
    printed = _printed(out)
    assert set(printed) == {
        "ndcg@5",
        "precision@5",
        "recall@5",
        "hit_rate@5",
        "mrr@5",
        "coverage@5",
        "n_users",
    }
    assert printed["ndcg@5"] == pytest.approx(expected["ndcg@5"], abs=5e-5)  # printed to 4 decimals
    assert not list(target.parent.glob(".*tmp*"))  # atomic write left no temp file


@pytest.mark.slow
def test_popularity_on_real_data(real_data_home, tmp_path, capsys):
    folder = real_data_home / "ml-latest-small-2016"
    target = tmp_path / "real.json"
    code, _, err = _run(
        capsys, "evaluate", "--baseline", "popularity", "--data", str(folder), "--json", str(target)
    )
    assert code == 0, err
    metrics = json.loads(target.read_text())["metrics"]
    # the reference: popularity NDCG@10 ~ 0.07 on this release
    assert 0.06 < metrics["ndcg@10"] < 0.08
    expected = pandas_popularity(folder, k=10)
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, abs=1e-12), key


def test_random_baseline_is_seeded(tmp_path, capsys):
    folder = _write_tiny(tmp_path / "tiny")
    outputs = []
    for seed in ("1", "1", "2"):
        code, out, err = _run(
            capsys, "evaluate", "--baseline", "random", "--data", str(folder), "--seed", seed, "-k", "20"
        )
        assert code == 0, err
        outputs.append(_printed(out))
    assert outputs[0] == outputs[1]
    assert outputs[0] != outputs[2]


def test_errors_are_one_line(tmp_path, capsys):
    code, _, err = _run(capsys, "evaluate", "--baseline", "popularity", "--data", str(tmp_path / "missing"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "missing" in err
    code, _, err = _run(
        capsys,
        "evaluate",
        "--baseline",
        "popularity",
        "--data",
        "synthetic:n_users=20,n_movies=50,n_ratings=400",
        "-k",
        "0",
    )
    assert code == 2 and "-k" in err
    code, _, err = _run(capsys, "evaluate", "--model", str(tmp_path / "nothing.zip"))
    assert code == 2 and "nothing.zip" in err and len(err.strip().splitlines()) == 1


def test_a_model_trained_without_the_split_is_evaluated_with_a_warning(tmp_path, capsys):
    data = "synthetic:n_users=30,n_movies=80,n_ratings=700"
    runs = tmp_path / "runs"
    code, _, err = _run(
        capsys,
        "train",
        "--algo",
        "qlearning",
        "--data",
        data,
        "-n",
        "100",
        "--output",
        str(runs),
        "--split",
        "none",
    )
    assert code == 0, err
    code, out, err = _run(capsys, "evaluate", "--model", str(runs / "qlearning"), "--data", data)
    assert code == 0, err
    assert "warning" in err and "split" in err
    assert "ndcg@10" in _printed(out)


def test_rlrec_train_holds_out_the_test_part_by_default(tmp_path, capsys):
    data = "synthetic:n_users=30,n_movies=80,n_ratings=700"
    runs = tmp_path / "runs"
    code, _, err = _run(
        capsys, "train", "--algo", "qlearning", "--data", data, "-n", "100", "--output", str(runs)
    )
    assert code == 0, err
    config = json.loads((runs / "qlearning" / "run.json").read_text())
    split = temporal_split(load_movielens(data))
    assert config["dataset"]["ratings"] == split.train.n_ratings < load_movielens(data).n_ratings
    code, out, err = _run(capsys, "evaluate", "--model", str(runs / "qlearning"))
    assert code == 0 and "warning" not in err, err
    assert "ndcg@10" in _printed(out)
