"""The one place where SIGINT and SIGTERM become a request to stop cleanly.

Ctrl-C (SIGINT) and ``kill`` / systemd / Slurm / Kubernetes (SIGTERM) both ask a long command to
stop. Raising ``KeyboardInterrupt`` wherever the signal lands could cut an optimizer step or a
replay write in half, so inside :func:`stop_signals` a signal only records the request; training
loops honour it at their next step (:class:`StopTrainingOnRequest`), save a checkpoint and return.
A second Ctrl-C raises ``KeyboardInterrupt`` at once, for a loop that does not get to its next step.

The exit status of a command stopped this way is ``128 + signal number``: 130 for SIGINT, 143 for
SIGTERM (the shell's convention).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

__all__ = ["StopTrainingOnRequest", "exit_status", "stop_requested", "stop_signals"]

_HANDLED = (signal.SIGINT, signal.SIGTERM)
_state: dict[str, Any] = {"signum": None, "depth": 0, "previous": {}}


def _handler(signum: int, frame: FrameType | None) -> None:
    if _state["signum"] is not None and signum == signal.SIGINT:
        raise KeyboardInterrupt  # the second Ctrl-C: the user does not want to wait
    _state["signum"] = signum


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM set :func:`stop_requested` instead of killing.

    Re-entrant (a benchmark wraps the training runs it starts); only the outermost block installs
    and restores the handlers and clears the request. Outside the main thread, where Python cannot
    install handlers, the block changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _state["depth"] == 0:
        _state["signum"] = None
        _state["previous"] = {signum: signal.signal(signum, _handler) for signum in _HANDLED}
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
        if _state["depth"] == 0:
            for signum, previous in _state["previous"].items():
                signal.signal(signum, previous)


def stop_requested() -> int | None:
    """The signal number that asked to stop (``signal.SIGINT`` / ``SIGTERM``), else ``None``."""
    return _state["signum"]


def exit_status(signum: int | None) -> int:
    """The shell's exit status for a command stopped by ``signum``: 130 (SIGINT), 143 (SIGTERM)."""
    return 128 + int(signum if signum is not None else signal.SIGINT)


class StopTrainingOnRequest(BaseCallback):
    """Ends ``learn`` at the first step after a stop was requested (SB3 stops when ``on_step`` is False)."""

    def _on_step(self) -> bool:
        return stop_requested() is None
