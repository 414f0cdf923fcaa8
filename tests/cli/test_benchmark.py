"""``rlrec benchmark`` end to end on a small synthetic dataset with a tiny budget."""

from __future__ import annotations

import json

import pytest

from rlrec.cli import main
from rlrec.data import load_movielens, write_movielens_csv
from rlrec.data.split import temporal_split, validation_split
from tests.cli.test_evaluate import pandas_popularity

SMALL = "synthetic:n_users=60,n_movies=200,n_ratings=3000"
METRICS = ("ndcg@10", "precision@10", "recall@10", "hit_rate@10", "mrr@10", "coverage@10")
ALGOS = ("sb3-dqn", "qlearning")
BASELINES = ("random", "popularity", "ease", "edlae", "als")


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "out"
    argv = [
        "benchmark",
        "--data",
        SMALL,
        "--timesteps",
        "200",
        "--seed",
        "0",
        "--algos",
        *ALGOS,
        "--out",
        str(out),
    ]
    code = main(argv)
    assert code == 0
    return out


@pytest.mark.slow
def test_files_and_schema(bench):
    assert {p.name for p in bench.iterdir()} >= {
        "benchmark.json",
        "benchmark.md",
        "curves.png",
        "models",
        "tb",
    }
    assert (bench / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((bench / "benchmark.json").read_text())
    assert report["dataset"]["users"] == 60 and report["dataset"]["movies"] == 200
    assert report["protocol"]["k"] == 10 and report["protocol"]["test_fraction"] == 0.2
    assert set(report["results"]) == set(ALGOS) | set(BASELINES)
    for name, row in report["results"].items():
        assert set(row) >= {*METRICS, "train_seconds"}, name
        assert all(0.0 <= row[key] <= 1.0 for key in METRICS), name
        assert row["train_seconds"] >= 0.0
    for algo in ALGOS:
        assert report["results"][algo]["timesteps"] >= 200
        assert report["learners"][algo]["hyperparams"]["gamma"] == 0.0


@pytest.mark.slow
def test_table_has_one_row_per_result(bench):
    report = json.loads((bench / "benchmark.json").read_text())
    rows = [line for line in (bench / "benchmark.md").read_text().splitlines() if line.startswith("| ")]
    header, body = rows[0], rows[1:]
    assert header.split(" | ")[1:7] == list(METRICS)
    assert sorted(line.split(" | ")[0].lstrip("| ") for line in body) == sorted(report["results"])
    ndcgs = [float(line.split(" | ")[1]) for line in body]
    assert ndcgs == sorted(ndcgs, reverse=True)  # best first
    for line in body:
        name = line.split(" | ")[0].lstrip("| ")
        assert float(line.split(" | ")[1]) == pytest.approx(report["results"][name]["ndcg@10"], abs=5e-5)


@pytest.mark.slow
def test_baseline_numbers_match_an_independent_computation(bench, tmp_path):
    folder = write_movielens_csv(load_movielens(SMALL), tmp_path / "small")
    expected = pandas_popularity(folder)
    row = json.loads((bench / "benchmark.json").read_text())["results"]["popularity"]
    for key in ("ndcg@10", "precision@10", "hit_rate@10", "coverage@10"):
        assert row[key] == pytest.approx(expected[key], abs=1e-12), key


@pytest.mark.slow
def test_saved_learners_evaluate_to_the_same_numbers(bench, tmp_path, capsys):
    report = json.loads((bench / "benchmark.json").read_text())
    for algo in ALGOS:
        target = tmp_path / f"{algo}.json"
        assert main(["evaluate", "--model", str(bench / "models" / algo), "--json", str(target)]) == 0
        _, err = capsys.readouterr()
        assert "warning" not in err  # the run recorded its split
        again = json.loads(target.read_text())["metrics"]
        for key in METRICS:
            assert again[key] == pytest.approx(report["results"][algo][key], abs=1e-9), (algo, key)


@pytest.mark.slow
def test_errors(bench, tmp_path, capsys):
    code = main(
        ["benchmark", "--data", SMALL, "--algos", "sb3-dqn", "--timesteps", "50", "--out", str(bench)]
    )
    _, err = capsys.readouterr()
    assert code == 2 and "already holds TensorBoard runs" in err and len(err.strip().splitlines()) == 1
    code = main(["benchmark", "--data", SMALL, "--algos", "svd", "--out", str(tmp_path / "x")])
    _, err = capsys.readouterr()
    assert code == 2 and "svd" in err


def test_baselines_only(tmp_path, capsys):
    out = tmp_path / "only"
    assert (
        main(
            [
                "benchmark",
                "--data",
                "synthetic:n_users=30,n_movies=80,n_ratings=700",
                "--algos",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed, _ = capsys.readouterr()
    assert "popularity" in printed and "curves.png" not in printed
    report = json.loads((out / "benchmark.json").read_text())
    assert set(report["results"]) == set(BASELINES) and report["learners"] == {}
    assert not (out / "curves.png").exists()


def test_benchmark_baselines_flag_chooses_the_baselines(tmp_path, capsys) -> None:
    out = tmp_path / "bench"
    data = "synthetic:n_users=30,n_movies=50,n_ratings=500,seed=4"
    argv = ["benchmark", "--data", data, "--algos", "--out", str(out)]
    assert main([*argv, "--baselines", "random", "popularity"]) == 0
    assert set(json.loads((out / "benchmark.json").read_text())["results"]) == {"random", "popularity"}
    assert main([*argv, "--baselines", "nope"]) == 2
    assert "unknown baseline 'nope'" in capsys.readouterr().err


def test_version_flag(capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.startswith("rlrec ")


@pytest.mark.slow
def test_every_row_is_compared_with_the_strongest_baseline(bench):
    report = json.loads((bench / "benchmark.json").read_text())
    results, significance = report["results"], report["significance"]
    best = max(BASELINES, key=lambda name: results[name]["ndcg@10"])
    assert significance["baseline"] == best and set(significance["rows"]) == set(results) - {best}
    for name, row in significance["rows"].items():
        # Same users on both sides: the mean of the per-user differences is the difference of means.
        assert row["difference"] == pytest.approx(
            results[name]["ndcg@10"] - results[best]["ndcg@10"], abs=1e-9
        )
        assert row["low"] <= row["difference"] <= row["high"] and 0.0 <= row["p_value"] <= 1.0
        assert row["tie"] == (row["low"] <= 0.0 <= row["high"])
    assert f"minus {best}'s" in (bench / "benchmark.md").read_text()


@pytest.mark.slow
def test_development_is_the_protocol_one_level_down_on_the_train_part_alone(tmp_path):
    """``--development`` scores the validation part: the same report as a benchmark whose data is
    the train part alone (written out and read back), whose test part is exactly validation."""
    train_only = write_movielens_csv(temporal_split(load_movielens(SMALL)).train, tmp_path / "train-only")
    common = ["--timesteps", "200", "--seed", "3", "--algos", "qlearning"]
    common += ["--baselines", "popularity", "ease"]
    assert main(["benchmark", "--data", SMALL, "--development", "--out", str(tmp_path / "dev"), *common]) == 0
    assert main(["benchmark", "--data", str(train_only), "--out", str(tmp_path / "nested"), *common]) == 0
    dev = json.loads((tmp_path / "dev" / "benchmark.json").read_text())
    nested = json.loads((tmp_path / "nested" / "benchmark.json").read_text())
    validation = validation_split(temporal_split(load_movielens(SMALL)).train)
    assert dev["protocol"]["test_ratings"] == validation.test.n_ratings == nested["protocol"]["test_ratings"]
    assert dev["protocol"]["train_ratings"] == validation.train.n_ratings
    assert dev["protocol"]["scored_on"].startswith("validation") and nested["protocol"]["scored_on"] == "test"
    assert "Scored on: validation" in (tmp_path / "dev" / "benchmark.md").read_text()
    for name in ("qlearning", "popularity", "ease"):
        for metric in METRICS:
            assert dev["results"][name][metric] == pytest.approx(nested["results"][name][metric], abs=1e-12)
    assert dev["results"]["qlearning"]["best_timesteps"] == nested["results"]["qlearning"]["best_timesteps"]
