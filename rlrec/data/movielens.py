"""Read GroupLens MovieLens releases (folder or zip, any of the three layouts) into a dataset.

Layouts, detected from the file names:

* ``csv``: ``ratings.csv`` + ``movies.csv`` (ml-latest-small, ml-latest, ml-20m, ml-25m, ml-32m);
  UTF-8, one header row, double-quoted fields, CRLF or LF line endings.
* ``100k``: ``u.data`` (tab-separated ``user item rating timestamp``) + ``u.item`` (``|``-separated,
  Latin-1: id, title, release date, video date, url, 19 genre flags) + optional ``u.genre``.
* ``dat``: ``ratings.dat`` + ``movies.dat`` (ml-1m, ml-10m), ``::``-separated, no header;
  ``movies.dat`` is UTF-8 (ml-10m) or Latin-1 (ml-1m).

Every check is vectorised: a bad row is found with numpy, and its line number is reported as
``row + 2`` in files with a header row, ``row + 1`` in files without one.
"""

from __future__ import annotations

import csv
import inspect
import io
import os
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from rlrec.data.dataset import RATING_MAX, RATING_MIN, RatingsDataset, build_dataset, index_ids
from rlrec.data.errors import DatasetError
from rlrec.data.home import KNOWN_RELEASES
from rlrec.data.home import data_home as resolve_data_home
from rlrec.data.releases import LAYOUTS, Release, open_release
from rlrec.data.synthetic import make_synthetic

__all__ = ["RATING_MAX", "RATING_MIN", "load_movielens"]

#: The MovieLens rating scale (half stars from ml-latest on, whole stars before).
RATING_COLUMNS = ("userId", "movieId", "rating", "timestamp")
MOVIE_COLUMNS = ("movieId", "title", "genres")
#: ml-100k's genre flags, in u.item column order, used when u.genre is absent.
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
)  # fmt: skip
NO_GENRES = "(no genres listed)"


# -------------------------------------------------------------------------- validation
def _fail(where: str, row: int | None, header: bool, what: str) -> DatasetError:
    line = "" if row is None else f", line {row + (2 if header else 1)}"
    return DatasetError(f"{where}{line}: {what}")


def _first(mask: np.ndarray) -> int:
    return int(np.argmax(mask))


#: 2 ** 63: the first float that no longer fits an int64 (floats below it convert exactly enough).
_INT64_LIMIT = float(2**63)


def _integers(
    values: pd.Series, where: str, column: str, header: bool, non_negative: bool = False
) -> np.ndarray:
    """An integer column as int64, or a DatasetError naming the first non-integer row.

    :param non_negative: also refuse negative values (ids: GroupLens numbers them from 1).
    """
    if pd.api.types.is_signed_integer_dtype(values.dtype) and not pd.api.types.is_extension_array_dtype(
        values.dtype
    ):
        integers = values.to_numpy(dtype=np.int64, copy=False)
    else:
        numeric = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(numeric) | (numeric != np.round(numeric))
        if bad.any():
            row = _first(bad)
            raise _fail(where, row, header, _not_a(column, "an integer", values.iloc[row]))
        # Past int64 a cast wraps silently (a far-future timestamp would become the oldest one).
        huge = np.abs(numeric) >= _INT64_LIMIT
        if huge.any():
            row = _first(huge)
            raise _fail(
                where, row, header, f"{column} {values.iloc[row]} is outside the 64-bit integer range"
            )
        integers = numeric.astype(np.int64)
    if non_negative and (integers < 0).any():
        row = _first(integers < 0)
        raise _fail(where, row, header, f"{column} must be a non-negative id, got {integers[row]}")
    return integers


def _floats(values: pd.Series, where: str, column: str, header: bool) -> np.ndarray:
    if pd.api.types.is_float_dtype(values.dtype) or pd.api.types.is_integer_dtype(values.dtype):
        numeric = values.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        numeric = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(numeric)
    if bad.any():
        row = _first(bad)
        raise _fail(where, row, header, _not_a(column, "a number", values.iloc[row]))
    return numeric


def _not_a(column: str, kind: str, value: Any) -> str:
    """What is wrong with one field, for a message."""
    if isinstance(value, bytes):  # pyarrow hands undecodable text over as raw bytes
        return f"not valid utf-8 text ({column} field {value!r})"
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        # pandas reads an empty field and the text "NaN" alike: name both.
        return f"{column} must be {kind}, got an empty field or NaN"
    return f"{column} must be {kind}, got {str(value)!r}"


def _check_columns(frame: pd.DataFrame, expected: tuple[str, ...], where: str) -> None:
    missing = [name for name in expected if name not in frame.columns]
    if missing:
        have = ", ".join(str(c) for c in frame.columns)
        raise DatasetError(f"{where}: missing column(s) {', '.join(missing)} (header has: {have})")


# ----------------------------------------------------------------------------- reading
def _read_csv(
    opener: Callable[[], IO[bytes]], where: str, *, encoding: str = "utf-8", **options: Any
) -> pd.DataFrame:
    """``pd.read_csv`` with the pyarrow engine, the C engine for what pyarrow refuses.

    Every parser failure becomes a DatasetError naming the file (and the line when the parser
    gives one).
    """
    try:
        with opener() as handle:
            return pd.read_csv(handle, engine="pyarrow", encoding=encoding, **options)
    except pd.errors.EmptyDataError as exc:
        raise DatasetError(f"{where}: the file is empty") from exc
    except Exception:
        pass
    try:
        with opener() as handle:
            frame = pd.read_csv(handle, engine="c", encoding=encoding, low_memory=False, **options)
    except pd.errors.EmptyDataError as exc:
        raise DatasetError(f"{where}: the file is empty") from exc
    except UnicodeDecodeError as exc:
        raise _decode_error(opener, where, encoding) from exc
    except (pd.errors.ParserError, ValueError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatasetError(f"{where}: cannot parse: {message}") from exc
    if not isinstance(frame.index, pd.RangeIndex):
        # pandas turns the extra leading fields of rows longer than the header into an index.
        raise DatasetError(f"{where}: data rows have more fields than the header ({len(frame.columns)})")
    return frame


def _decode_error(opener: Callable[[], IO[bytes]], where: str, encoding: str) -> DatasetError:
    with opener() as handle:
        raw = handle.read()
    try:
        raw.decode(encoding)
    except UnicodeDecodeError as exc:
        return _undecodable(raw, where, encoding, exc)
    return DatasetError(f"{where}: not valid {encoding} text")


def _undecodable(raw: bytes, where: str, encoding: str, exc: UnicodeDecodeError) -> DatasetError:
    line = raw.count(b"\n", 0, exc.start) + 1
    return DatasetError(f"{where}, line {line}: not valid {encoding} text (byte {exc.start})")


def _decode(raw: bytes, where: str, encodings: tuple[str, ...]) -> str:
    """Text of ``raw`` in the first encoding that decodes it; the first one's error otherwise."""
    try:
        return raw.decode(encodings[0])
    except UnicodeDecodeError as exc:
        first_error = exc
    for encoding in encodings[1:]:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise _undecodable(raw, where, encodings[0], first_error) from first_error


@dataclass
class _Ratings:
    """One row per rating, in file order, validated."""

    user_ids: np.ndarray
    movie_ids: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray
    header: bool


def _ratings_from_frame(frame: pd.DataFrame, where: str, header: bool) -> _Ratings:
    _check_columns(frame, RATING_COLUMNS, where)
    if len(frame) == 0:
        raise DatasetError(f"{where}: no ratings (the file has no data rows)")
    users = _integers(frame["userId"], where, "userId", header, non_negative=True)
    movies = _integers(frame["movieId"], where, "movieId", header, non_negative=True)
    ratings = _floats(frame["rating"], where, "rating", header)
    timestamps = _integers(frame["timestamp"], where, "timestamp", header)
    outside = (ratings < RATING_MIN) | (ratings > RATING_MAX)
    if outside.any():
        row = _first(outside)
        raise _fail(
            where, row, header, f"rating {ratings[row]:g} is outside [{RATING_MIN:g}, {RATING_MAX:g}]"
        )
    return _Ratings(users, movies, ratings.astype(np.float32), timestamps, header)


def _read_ratings(release: Release) -> _Ratings:
    name = release.layout.ratings
    where = release.where(name)
    kind = release.layout.name
    if kind == "csv":
        frame = _read_csv(lambda: release.open(name), where)
        return _ratings_from_frame(frame, where, header=True)
    if kind == "100k":
        frame = _read_csv(lambda: release.open(name), where, sep="\t", header=None)
        return _ratings_from_frame(_name_fields(frame, where, "tab"), where, header=False)
    # ``::`` is a two-character separator that only the slow python engine accepts; every
    # ratings.dat field is numeric, so a tab in its place changes nothing else.
    raw = release.read_bytes(name).replace(b"::", b"\t")
    frame = _read_csv(lambda: io.BytesIO(raw), where, sep="\t", header=None)
    frame = _name_fields(frame, where, "'::'")
    return _ratings_from_frame(frame, where, header=False)


def _name_fields(frame: pd.DataFrame, where: str, separator: str) -> pd.DataFrame:
    """Name the columns of a header-less ratings file, which must have exactly four."""
    if frame.shape[1] != len(RATING_COLUMNS):
        raise DatasetError(
            f"{where}: expected 4 {separator}-separated fields (user, movie, rating, timestamp), "
            f"found {frame.shape[1]}"
        )
    frame.columns = list(RATING_COLUMNS)
    return frame


@dataclass
class _Movies:
    movie_ids: np.ndarray
    titles: np.ndarray
    genres: np.ndarray


def _movies_from_columns(
    ids: pd.Series, titles: pd.Series, genres: pd.Series, where: str, header: bool
) -> _Movies:
    if len(ids) == 0:
        raise DatasetError(f"{where}: no movies (the file has no data rows)")
    movie_ids = _integers(ids, where, "movieId", header, non_negative=True)
    order = np.argsort(movie_ids, kind="stable")
    repeated = np.flatnonzero(np.diff(movie_ids[order]) == 0)
    if len(repeated):
        row = int(order[repeated[0] + 1])
        raise _fail(where, row, header, f"movieId {movie_ids[row]} appears twice")
    return _Movies(
        movie_ids,
        titles.fillna("").astype(str).to_numpy(dtype=object),
        genres.fillna(NO_GENRES).astype(str).to_numpy(dtype=object),
    )


def _read_movies(release: Release) -> _Movies:
    name = release.layout.movies
    where = release.where(name)
    kind = release.layout.name
    if kind == "csv":
        frame = _read_csv(lambda: release.open(name), where, dtype={"title": str, "genres": str})
        _check_columns(frame, MOVIE_COLUMNS, where)
        return _movies_from_columns(frame["movieId"], frame["title"], frame["genres"], where, header=True)
    if kind == "100k":
        return _read_u_item(release, where)
    text = _decode(release.read_bytes(name), where, ("utf-8", "latin-1"))
    lines = pd.Series(text.splitlines(), dtype=object)
    lines = lines[lines.str.len() > 0].reset_index(drop=True)
    fields = lines.str.split("::", n=2, expand=True)
    if fields.shape[1] < 3 or fields[2].isna().any():
        row = 0 if fields.shape[1] < 3 else _first(fields[2].isna().to_numpy())
        raise _fail(where, row, False, "expected 3 '::'-separated fields: MovieID::Title::Genres")
    return _movies_from_columns(fields[0], fields[1], fields[2], where, header=False)


def _read_u_item(release: Release, where: str) -> _Movies:
    genre_names = list(ML100K_GENRES)
    if release.exists("u.genre"):
        genre_where = release.where("u.genre")
        text = _decode(release.read_bytes("u.genre"), genre_where, ("utf-8", "latin-1"))
        pairs = [line.rsplit("|", 1) for line in text.splitlines() if line.strip()]
        try:
            named = {int(index): label for label, index in pairs}
        except ValueError as exc:
            raise DatasetError(f"{genre_where}: expected 'name|index' lines") from exc
        genre_names = [
            named.get(i, genre_names[i] if i < len(genre_names) else f"genre{i}") for i in range(19)
        ]
    frame = _read_csv(
        lambda: release.open("u.item"),
        where,
        encoding="latin-1",
        sep="|",
        header=None,
        dtype=str,
        keep_default_na=False,
        quoting=csv.QUOTE_NONE,
    )
    if frame.shape[1] != 5 + len(genre_names):
        raise DatasetError(
            f"{where}: expected {5 + len(genre_names)} '|'-separated fields "
            f"(id|title|release date|video date|url|{len(genre_names)} genre flags), found {frame.shape[1]}"
        )
    flags = frame.iloc[:, 5:].to_numpy(dtype=object)
    valid = (flags == "0") | (flags == "1")
    if not valid.all():
        row = _first(~valid.all(axis=1))
        raise _fail(where, row, False, "genre flags must be 0 or 1")
    on = flags == "1"
    names = np.asarray(genre_names, dtype=object)
    genres = pd.Series(["|".join(names[row]) or NO_GENRES for row in on])
    return _movies_from_columns(frame.iloc[:, 0], frame.iloc[:, 1], genres, where, header=False)


# ----------------------------------------------------------------------------- checks
def _resolve_duplicates(table: _Ratings, where: str) -> _Ratings:
    """Keep the latest rating (by timestamp, then by line) of every repeated (user, movie) pair.

    Unsorted input comes back sorted by (user, movie), which spares ``build_dataset`` its sort.
    """
    users, movies = table.user_ids, table.movie_ids
    if len(users) < 2:
        return table
    # Fast path: GroupLens files are sorted by (userId, movieId), which rules out repeats.
    step_user = users[1:] - users[:-1]
    if np.all((step_user > 0) | ((step_user == 0) & (movies[1:] > movies[:-1]))):
        return table
    movie_span = int(movies.max()) - int(movies.min()) + 1
    if (int(users.max()) - int(users.min()) + 1) * movie_span < 2**62:
        pair = (users - users.min()) * movie_span + (movies - movies.min())
        order = np.argsort(pair, kind="stable")
    else:  # ids too spread out for one int64 key
        pair = None
        order = np.lexsort((movies, users))
    u, m = users[order], movies[order]
    same_as_next = (u[1:] == u[:-1]) & (m[1:] == m[:-1])
    if same_as_next.any():
        # Only the rows of repeated pairs need the timestamp: reorder each run of equal pairs
        # by (timestamp, line) so that the one to keep comes last.
        in_run = np.zeros(len(order), dtype=bool)
        in_run[:-1] |= same_as_next
        in_run[1:] |= same_as_next
        at = np.flatnonzero(in_run)
        rows = order[at]
        tiebreak = (rows, table.timestamps[rows])  # np.lexsort: the last key sorts first
        keys = (*tiebreak, pair[rows]) if pair is not None else (*tiebreak, movies[rows], users[rows])
        order[at] = rows[np.lexsort(keys)]
        last = np.ones(len(order), dtype=bool)
        last[:-1] = ~same_as_next
        warnings.warn(
            f"{where}: {int(same_as_next.sum())} repeated (userId, movieId) rating(s); "
            "kept the latest of each by timestamp",
            UserWarning,
            stacklevel=5,  # the caller of load_movielens
        )
        order = order[last]
    return _Ratings(users[order], movies[order], table.ratings[order], table.timestamps[order], table.header)


def _check_movies_known(table: _Ratings, universe: np.ndarray, where: str, movies_where: str) -> None:
    unknown = index_ids(table.movie_ids, universe) < 0
    if unknown.any():
        row = _first(unknown)
        raise _fail(
            where,
            row,
            table.header,
            f"movieId {table.movie_ids[row]} is not in {movies_where} "
            f"({int(unknown.sum())} rating(s) of unknown movies)",
        )


def _load_release(release: Release, name: str) -> RatingsDataset:
    movies = _read_movies(release)
    table = _read_ratings(release)
    ratings_where = release.where(release.layout.ratings)
    universe = np.sort(movies.movie_ids)
    _check_movies_known(table, universe, ratings_where, release.where(release.layout.movies))
    table = _resolve_duplicates(table, ratings_where)
    return build_dataset(
        name=name,
        user_ids=table.user_ids,
        movie_ids=table.movie_ids,
        ratings=table.ratings,
        timestamps=table.timestamps,
        all_movie_ids=movies.movie_ids,
        titles=movies.titles,
        genres=movies.genres,
    )


# ------------------------------------------------------------------------------ entry
def _synthetic_options(spec: str) -> dict[str, Any]:
    """``"n_users=100,seed=3"`` -> keyword arguments of :func:`make_synthetic`."""
    allowed = [
        name
        for name, parameter in inspect.signature(make_synthetic).parameters.items()
        if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
    ]
    options: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or key not in allowed:
            raise DatasetError(
                f"synthetic:{spec}: expected key=value pairs, keys among {', '.join(allowed)}; got {item!r}"
            )
        if key in ("like", "name"):  # a release name or folder, and a label: text
            options[key] = raw.strip()
            continue
        try:
            options[key] = int(raw)
        except ValueError:
            try:
                options[key] = float(raw)
            except ValueError as exc:
                raise DatasetError(f"synthetic:{spec}: {key} must be a number, got {raw!r}") from exc
    return options


def _looks_like_path(text: str) -> bool:
    return (
        os.sep in text or "/" in text or text.endswith(".zip") or text.startswith(".") or text.startswith("~")
    )


def load_movielens(
    source: str | os.PathLike[str] | RatingsDataset,
    *,
    data_home: str | os.PathLike[str] | None = None,
) -> RatingsDataset:
    """Load MovieLens ratings as a :class:`RatingsDataset`.

    The movie universe is every movie of the movies file, rated or not; users are the users
    with at least one rating. Ids are kept (``dataset.user_ids`` / ``movie_ids``), everything
    else is indexed by contiguous indices.

    Duplicate policy: when a (userId, movieId) pair is rated more than once, the rating with
    the latest timestamp is kept (the later line on a tie) and a ``UserWarning`` names the file
    and the number of dropped rows.

    :param source: one of

        * a folder or a ``.zip`` of a GroupLens release; the layout (``ratings.csv`` +
          ``movies.csv``, ``u.data`` + ``u.item``, ``ratings.dat`` + ``movies.dat``) is detected,
          also one folder down (an archive's top folder); a path to the ratings file itself
          stands for its folder;
        * a dataset name such as ``"ml-latest-small"``, looked up as ``<data home>/<name>/`` (or
          ``<data home>/<name>.zip``); a known GroupLens release that is not there is an error
          that says how to fetch it (nothing is downloaded here);
        * ``"synthetic"`` for :func:`rlrec.data.make_synthetic` with its defaults, or
          ``"synthetic:n_users=100,n_movies=500,n_ratings=5000,seed=3"`` for other arguments
          (any keyword of ``make_synthetic``), or ``"synthetic:like=ml-latest-small"`` (with
          ``seed=``) for the synthetic twin of a release;
        * a :class:`RatingsDataset`, returned as is.
    :param data_home: where names are looked up; default :func:`rlrec.data.data_home`
        (``$RLREC_DATA``, else ``$XDG_CACHE_HOME/rlrec`` or ``~/.cache/rlrec``).
    :raises DatasetError: missing or unreadable files, missing columns, non-numeric fields,
        ratings outside [0.5, 5], empty files, ratings of movies absent from the movies file,
        a folder or zip with no recognisable layout, an unknown name. The message names the
        file and, when known, the line.
    """
    if isinstance(source, RatingsDataset):
        return source
    if not isinstance(source, str | os.PathLike):
        raise DatasetError(
            f"source must be a path, a dataset name or a RatingsDataset, got {type(source).__name__}"
        )
    text = os.fspath(source)
    if isinstance(source, str) and (text == "synthetic" or text.startswith("synthetic:")):
        options = _synthetic_options(text.partition(":")[2])
        if "like" in options:  # the twin of a release: loaded here, fitted by make_synthetic
            options["like"] = load_movielens(options["like"])
        try:
            return make_synthetic(**options)
        except (TypeError, ValueError) as exc:
            raise DatasetError(f"{text}: {exc}") from exc
    path = Path(text).expanduser()
    if path.exists():
        return _load_path(path, _name_of(path))
    if not isinstance(source, str) or _looks_like_path(text) or not text:
        raise DatasetError(f"{text}: no such file or folder")
    return _load_name(text, resolve_data_home(data_home))


def _name_of(path: Path) -> str:
    """A dataset's name from its path: the release folder's name, or the zip's stem."""
    if path.is_dir():
        return path.resolve().name
    if any(path.name == layout.ratings for layout in LAYOUTS):
        return path.resolve().parent.name
    return path.stem


def _load_path(path: Path, name: str) -> RatingsDataset:
    try:
        with open_release(path) as release:
            return _load_release(release, name)
    except PermissionError as exc:
        raise DatasetError(f"{exc.filename or path}: permission denied") from exc
    except (zipfile.BadZipFile, EOFError) as exc:
        raise DatasetError(f"{path}: corrupt zip archive: {exc}") from exc


def _load_name(name: str, home: Path) -> RatingsDataset:
    for candidate in (home / name, home / f"{name}.zip"):
        if candidate.exists():
            return _load_path(candidate, name)
    if name in KNOWN_RELEASES:
        raise DatasetError(
            f"{name}: not found in the data home {home}; download it with `rlrec data fetch {name}` "
            f"(or set RLREC_DATA to a folder that holds {name}/)"
        )
    known = ", ".join(KNOWN_RELEASES)
    raise DatasetError(
        f"{name}: no such file or folder, and no {name}/ in the data home {home} "
        f"(known releases: {known}; or 'synthetic')"
    )
