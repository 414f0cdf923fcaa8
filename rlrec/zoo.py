"""``python -m rlrec.zoo``: RL Baselines3 Zoo's ``train`` with ``--env-kwargs`` added to the recipe's.

The zoo replaces a YAML section's whole ``env_kwargs`` with ``--env-kwargs`` (rl_zoo3's
``ExperimentManager``: "command line argument should overwrite config"), so the usual
``--env-kwargs data:"'ml-latest-small'"`` silently trains the env's defaults instead of the
recipe's (``hidden_fraction``, ``observation``, ``show_misses`` ...). This wrapper reads the section
the zoo will read (``-conf`` / ``--conf-file`` and ``--env``), lays the given ``--env-kwargs`` over
its ``env_kwargs``, and runs ``rl_zoo3.train`` with every key spelled out. Every other argument
goes to the zoo as it is::

    python -m rlrec.zoo --algo ppo --env rlrec/MovieLensSession-v0 --gym-packages rlrec \\
        -conf rlrec/hyperparams/ppo.yml --env-kwargs data:"'ml-latest-small'"
"""

from __future__ import annotations

import argparse
import runpy
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

__all__ = ["main", "merged_argv"]


def _recipe_env_kwargs(conf: str | None, env_id: str | None) -> dict[str, Any]:
    if conf is None or env_id is None:
        return {}
    path = Path(conf)
    if path.suffix not in (".yml", ".yaml") or not path.is_file():
        return {}  # a python config or a missing file: the zoo says what is wrong
    section = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get(env_id) or {}
    env_kwargs = section.get("env_kwargs") if isinstance(section, dict) else None
    return dict(env_kwargs) if isinstance(env_kwargs, dict) else {}


def merged_argv(argv: Sequence[str]) -> list[str]:
    """The zoo's arguments with ``--env-kwargs`` holding the recipe's keys under the given ones."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--env")
    parser.add_argument("-conf", "--conf-file", dest="conf")
    parser.add_argument("--env-kwargs", nargs="+", default=[])
    known, rest = parser.parse_known_args(list(argv))
    given = {item.split(":", 1)[0]: item for item in known.env_kwargs}
    recipe = _recipe_env_kwargs(known.conf, known.env)
    # The zoo eval()s each value: repr() writes YAML's values as the Python literals they are.
    items = [given.pop(key, f"{key}:{value!r}") for key, value in recipe.items()] + list(given.values())
    out = list(rest)
    if known.env is not None:
        out += ["--env", known.env]
    if known.conf is not None:
        out += ["-conf", known.conf]
    return out + (["--env-kwargs", *items] if items else [])


def main(argv: Sequence[str] | None = None) -> None:
    arguments = merged_argv(sys.argv[1:] if argv is None else argv)
    sys.argv = ["rl_zoo3.train", *arguments]
    runpy.run_module("rl_zoo3.train", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
