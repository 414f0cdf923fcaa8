"""Tiny MovieLens releases written by hand in each GroupLens layout, and what they must load as."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

# (movieId, title, genres): a comma and quotes in titles, a non-ASCII one, movie 10 never rated.
MOVIES = [
    (1, "Toy Story (1995)", "Animation|Children"),
    (2, "Bird, The (1999)", "Drama"),
    (5, 'Amélie "Le fabuleux" (2001)', "Comedy|Romance"),
    (10, "Unrated Film (2010)", "Horror"),
]
# (userId, movieId, rating, timestamp), deliberately not sorted.
RATINGS = [
    (3, 2, 5.0, 110),
    (1, 5, 3.5, 105),
    (7, 5, 2.0, 120),
    (1, 1, 4.0, 100),
    (3, 1, 0.5, 90),
]

# Worked out by hand from the rows above: users 1, 3, 7 -> indices 0, 1, 2; movies 1, 2, 5, 10.
EXPECTED_USER_IDS = [1, 3, 7]
EXPECTED_MOVIE_IDS = [1, 2, 5, 10]
EXPECTED_DENSE = np.array(
    [
        [4.0, 0.0, 3.5, 0.0],
        [0.5, 5.0, 0.0, 0.0],
        [0.0, 0.0, 2.0, 0.0],
    ],
    dtype=np.float32,
)
# CSR order is (user, movie): (1,1) (1,5) (3,1) (3,2) (7,5).
EXPECTED_TIMESTAMPS = [100, 105, 90, 110, 120]

ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
)  # fmt: skip


def _rating_text(value: float) -> str:
    return f"{value:.1f}"


def csv_quote(field: str) -> str:
    if any(ch in field for ch in ',"\n'):
        return '"' + field.replace('"', '""') + '"'
    return field


def ratings_csv(rows: list[tuple[int, int, float, int]] = RATINGS) -> str:
    lines = ["userId,movieId,rating,timestamp"]
    lines += [f"{u},{m},{_rating_text(r)},{t}" for u, m, r, t in rows]
    return "\r\n".join(lines) + "\r\n"


def movies_csv(rows: list[tuple[int, str, str]] = MOVIES) -> str:
    lines = ["movieId,title,genres"]
    lines += [f"{m},{csv_quote(title)},{csv_quote(genres)}" for m, title, genres in rows]
    return "\r\n".join(lines) + "\r\n"


def write_csv_release(
    folder: Path, ratings: str | bytes | None = None, movies: str | bytes | None = None
) -> Path:
    """``ratings.csv`` + ``movies.csv`` (CRLF, UTF-8, quoted fields), as GroupLens writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content, default in (("ratings.csv", ratings, ratings_csv), ("movies.csv", movies, movies_csv)):
        data = default() if content is None else content
        (folder / name).write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return folder


def genre_flags(genres: str, names: tuple[str, ...] = ML100K_GENRES) -> list[str]:
    wanted = set(genres.split("|"))
    return ["1" if name in wanted else "0" for name in names]


# ml-100k uses its own genre names; these are the u.item flags of the movies above.
ML100K_MOVIE_GENRES = {1: "Animation|Children's", 2: "Drama", 5: "Comedy|Romance", 10: "Horror"}


def write_100k_release(folder: Path, with_genre_file: bool = False) -> Path:
    """``u.data`` (tabs) + ``u.item`` (``|``, Latin-1, 19 genre flags) [+ ``u.genre``]."""
    folder.mkdir(parents=True, exist_ok=True)
    data = "".join(f"{u}\t{m}\t{_rating_text(r)}\t{t}\n" for u, m, r, t in RATINGS)
    (folder / "u.data").write_text(data, encoding="ascii")
    names: tuple[str, ...] = ML100K_GENRES
    if with_genre_file:
        # A renamed genre shows that u.genre, when present, names the flags.
        names = tuple("Kids" if n == "Children's" else n for n in ML100K_GENRES)
        genre_lines = "".join(f"{name}|{i}\n" for i, name in enumerate(names)) + "\n"
        (folder / "u.genre").write_text(genre_lines, encoding="latin-1")
    lines = []
    for movie_id, title, _ in MOVIES:
        flags = genre_flags(ML100K_MOVIE_GENRES[movie_id])
        lines.append("|".join([str(movie_id), title, "01-Jan-1995", "", "http://example.org/x", *flags]))
    (folder / "u.item").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    return folder


def write_dat_release(folder: Path, movies_encoding: str = "latin-1") -> Path:
    """``ratings.dat`` + ``movies.dat`` with ``::`` separators (ml-1m: Latin-1, ml-10m: UTF-8)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = "".join(f"{u}::{m}::{_rating_text(r)}::{t}\n" for u, m, r, t in RATINGS)
    (folder / "ratings.dat").write_text(data, encoding="ascii")
    movies = "".join(f"{m}::{title}::{genres}\n" for m, title, genres in MOVIES)
    (folder / "movies.dat").write_bytes(movies.encode(movies_encoding))
    return folder


def zip_folder(folder: Path, archive: Path, top: str | None = "release") -> Path:
    """Zip the files of ``folder``, under a top folder ``top`` (as GroupLens zips are) or not."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        if top:
            zf.writestr(f"{top}/", "")
        for path in sorted(folder.iterdir()):
            zf.write(path, f"{top}/{path.name}" if top else path.name)
    return archive
