"""Where downloaded MovieLens releases live (the data home), and which releases GroupLens publishes."""

from __future__ import annotations

import os
from pathlib import Path

#: The releases GroupLens distributes as ``<BASE_URL>/<name>.zip``.
KNOWN_RELEASES = (
    "ml-latest-small",
    "ml-latest",
    "ml-100k",
    "ml-1m",
    "ml-10m",
    "ml-20m",
    "ml-25m",
    "ml-32m",
)
#: Environment variable that overrides the data home (CI points it at the shared data).
DATA_HOME_ENV = "RLREC_DATA"


def data_home(data_home: str | os.PathLike[str] | None = None) -> Path:
    """The folder that holds one sub-folder per release (``<data home>/ml-latest-small/``).

    Resolution order: the ``data_home`` argument, then ``$RLREC_DATA``, then
    ``$XDG_CACHE_HOME/rlrec``, then ``~/.cache/rlrec`` (the XDG default cache folder). The folder
    is not created here; only :func:`rlrec.data.fetch_movielens` writes into it.

    :param data_home: an explicit folder; ``None`` (default) follows the order above.
    """
    if data_home is not None:
        return Path(data_home).expanduser()
    env = os.environ.get(DATA_HOME_ENV)
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(cache).expanduser() if cache else Path.home() / ".cache"
    return base / "rlrec"
