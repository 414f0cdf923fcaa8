"""The one place that decides whether a person sees progress, and shows it.

The CLI turns progress on for a terminal (``sys.stdout.isatty()``), off with ``--quiet`` or when
the output is a pipe or a file; the library alone stays silent. Long set-up steps show a spinner
and leave one line with their time (:func:`status`); training shows SB3's progress bar.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator

__all__ = ["announce", "progress_shown", "show_progress", "status"]

_state = {"on": False}


def show_progress(on: bool) -> None:
    """Turn progress on or off for this process (the CLI's choice)."""
    _state["on"] = bool(on)


def progress_shown() -> bool:
    """Whether progress is on."""
    return _state["on"]


def announce(message: str) -> None:
    """One line on stderr when progress is on (what is starting, e.g. a benchmark entry)."""
    if _state["on"]:
        print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def status(message: str) -> Iterator[None]:
    """A spinner with ``message`` while the block runs, then ``message: N s`` (progress on only)."""
    if not _state["on"]:
        yield
        return
    from rich.console import Console

    console = Console(stderr=True)
    started = time.perf_counter()
    with console.status(message):
        yield
    console.print(f"{message}: {time.perf_counter() - started:.0f} s", highlight=False)
