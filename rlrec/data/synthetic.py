"""A MovieLens-shaped world with a known generating model, from tiny to ml-25m size.

The model (every draw from one seed):

* movies fall into latent taste clusters (each cluster carries a genre label set), and each
  cluster into small groups (a franchise, a director's films); a movie's factor vector is its
  cluster's centroid plus a movie-specific part;
* movie popularity is a Zipf-Mandelbrot body plus a plain Zipf head over a random ranking;
* a user picks which movies to rate with probability proportional to
  ``popularity * exp(strength * <user factors, cluster centroid>)``, where the strength varies
  from user to user (some follow the crowd, some their taste); a share of the picks instead
  comes from a few favourite groups of the user's. Clusters are few, so a low-rank model (ALS)
  captures the taste; groups are many, and the item-to-item links they leave are what an
  item-item model (EASE) finds beyond it;
* popularity drifts: a user rates with the popularity of their era, where movies of nearby eras
  weigh more, and their history loosely follows the movies' eras;
* a rating is ``global_mean + user_bias + movie_bias + <user factors, movie factors>`` plus
  Gaussian noise, rounded to whole or half stars and clipped to [0.5, 5].

The defaults are calibrated on ml-latest-small-2016 under the evaluation protocol
(``benchmarks/bench_twin.py``, which prints the figures): popularity, EASE and ALS in the same
order as there, with the popularity Gini, user activity and rating shares close to the release's.
Sampling runs over chunks of users with numpy only; nothing of size users x movies is built.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import scipy.sparse as sp

from rlrec.data.dataset import RatingsDataset
from rlrec.data.sampling import draw_histories
from rlrec.data.truth import SyntheticWorld, latent_ratings, observed_ratings
from rlrec.data.twin import make_twin
from rlrec.utils.io import atomic_path

__all__ = ["GENRES", "make_synthetic", "write_movielens_csv"]

#: MovieLens (ml-latest) genre names, used to label the taste clusters.
GENRES = (
    "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War",
    "Western",
)  # fmt: skip
# 2000-01-01 and 2019-01-01 UTC: the span in which synthetic users start rating.
_FIRST_START, _LAST_START = 946_684_800, 1_546_300_800
_YEAR = 31_557_600


def _counts_per_user(
    rng: np.random.Generator, n_users: int, n_ratings: int, floor: int, cap: int, spread: float = 1.2
) -> np.ndarray:
    """Heavy-tailed ratings per user (log-normal shares of spread ``spread``) summing to ``n_ratings``."""
    counts = np.full(n_users, floor, dtype=np.int64)
    weights = rng.lognormal(0.0, spread, size=n_users)
    remaining = n_ratings - int(counts.sum())
    # Hand out the remainder by shares; users at the cap pass their excess on to the others.
    while remaining > 0:
        open_ = counts < cap
        share = np.where(open_, weights, 0.0)
        exact = share / share.sum() * remaining
        extra = np.minimum(np.floor(exact).astype(np.int64), cap - counts)
        left = remaining - int(extra.sum())
        if left > 0 and extra.sum() < remaining:
            # Largest fractional parts first, among users still below the cap afterwards.
            room = (counts + extra) < cap
            fraction = np.where(room, exact - np.floor(exact), -1.0)
            n_top = min(left, int(room.sum()))
            top = np.argpartition(-fraction, n_top - 1)[:n_top] if n_top else np.empty(0, dtype=np.int64)
            extra[top] += 1
        counts += extra
        remaining = n_ratings - int(counts.sum())
    return counts


def make_synthetic(
    n_users: int = 610,
    n_movies: int = 9000,
    n_ratings: int = 100_000,
    seed: int = 0,
    *,
    n_factors: int = 16,
    n_clusters: int = 24,
    popularity_exponent: float = 1.5,
    popularity_offset: float = 50.0,
    popularity_head: float = 0.05,
    popularity_floor: float = 0.02,
    taste_strength: float = 1.05,
    taste_spread: float = 1.0,
    taste_scale: float = 1.0,
    rating_noise: float = 0.5,
    mean_rating: float = 3.6,
    min_user_ratings: int = 20,
    activity_spread: float = 1.5,
    whole_star_share: float = 0.7,
    drift: float = 0.2,
    n_eras: int = 8,
    release_order: float = 0.7,
    group_size: float = 5.0,
    n_favourites: int = 3,
    favourite_share: float = 0.7,
    name: str = "synthetic",
    like: RatingsDataset | None = None,
) -> RatingsDataset:
    """A synthetic MovieLens-shaped dataset whose ``truth`` is the generating :class:`SyntheticWorld`.

    Defaults mirror ml-latest-small (610 users, ~9,000 movies, 100,000 ratings, at least 20
    ratings per user, mean rating ~3.6) and are calibrated so that popularity, EASE and ALS score
    as on ml-latest-small-2016 (``benchmarks/bench_twin.py`` measures both), with a drift that lets
    EASE read by recency win. The same arguments always give the same arrays. ml-25m sizes
    (162,541 users, 62,423 movies, 25,000,095 ratings) are drawn in chunks
    (``benchmarks/bench_load.py --scale ml-25m`` measures the time and memory).

    Movie ids are ascending with gaps (not the indices) and user ids run 1..n_users, so code
    that confuses ids with indices fails on synthetic data too.

    :param n_users: number of users; every user rates at least one movie.
    :param n_movies: size of the movie universe; the Zipf tail leaves some movies unrated.
    :param n_ratings: exact number of ratings; at most 35% of the movies per user.
    :param seed: seed of every draw.
    :param n_factors: dimension of the latent tastes.
    :param n_clusters: number of taste clusters (each carries a genre label set).
    :param popularity_exponent: Zipf exponent of movie popularity (1.0: classic Zipf; with the
        offset, the default puts the popularity Gini near ml-latest-small's 0.72).
    :param popularity_offset: Zipf-Mandelbrot offset: popularity ~ 1 / (rank + offset) ** exponent;
        larger flattens the head.
    :param popularity_head: share of the popularity on a plain Zipf head ``1 / (rank + 1)``: the
        few movies nearly everyone rates, on top of the Zipf-Mandelbrot body.
    :param popularity_floor: share of the popularity spread evenly over the catalogue, so that
        few movies go unrated (GroupLens lists rated movies only).
    :param taste_strength: how much taste, beyond popularity, decides which movies a user rates
        (0: popularity only).
    :param taste_spread: log-normal spread of ``taste_strength`` across users (mean kept): some
        users follow the crowd, some their own taste. 0: the same strength for everyone.
    :param taste_scale: standard deviation of ``<user factors, movie factors>`` in stars.
    :param rating_noise: standard deviation of the Gaussian noise added to each rating, in stars.
    :param mean_rating: the mean of the noise-free ratings actually drawn (MovieLens: ~3.5);
        since users rate what they like, the model's ``global_mean`` sits below it. Rounding and
        clipping leave the observed mean within ~0.1 of it.
    :param min_user_ratings: ratings every user has at least (MovieLens keeps users with >= 20),
        lowered when ``n_ratings`` is too small for it.
    :param activity_spread: log-normal spread of the users' shares of the ratings (larger: a few
        heavy raters, a lower median).
    :param whole_star_share: about this share of the ratings falls on whole stars (people rate
        4.0 more often than 3.5): a rating is rounded to a whole star with probability
        ``2 * share - 1``, else to a half star; 0.5 rounds every rating to the nearest half star.
    :param drift: how fast popularity moves with time. Movies belong to one of ``n_eras`` eras
        and a user rates with the popularity of the era they start in, where a movie ``d`` eras
        from its own (before or after) weighs ``exp(-drift * d)`` times its base popularity plus a
        floor of 5% (the classics). 0: one popularity for everyone, in a random order (no drift).
        The default gives ml-latest-small-2016's drift statistic (0.32). In a tiny catalogue (a
        few dozen movies) the newest era then fills the held-out part of a temporal split, where
        train's popular movies lose even to random: pass ``drift=0`` there.
    :param n_eras: number of eras (with ``drift``).
    :param release_order: how strictly a user's history follows the movies' eras (with
        ``drift``): a rating's place in the history is ``release_order * era / (n_eras - 1)`` plus
        a uniform jitter in [0, 1). 0: a random order; 1: the latest era's movies mostly last.
        What a user rated last then says more about what comes next, as on the real data, where
        EASE read by recency (``ease-recent``) beats EASE.
    :param group_size: mean number of movies in a group: each cluster is cut at random into
        groups of about this size (a franchise, a director's films). 0: no groups.
    :param n_favourites: favourite groups per user, picked as the groups of that many movies
        drawn by taste and popularity (with ``group_size``).
    :param favourite_share: share of a user's picks drawn from their favourite groups (a movie of
        the group by popularity). Groups are many more than the factors, so this is the item-to-item
        structure a low-rank model misses and an item-item model (EASE) finds.
    :param name: the dataset's name.
    :param like: a real release, loaded (``load_movielens``; as a source text:
        ``load_movielens("synthetic:like=<source>")``): return its synthetic twin
        instead, a world fitted to it (:func:`rlrec.data.twin.make_twin`, with ``seed``; the
        other arguments do not apply).
    """
    if like is not None:
        return make_twin(like, seed=seed)
    for label, value in (("n_users", n_users), ("n_movies", n_movies), ("n_factors", n_factors),
                         ("n_clusters", n_clusters)):  # fmt: skip
        if int(value) != value or value < 1:
            raise ValueError(f"{label} must be a positive integer, got {value}")
    n_users, n_movies, n_ratings = int(n_users), int(n_movies), int(n_ratings)
    n_factors, n_clusters = int(n_factors), int(n_clusters)
    cap = max(1, int(0.35 * n_movies))
    if not n_users <= n_ratings <= n_users * cap:
        raise ValueError(
            f"n_ratings must lie in [n_users, 35% of n_users * n_movies] = [{n_users}, {n_users * cap}], "
            f"got {n_ratings}"
        )
    if min(taste_strength, taste_spread, taste_scale, rating_noise, drift, activity_spread) < 0:
        raise ValueError(
            "taste_strength, taste_spread, taste_scale, rating_noise, drift and activity_spread must be >= 0"
        )
    if not 0.0 <= release_order <= 1.0:
        raise ValueError(f"release_order must be in [0, 1], got {release_order}")
    if group_size < 0 or n_favourites < 0 or not 0.0 <= favourite_share < 1.0:
        raise ValueError("group_size and n_favourites must be >= 0 and favourite_share in [0, 1)")
    if not (0.0 <= popularity_head <= 1.0 and 0.0 <= popularity_floor <= 1.0):
        raise ValueError(
            "popularity_head and popularity_floor must be in [0, 1], "
            f"got {popularity_head} and {popularity_floor}"
        )
    if not 0.5 <= whole_star_share <= 1.0:
        raise ValueError(f"whole_star_share must be in [0.5, 1], got {whole_star_share}")
    n_eras = max(1, int(n_eras)) if drift > 0 else 1
    world_rng, draw_rng = np.random.default_rng(seed).spawn(2)
    floor = max(1, min(int(min_user_ratings), n_ratings // n_users))
    counts = _counts_per_user(draw_rng, n_users, n_ratings, floor, cap, activity_spread)

    # ---- the world: clusters, factors, biases, popularity
    cluster_sizes = world_rng.dirichlet(np.full(n_clusters, 2.0))
    movie_cluster = world_rng.choice(n_clusters, size=n_movies, p=cluster_sizes).astype(np.int64)
    # Factor scale 1/sqrt(sqrt(k)) per coordinate gives <u, v> a unit variance whatever k.
    unit = (1.0 / np.sqrt(n_factors)) ** 0.5
    centroid_share = 0.6
    cluster_factors = world_rng.normal(0.0, unit * np.sqrt(centroid_share), (n_clusters, n_factors))
    own = world_rng.normal(0.0, unit * np.sqrt(1.0 - centroid_share), (n_movies, n_factors))
    movie_factors = (cluster_factors[movie_cluster] + own).astype(np.float32)
    user_factors = (world_rng.normal(0.0, unit, (n_users, n_factors)) * taste_scale).astype(np.float32)
    rank = world_rng.permutation(n_movies)
    body = 1.0 / (rank + popularity_offset) ** popularity_exponent
    head = 1.0 / (rank + 1.0)
    popularity = (1.0 - popularity_head) * body / body.sum() + popularity_head * head / head.sum()
    popularity = (1.0 - popularity_floor) * popularity + popularity_floor / n_movies
    log_pop = np.log(popularity)
    # Popular movies are rated a little higher, as in MovieLens.
    movie_bias = world_rng.normal(0.0, 0.4, n_movies) + 0.15 * (log_pop - log_pop.mean()) / log_pop.std()
    user_bias = world_rng.normal(0.0, 0.35, n_users)

    # ---- titles, genres, ids
    movie_ids = np.cumsum(world_rng.integers(1, 4, n_movies)).astype(np.int64)
    years = world_rng.integers(1920, 2019, n_movies)
    titles = np.array(
        [f"Synthetic Movie {i} ({y})" for i, y in zip(movie_ids.tolist(), years.tolist())], dtype=object
    )
    cluster_genres = []
    for _ in range(n_clusters):
        picked = np.sort(world_rng.choice(len(GENRES), size=int(world_rng.integers(1, 4)), replace=False))
        cluster_genres.append("|".join(GENRES[g] for g in picked))
    genres = np.asarray(cluster_genres, dtype=object)[movie_cluster]

    # ---- which movies each user rates, and when
    user_start = draw_rng.integers(_FIRST_START, _LAST_START, n_users)
    user_span = np.minimum(draw_rng.exponential(_YEAR, n_users), 3 * _YEAR) + 60
    release = world_rng.integers(0, n_eras, n_movies) if n_eras > 1 else np.zeros(n_movies, np.int64)
    movie_group = _groups(world_rng, movie_cluster, n_clusters, group_size) if group_size > 0 else None
    strength: float | np.ndarray = float(taste_strength)
    if taste_spread > 0:
        strength = taste_strength * world_rng.lognormal(-0.5 * taste_spread**2, taste_spread, n_users)
    era_popularity = _era_popularity(popularity, release, n_eras, drift)
    user_era = ((user_start - _FIRST_START) * n_eras // (_LAST_START - _FIRST_START)).astype(np.int64)
    order_by = release / max(n_eras - 1, 1) * release_order if n_eras > 1 else None
    histories = draw_histories(
        draw_rng, counts, user_factors, cluster_factors, movie_cluster, era_popularity, user_era,
        strength, order_by, movie_group, n_favourites, favourite_share,
    )  # fmt: skip
    indptr, indices, drawn_rank = histories
    user = np.repeat(np.arange(n_users), counts)
    # Earlier drawn (or released), earlier rated: ranks spread over the user's active span.
    when = (drawn_rank + draw_rng.random(n_ratings)) / counts[user]
    timestamps = user_start[user] + (when * user_span[user]).astype(np.int64)
    latent = latent_ratings(user_factors, movie_factors, user_bias, movie_bias, user, indices)
    # Users rate what they like, so the picked movies sit above the model's mean: centre on
    # mean_rating the ratings actually drawn, then add noise and round.
    global_mean = float(mean_rating - latent.mean(dtype=np.float64))
    data = observed_ratings(draw_rng, latent, global_mean, rating_noise, whole_star_share)

    world = SyntheticWorld(
        user_factors=user_factors,
        movie_factors=movie_factors,
        user_bias=user_bias.astype(np.float32),
        movie_bias=movie_bias.astype(np.float32),
        global_mean=global_mean,
        popularity=popularity,
        movie_cluster=movie_cluster,
        cluster_factors=cluster_factors.astype(np.float32),
        taste_strength=float(taste_strength),
        rating_noise=float(rating_noise),
        seed=seed,
        movie_group=movie_group,
        movie_era=release if n_eras > 1 else None,
    )
    return RatingsDataset(
        name=name,
        user_ids=np.arange(1, n_users + 1, dtype=np.int64),
        movie_ids=movie_ids,
        titles=titles,
        genres=genres,
        ratings=sp.csr_matrix((data, indices, indptr), shape=(n_users, n_movies)),
        timestamps=timestamps,
        truth=world,
    )


def _groups(
    rng: np.random.Generator, movie_cluster: np.ndarray, n_clusters: int, group_size: float
) -> np.ndarray:
    """Cut each cluster at random into ``max(1, round(size / group_size))`` groups: the group of
    every movie, numbered cluster by cluster."""
    sizes = np.bincount(movie_cluster, minlength=n_clusters)
    per_cluster = np.maximum(1, np.round(sizes / group_size)).astype(np.int64)
    first = np.concatenate([[0], np.cumsum(per_cluster)[:-1]])
    within = (rng.random(len(movie_cluster)) * per_cluster[movie_cluster]).astype(np.int64)
    return first[movie_cluster] + within


def _era_popularity(popularity: np.ndarray, release: np.ndarray, n_eras: int, drift: float) -> np.ndarray:
    """``(n_eras, n_movies)``: each era's choice probabilities. A movie ``d`` eras from its release
    era (before or after) weighs ``exp(-drift * d) + 0.05`` times its base popularity."""
    distance = np.abs(np.arange(n_eras)[:, None] - release[None, :])
    weights = popularity * (np.exp(-drift * distance) + 0.05)
    return weights / weights.sum(axis=1, keepdims=True)


def write_movielens_csv(dataset: RatingsDataset, folder: str | os.PathLike[str]) -> Path:
    """Write ``ratings.csv`` and ``movies.csv`` in the GroupLens ``csv`` layout; return the folder.

    Headers ``userId,movieId,rating,timestamp`` and ``movieId,title,genres``; ratings in CSR order
    (by user, then movie) as GroupLens sorts them, half stars printed ``4.0`` / ``3.5``; titles
    quoted only when they need it. Each file appears whole or not at all (temp file + rename),
    and ``load_movielens(folder)`` reads back the same dataset. pyarrow's CSV writer makes 25M
    ratings a matter of seconds.

    :param dataset: what to write (its ids, titles, genres, ratings and timestamps).
    :param folder: created if missing; existing ``ratings.csv`` / ``movies.csv`` are replaced.
    """
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    matrix = dataset.ratings
    table = pa.table(
        {
            "userId": pa.array(np.repeat(dataset.user_ids, np.diff(matrix.indptr))),
            "movieId": pa.array(dataset.movie_ids[matrix.indices]),
            "rating": _rating_strings(matrix.data),
            "timestamp": pa.array(dataset.timestamps),
        }
    )
    with atomic_path(target / "ratings.csv") as tmp, open(tmp, "wb") as handle:
        # Every field is a number, so no quoting is ever needed; the header is written by hand
        # because pyarrow quotes column names unless it is recent enough to be told not to.
        handle.write(b"userId,movieId,rating,timestamp\n")
        pacsv.write_csv(table, handle, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    movies = pd.DataFrame(
        {
            "movieId": dataset.movie_ids,
            "title": dataset.titles.astype(str),
            "genres": dataset.genres.astype(str),
        }
    )
    with atomic_path(target / "movies.csv") as tmp:
        movies.to_csv(tmp, index=False, lineterminator="\n", encoding="utf-8")
    return target


def _rating_strings(values: np.ndarray) -> object:
    """Ratings as CSV text: half stars as a dictionary of ``"0.5" .. "5.0"`` (fast, GroupLens style)."""
    doubled = values.astype(np.float64) * 2.0
    steps = np.rint(doubled)
    if len(values) and np.array_equal(steps, doubled) and steps.min() >= 0 and steps.max() <= 20:
        labels = pa.array([f"{k / 2:.1f}" for k in range(21)])
        return pa.DictionaryArray.from_arrays(pa.array(steps.astype(np.int8)), labels)
    return pa.array(values.astype(np.float64))
