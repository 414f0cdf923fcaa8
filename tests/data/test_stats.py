"""Dataset statistics by hand on a tiny dataset, and ``rlrec data compare`` end to end."""

from __future__ import annotations

import numpy as np
import pytest

from rlrec.cli import main
from rlrec.data import load_movielens
from rlrec.data.stats import (
    activity_gini,
    activity_median,
    describe,
    gini,
    liked_share,
    popularity_drift,
    popularity_gini,
    rating_shares,
    unrated_share,
    whole_star_share,
)
from tests.envs.tiny_data import tiny_dataset

# tiny_data: ratings 4.0 2.0 | 5.0 4.0 1.5 | 2.0 5.0 ; movies (7, 11, 13, 42, 99, 123) rated
# 2, 1, 1, 1, 2, 0 times; users rated 2, 3, 2 movies.


def test_gini_by_hand() -> None:
    assert gini(np.array([1, 1, 1, 1])) == 0.0
    assert gini(np.array([0, 0, 0, 4])) == pytest.approx(0.75)  # (2*4 - 4 - 1) * 4 / (4 * 4)
    assert gini(np.array([])) == 0.0 and gini(np.zeros(3)) == 0.0


def test_statistics_by_hand() -> None:
    data = tiny_dataset()
    # counts sorted 0,1,1,1,2,2 (sum 7): sum (2i - 7) x_i = -3*1 -1*1 +1*1 +3*2 +5*2 = 13 -> 13 / 42
    assert popularity_gini(data) == pytest.approx(13 / 42)
    assert unrated_share(data) == pytest.approx(1 / 6)
    assert activity_median(data) == 2.0
    # activity 2, 2, 3 (sum 7): (-2*2 + 0*2 + 2*3) / (3 * 7) = 2 / 21
    assert activity_gini(data) == pytest.approx(2 / 21)
    assert liked_share(data) == pytest.approx(4 / 7)  # 4.0, 5.0, 4.0, 5.0
    assert whole_star_share(data) == pytest.approx(6 / 7)  # all but 1.5
    assert rating_shares(data) == pytest.approx({"1.5": 1 / 7, "2.0": 2 / 7, "4.0": 2 / 7, "5.0": 2 / 7})
    assert set(describe(data)) >= {"popularity_gini", "rating_shares", "users", "movies", "ratings"}


def test_popularity_drift_is_zero_when_the_same_movies_stay_popular() -> None:
    data = load_movielens("synthetic:n_users=80,n_movies=60,n_ratings=1500,seed=1")
    assert 0.0 <= popularity_drift(data) <= 2.0
    # The same ratings with every timestamp equal: nothing "moves" between halves that both exist.
    assert popularity_drift(tiny_dataset()) == 0.0  # too few movies in both halves


def test_data_compare_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    a, b = (
        "synthetic:n_users=40,n_movies=60,n_ratings=500,seed=1",
        "synthetic:n_users=40,n_movies=60,n_ratings=500,seed=2",
    )
    assert main(["data", "compare", a, b]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[0] == "statistic"
    rows = {line.split()[0]: line.split()[1:] for line in out[1:]}
    assert rows["users"][:2] == ["40", "40"] and rows["users"][2] == "+0"
    for name in ("popularity_gini", "unrated_share", "activity_median", "activity_gini", "liked_share",
                 "whole_star_share", "popularity_drift"):  # fmt: skip
        left, right, diff = (float(x) for x in rows[name])
        assert diff == pytest.approx(right - left, abs=1.5e-3)
    assert main(["data", "compare", a, "no-such-release"]) == 2
