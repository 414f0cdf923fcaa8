"""Weighted sampling of users' histories, chunk by chunk, with numpy only.

What :func:`rlrec.data.synthetic.make_synthetic` and the twin (:mod:`rlrec.data.twin`) draw their
users' movies with: a cluster by taste, then a movie of it by its era's popularity (Walker alias
tables), optionally a share of the draws from favourite groups; distinct movies by keeping the first
occurrence of each in a with-replacement stream (successive sampling), finished by an exact
Efraimidis-Spirakis draw for the rows still short. Nothing of size users x movies is built.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

__all__ = [
    "PAIRS_PER_CHUNK",
    "Favourites",
    "Tables",
    "alias_draw",
    "alias_table",
    "cluster_choice",
    "cluster_tables",
    "draw_histories",
    "draw_movies",
    "era_tables",
    "first_occurrences",
    "sample_chunk",
    "user_chunks",
]

#: Pairs (user, movie) drawn per chunk; bounds the memory of one sampling step (~100 MB).
PAIRS_PER_CHUNK = 1_000_000
#: Alias tables laid end to end: (first slot of each table, its size, keep probability per slot,
#: alias slot per slot, movie of each slot).
Tables = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def cluster_choice(
    user_factors: np.ndarray,
    cluster_factors: np.ndarray,
    cluster_mass: np.ndarray,
    taste_strength: float | np.ndarray,
) -> np.ndarray:
    """Probability that each user's next pick falls in each cluster: mass * exp(strength * taste)
    (``taste_strength``: one value, or one per user)."""
    taste = user_factors.astype(np.float64) @ cluster_factors.T
    taste -= taste.max(axis=1, keepdims=True)
    strength = np.asarray(taste_strength, dtype=np.float64)
    weights = cluster_mass * np.exp((strength[:, None] if strength.ndim else strength) * taste)
    return weights / weights.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class Favourites:
    """The favourite-group stream of a chunk of users: a draw comes from it with probability
    ``share``, picking one of the row's favourite groups at random and a movie of that group by
    its era's popularity.

    :param groups: ``(n_rows, n_favourites)`` group of each favourite (repeats weigh double).
    :param share: probability that a draw comes from the favourites.
    :param tables: :func:`era_tables` over the groups.
    :param movie_group: group of every movie.
    :param open_rows: ``(n_rows,)`` bool, the rows whose favourite groups still hold a movie they
        have not rated (None: all). Drawing from a row's exhausted favourites only yields
        repeats, which successive sampling throws away: skipping them is the same distribution.
    """

    groups: np.ndarray
    share: float
    tables: Tables
    movie_group: np.ndarray
    open_rows: np.ndarray | None = None

    @property
    def n_groups(self) -> int:
        return int(self.movie_group.max()) + 1

    def capacity(self) -> np.ndarray:
        """Movies in each row's distinct favourite groups."""
        sizes = np.bincount(self.movie_group)
        ordered = np.sort(self.groups, axis=1)
        first = np.ones(ordered.shape, dtype=bool)
        first[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
        return (sizes[ordered] * first).sum(axis=1)


def draw_movies(
    rng: np.random.Generator,
    cluster_probs: np.ndarray,
    draws: np.ndarray,
    tables: Tables,
    row_era: np.ndarray,
    favourites: Favourites | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``draws[r]`` movies with replacement for each row ``r`` of a chunk of users.

    A draw picks a cluster from the row's cluster probabilities (one ``searchsorted`` over the
    row CDFs shifted by the row number, so the whole chunk is drawn at once), then a movie of
    that cluster by the popularity of the row's era (alias tables, one per era and cluster).
    With ``favourites``, a share of the draws picks a favourite group instead of a cluster.
    Rows come out grouped, in ascending order.
    """
    n_rows, n_clusters = cluster_probs.shape
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), draws)
    cdf = np.cumsum(cluster_probs, axis=1)
    cdf /= cdf[:, -1:]
    cdf += np.arange(n_rows)[:, None]
    cluster = np.searchsorted(cdf.ravel(), rows + rng.random(len(rows)), side="right") - rows * n_clusters
    np.clip(cluster, 0, n_clusters - 1, out=cluster)
    cluster += row_era[rows] * n_clusters  # the (era, cluster) table
    movies = alias_draw(rng, tables, cluster)
    if favourites is not None and favourites.share > 0:
        coin = rng.random(len(rows)) < favourites.share
        if favourites.open_rows is not None:
            coin &= favourites.open_rows[rows]
        chosen = np.flatnonzero(coin)
        picked = rng.integers(0, favourites.groups.shape[1], len(chosen))
        group = favourites.groups[rows[chosen], picked]
        table = row_era[rows[chosen]] * favourites.n_groups + group
        movies[chosen] = alias_draw(rng, favourites.tables, table)
    return rows, movies


def alias_draw(rng: np.random.Generator, tables: Tables, table: np.ndarray) -> np.ndarray:
    """One movie per entry of ``table`` (an index into :func:`era_tables`), by Walker's alias
    method: a uniform slot of the table, kept or swapped for its alias."""
    start, size, alias_keep, alias_slot, slot_movie = tables
    slot = start[table] + (rng.random(len(table)) * size[table]).astype(np.int64)
    slot = np.where(rng.random(len(table)) < alias_keep[slot], slot, alias_slot[slot])
    return slot_movie[slot]


def first_occurrences(keys: np.ndarray) -> np.ndarray:
    """Positions of the first occurrence of each distinct key, in ascending position order."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    first = np.ones(len(keys), dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    mask = np.zeros(len(keys), dtype=bool)
    mask[order[first]] = True
    return np.flatnonzero(mask)


def sample_chunk(
    rng: np.random.Generator,
    weights_row: Callable[[int], np.ndarray],
    cluster_probs: np.ndarray,
    needed: np.ndarray,
    tables: Tables,
    n_movies: int,
    row_era: np.ndarray,
    favourites: Favourites | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``needed[r]`` distinct movies for each row of a chunk of users.

    Keeping the first occurrence of each movie in a with-replacement stream is sampling without
    replacement proportional to the weights (successive sampling). The stream grows in rounds
    that draw more and more per missing movie; rows still short after them (heavy raters with a
    narrow taste) finish with an exact Efraimidis-Spirakis draw over their full weight row.

    :return: keys ``row * n_movies + movie`` in ascending order, and the rank of each pair in its
        row's drawn order.
    """
    n_rows = len(needed)
    needed = needed.astype(np.int64)
    missing = needed.copy()
    taken = np.empty(0, dtype=np.int64)  # every key kept so far, sorted
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    if favourites is not None:
        capacity, in_favourites = favourites.capacity(), np.zeros(n_rows, dtype=np.int64)
    factor = 2.0
    for _ in range(6):
        if not missing.any():
            break
        draws = np.where(missing > 0, np.ceil(missing * factor).astype(np.int64) + 8, 0)
        rows, movies = draw_movies(rng, cluster_probs, draws, tables, row_era, favourites)
        keys = rows * n_movies + movies
        if len(taken):
            seen = taken[np.minimum(np.searchsorted(taken, keys), len(taken) - 1)] == keys
            keys = keys[~seen]
        fresh = keys[first_occurrences(keys)]  # grouped by row, drawn order within a row
        fresh_rows = fresh // n_movies
        row_start = np.concatenate([[0], np.cumsum(np.bincount(fresh_rows, minlength=n_rows))])
        rank = np.arange(len(fresh)) - row_start[fresh_rows]
        keep = rank < missing[fresh_rows]
        fresh, fresh_rows = fresh[keep], fresh_rows[keep]
        parts.append((fresh, rank[keep] + (needed - missing)[fresh_rows]))
        # Both runs are sorted: the stable sort (timsort) merges them in linear time.
        taken = np.sort(np.concatenate([taken, np.sort(fresh)]), kind="stable")
        missing -= np.bincount(fresh_rows, minlength=n_rows)
        if favourites is not None:
            group = favourites.movie_group[fresh % n_movies]
            hit = (group[:, None] == favourites.groups[fresh_rows]).any(axis=1)
            in_favourites += np.bincount(fresh_rows[hit], minlength=n_rows)
            favourites = replace(favourites, open_rows=in_favourites < capacity)
        factor *= 2.0
    for row in np.flatnonzero(missing):
        weight = weights_row(int(row))
        lo, hi = np.searchsorted(taken, [row * n_movies, (row + 1) * n_movies])
        weight[taken[lo:hi] - row * n_movies] = 0.0
        # Efraimidis-Spirakis: the k largest log(U) / w form a weighted sample without
        # replacement; in key order they continue the row's drawn order.
        with np.errstate(divide="ignore"):
            key = np.log(rng.random(n_movies)) / weight
        # Movies of zero weight only when nothing else is left, and never one already taken.
        key[weight <= 0] = -np.finfo(np.float64).max
        key[taken[lo:hi] - row * n_movies] = -np.inf
        count = int(missing[row])
        pick = np.argpartition(-key, count - 1)[:count]
        pick = pick[np.argsort(-key[pick], kind="stable")].astype(np.int64)
        parts.append((row * n_movies + pick, needed[row] - count + np.arange(count)))
    keys = np.concatenate([p[0] for p in parts])
    ranks = np.concatenate([p[1] for p in parts])
    order = np.argsort(keys)
    return keys[order], ranks[order]


def draw_histories(
    rng: np.random.Generator,
    counts: np.ndarray,
    user_factors: np.ndarray,
    cluster_factors: np.ndarray,
    movie_cluster: np.ndarray,
    era_popularity: np.ndarray,
    user_era: np.ndarray,
    taste_strength: float | np.ndarray,
    order_by: np.ndarray | None,
    movie_group: np.ndarray | None = None,
    n_favourites: int = 0,
    favourite_share: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``counts[u]`` distinct movies for every user, chunk by chunk: ``(indptr, movie indices in
    ascending order per user, the rank of each in the user's time line)``.

    The rank follows the drawing order, or ``order_by`` (a value per movie, ties at random)
    when given: the newer movies later. With ``movie_group``, each user has ``n_favourites``
    favourite groups (the groups of as many movies drawn by taste and popularity) and a share
    ``favourite_share`` of their picks comes from those groups.
    """
    n_users, n_movies = len(counts), len(movie_cluster)
    n_clusters = len(cluster_factors)
    cluster_mass = np.stack(
        [np.bincount(movie_cluster, weights=weights, minlength=n_clusters) for weights in era_popularity]
    )
    tables = era_tables(movie_cluster, era_popularity, n_clusters)
    if n_favourites <= 0 or favourite_share <= 0:
        movie_group = None  # no favourites: the groups play no part
    if movie_group is not None:
        n_groups = int(movie_group.max()) + 1
        group_mass = np.stack(
            [np.bincount(movie_group, weights=weights, minlength=n_groups) for weights in era_popularity]
        )
        group_tables = era_tables(movie_group, era_popularity, n_groups)
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = np.empty(int(indptr[-1]), dtype=np.int32)
    ranks = np.empty(int(indptr[-1]), dtype=np.int64)
    for first, last in user_chunks(indptr):
        users = np.arange(first, last)
        eras = user_era[users]
        strength = taste_strength[users] if isinstance(taste_strength, np.ndarray) else taste_strength
        probs = cluster_choice(user_factors[users], cluster_factors, cluster_mass[eras], strength)
        favourites = None
        if movie_group is not None:
            _, seeds = draw_movies(rng, probs, np.full(len(users), n_favourites), tables, eras)
            groups = movie_group[seeds].reshape(len(users), n_favourites)
            favourites = Favourites(groups, favourite_share, group_tables, movie_group)

        def weights_row(row: int, probs: np.ndarray = probs, eras: np.ndarray = eras,
                        favourites: Favourites | None = favourites) -> np.ndarray:  # fmt: skip
            era = eras[row]
            mass = cluster_mass[era, movie_cluster]
            weight = np.divide(probs[row, movie_cluster] * era_popularity[era], mass, where=mass > 0,
                               out=np.zeros(n_movies))  # fmt: skip
            if favourites is None:
                return weight
            group = favourites.movie_group
            chosen = np.bincount(favourites.groups[row], minlength=favourites.n_groups)[group]
            mass = group_mass[era, group] * favourites.groups.shape[1]
            liked = np.divide(chosen * era_popularity[era], mass, where=mass > 0, out=np.zeros(n_movies))
            return (1.0 - favourites.share) * weight + favourites.share * liked

        keys, drawn_rank = sample_chunk(
            rng, weights_row, probs, counts[users], tables, n_movies, eras, favourites
        )
        user, movies = first + keys // n_movies, keys % n_movies
        offset = int(indptr[first])
        span = slice(offset, offset + len(keys))
        indices[span] = movies
        if order_by is not None:
            order = np.lexsort((order_by[movies] + rng.random(len(keys)), user))
            drawn_rank = np.empty(len(keys), dtype=np.int64)
            drawn_rank[order] = np.arange(len(keys)) - (indptr[user[order]] - offset)
        ranks[span] = drawn_rank
    return indptr, indices, ranks


def alias_table(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias table of a distribution: (keep probability, alias) per outcome."""
    n = len(probs)
    scaled = probs * (n / probs.sum())
    keep = np.ones(n)
    alias = np.arange(n)
    small = [int(i) for i in np.flatnonzero(scaled < 1.0)]
    large = [int(i) for i in np.flatnonzero(scaled >= 1.0)]
    while small and large:
        low, high = small.pop(), large[-1]
        keep[low], alias[low] = scaled[low], high
        scaled[high] -= 1.0 - scaled[low]
        if scaled[high] < 1.0:
            small.append(large.pop())
    return keep, alias


def cluster_tables(movie_cluster: np.ndarray, popularity: np.ndarray, n_clusters: int) -> Tables:
    """Movies laid out cluster by cluster with one alias table per cluster, over popularity.

    Returns (first slot of each cluster, cluster size, keep probability per slot, alias slot per
    slot, movie of each slot); a slot is a position in the cluster-sorted layout.
    """
    slot_movie = np.argsort(movie_cluster, kind="stable")
    sizes = np.bincount(movie_cluster, minlength=n_clusters)
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    keep = np.ones(len(slot_movie))
    alias = np.arange(len(slot_movie))
    for cluster in np.flatnonzero(sizes):
        span = slice(start[cluster], start[cluster] + sizes[cluster])
        if not popularity[slot_movie[span]].any():
            continue  # nothing of it is out yet: never drawn
        keep[span], local = alias_table(popularity[slot_movie[span]])
        alias[span] = local + start[cluster]
    return start, sizes.astype(np.int64), keep, alias, slot_movie


def era_tables(movie_cluster: np.ndarray, era_popularity: np.ndarray, n_clusters: int) -> Tables:
    """:func:`cluster_tables` of every era, laid end to end: table ``era * n_clusters + cluster``."""
    parts = [cluster_tables(movie_cluster, popularity, n_clusters) for popularity in era_popularity]
    n_movies = len(movie_cluster)
    shift = np.arange(len(parts)) * n_movies
    return (
        np.concatenate([p[0] + k for p, k in zip(parts, shift)]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
        np.concatenate([p[3] + k for p, k in zip(parts, shift)]),
        np.concatenate([p[4] for p in parts]),
    )


def user_chunks(indptr: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive user ranges holding about ``PAIRS_PER_CHUNK`` ratings each."""
    n_users = len(indptr) - 1
    cuts = np.searchsorted(indptr, np.arange(0, int(indptr[-1]), PAIRS_PER_CHUNK), side="right") - 1
    bounds = np.unique(np.concatenate([cuts, [0, n_users]]))
    return [(int(a), int(b)) for a, b in itertools.pairwise(bounds)]
