"""Shared fixtures. Real-data tests skip only outside CI when ../shared/data is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _candidate_data_home() -> Path:
    env = os.environ.get("RLREC_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def real_data_home() -> Path:
    """Folder holding ml-latest-small/ and ml-latest-small-2016/ (the project's shared data)."""
    home = _candidate_data_home()
    if not (home / "ml-latest-small-2016" / "ratings.csv").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"CI: real MovieLens data not found in {home} (set RLREC_DATA)")
        pytest.skip(f"real MovieLens data not found in {home}")
    return home


@pytest.fixture(autouse=True)
def _isolated_data_home(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests never write to the user's cache or temp dir: the per-user cache folder, and the folder
    SB3's own ``learn()`` logs to when no ``tensorboard_log`` is given (an ``SB3-<timestamp>`` in the
    temp dir otherwise), point into pytest's temp dir."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("SB3_LOGDIR", str(tmp_path_factory.mktemp("sb3")))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that read the real releases carry the ``real_data`` marker (counted at the end)."""
    for item in items:
        if "real_data_home" in getattr(item, "fixturenames", ()):
            item.add_marker("real_data")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line: how many real-data tests ran, and how to include them when they were skipped."""
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for outcome in counts:
        for report in terminalreporter.stats.get(outcome, []):
            if "real_data" in getattr(report, "keywords", {}) and getattr(report, "when", "call") in (
                "call",
                "setup",
            ):
                counts[outcome] += 1
    ran = counts["passed"] + counts["failed"]
    line = f"real-data tests: {ran} ran, {counts['skipped']} skipped"
    if counts["skipped"]:
        home = _candidate_data_home()
        line += f" (no releases in {home}; set RLREC_DATA to the folder holding ml-latest-small-2016/)"
    terminalreporter.write_line(line)
