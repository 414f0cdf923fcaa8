"""Progress where a person waits: on a terminal by default, never with --quiet or into a pipe."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from rlrec.cli import main
from rlrec.utils.progress import announce, progress_shown, show_progress, status

TINY = "synthetic:n_users=10,n_movies=40,n_ratings=120,seed=3"


@pytest.fixture(autouse=True)
def _silent_afterwards() -> Iterator[None]:
    yield
    show_progress(False)


def _terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)


def test_status_and_announce_speak_only_when_progress_is_on(capsys: pytest.CaptureFixture[str]) -> None:
    with status("fitting"):
        announce("entry 1")
    assert capsys.readouterr().err == ""
    show_progress(True)
    with status("fitting"):
        announce("entry 1")
    err = capsys.readouterr().err
    assert "entry 1" in err and "fitting: 0 s" in err


def test_evaluate_shows_the_slow_step_on_a_terminal_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["evaluate", "--baseline", "popularity", "--data", TINY]
    assert main(argv) == 0  # pytest's stdout is no terminal: silent
    assert "fitting popularity" not in capsys.readouterr().err
    _terminal(monkeypatch)
    assert main(argv) == 0
    assert (
        "fitting popularity (hyperparameters chosen on validation) and ranking test"
        in capsys.readouterr().err
    )
    assert main([*argv, "--quiet"]) == 0
    assert "fitting popularity" not in capsys.readouterr().err and not progress_shown()


def test_train_says_what_it_does_before_training(
    tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _terminal(monkeypatch)
    argv = ["train", "--algo", "qlearning", "--data", TINY, "--timesteps", "200", "--eval-freq", "100",
            "--output", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert f"loading {TINY}" in err
    assert "fitting the reference baselines (popularity, ease) on the validation part" in err
