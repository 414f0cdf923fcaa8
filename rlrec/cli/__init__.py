"""``rlrec`` command line: :mod:`rlrec.cli.parser` reads the arguments, :mod:`rlrec.cli.commands`
runs them through the library and prints.

Flags follow RL Baselines3 Zoo where the zoo has one (``--algo``, ``--env``, ``--seed``,
``--tensorboard-log``, ``--hyperparams``, ``--env-kwargs``). Every expected error becomes one line
on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import os
import signal
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from rlrec.cli.parser import build_parser
from rlrec.data.errors import DatasetError
from rlrec.utils.progress import show_progress

__all__ = ["EXIT_USAGE", "build_parser", "main"]

EXIT_USAGE = 2


def _one_line_warnings(command: str) -> None:
    """Print warnings as ``rlrec <command>: warning: <first line>``, never with a source line."""

    def show(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
        text = str(message).strip().splitlines()[0] if str(message).strip() else category.__name__
        print(f"rlrec {command}: warning: {text}", file=sys.stderr)

    warnings.showwarning = show  # type: ignore[assignment]


def _error_message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None and not isinstance(exc, FileNotFoundError):
        # NotADirectoryError, FileExistsError, PermissionError ...: name the path and the reason.
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, NotADirectoryError | FileExistsError):
            reason += " (a part of the path is a regular file)"
        return f"{exc.filename}: {reason}"
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return message.strip("'\"") if isinstance(exc, KeyError) else message


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The one deferred import: running a command loads torch and SB3 (seconds); --help must not.
    from rlrec.cli import commands

    # Progress where a person waits: a terminal, unless --quiet (a pipe or a file gets none).
    show_progress(sys.stdout.isatty() and not getattr(args, "quiet", False))
    with warnings.catch_warnings():
        _one_line_warnings(args.command)
        try:
            return int(getattr(commands, f"_cmd_{args.run}")(args))
        except KeyboardInterrupt:
            print("rlrec: interrupted", file=sys.stderr)
            return 128 + signal.SIGINT
        except BrokenPipeError:
            # `rlrec ... | head` closed our stdout: not an error of ours; silence the flush at exit.
            sys.stdout = open(os.devnull, "w")
            return 141
        except (commands.CLIError, DatasetError, OSError, ValueError, KeyError) as exc:
            print(f"rlrec {args.command}: error: {_error_message(exc)}", file=sys.stderr)
            return EXIT_USAGE
