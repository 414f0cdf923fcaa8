"""A synthetic twin of a real release: a ground-truth world fitted to it, and data sampled from it.

``make_synthetic(like=SOURCE)`` (``"synthetic:like=ml-latest-small"`` wherever ``--data`` is taken):

1. split ``SOURCE`` per user in time (:func:`rlrec.data.split.temporal_split`) and fit on its
   **train part** only, so the twin never carries the held-out ratings of the real release;
2. the rating model is a biased matrix factorisation fitted by explicit ALS
   (:class:`rlrec.data.simulator.RatingSimulator`): the twin's :class:`SyntheticWorld` has its
   user / movie factors and biases and its global mean, so ``world.preference(u, m)`` *is* the
   fitted model's prediction;
3. the choice model (which movies a user rates) is the synthetic generator's: movies grouped into
   taste clusters (k-means over the fitted movie factors), a user picks a cluster with probability
   ``mass * exp(taste_strength * <user factors, centroid>)`` and a movie of it by popularity; the
   popularity is the real train counts (plus one), so the twin's popularity curve is the real one;
4. every real user has a twin with the same number of ratings over the same time span; a twin's
   history runs in the order in which the real users first rated those movies (old favourites
   first, new releases later, as the real time line does), on the real user's timestamps;
5. ratings are the model's plus Gaussian noise of its out-of-sample error (measured on the train
   part's own temporal split), rounded with the real share of whole stars.

Deterministic under ``seed``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from rlrec.data.dataset import RatingsDataset
from rlrec.data.sampling import draw_histories
from rlrec.data.simulator import RatingSimulator
from rlrec.data.split import temporal_split
from rlrec.data.stats import whole_star_share
from rlrec.data.truth import SyntheticWorld, latent_ratings, observed_ratings

__all__ = ["make_twin"]


def _kmeans(points: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 20) -> np.ndarray:
    """Cluster labels of ``points`` (Lloyd's algorithm from k distinct random points)."""
    k = max(1, min(k, len(points)))
    centres = points[rng.choice(len(points), size=k, replace=False)].copy()
    labels = np.zeros(len(points), dtype=np.int64)
    for _ in range(iterations):
        distances = (points**2).sum(1)[:, None] - 2 * points @ centres.T + (centres**2).sum(1)[None, :]
        labels = distances.argmin(axis=1)
        for cluster in range(k):
            members = labels == cluster
            if members.any():
                centres[cluster] = points[members].mean(axis=0)
    return labels


def make_twin(
    like: RatingsDataset,
    seed: int = 0,
    n_factors: int = 32,
    n_clusters: int = 48,
    taste_strength: float = 0.35,
    release_order: float = 0.3,
    n_eras: int = 8,
    era_share: float = 0.9,
    name: str | None = None,
) -> RatingsDataset:
    """The synthetic twin of ``like`` (see the module doc).

    :param like: the real release (or any dataset) to fit, loaded (``load_movielens``).
    :param seed: seed of the fit's initialisation and of every draw.
    :param n_factors: dimension of the fitted rating model.
    :param n_clusters: taste clusters of the choice model.
    :param taste_strength: how much taste, beyond popularity, decides which movies a user rates.
    :param n_eras: time bins of the real train ratings (equal counts); popularity per bin.
    :param era_share: weight of a bin's own popularity against the overall one.
    :param release_order: how strictly a twin's history follows the movies' real first-rating
        dates (0: a random order; 1: the dates plus a uniform jitter of their whole range).
    :param name: the twin's name; default ``"synthetic:like=<source name>"``.
    """
    if not isinstance(like, RatingsDataset):
        raise TypeError(
            f"like: a RatingsDataset (load a source with load_movielens, or pass "
            f"'synthetic:like=<source>' as data), got {type(like).__name__}"
        )
    real = like
    train = temporal_split(real).train
    rng = np.random.default_rng(seed)
    model = RatingSimulator.fit(train, n_factors=n_factors, seed=seed)
    movie_factors = model.item_factors.astype(np.float32)
    user_factors = model.user_factors.astype(np.float32)
    # The choice model reads tastes at the scale of the generator's: unit variance of <u, v>.
    sample = user_factors[: min(len(user_factors), 2000)]
    scale = 1.0 / max(float(np.std(movie_factors @ sample.T)), 1e-6)
    cluster = _kmeans(movie_factors.astype(np.float64), n_clusters, rng)
    n_found = int(cluster.max()) + 1
    centroids = np.stack([movie_factors[cluster == c].mean(axis=0) for c in range(n_found)]) * scale
    counts = np.maximum(real.user_counts, 1)
    popularity = train.movie_counts.astype(np.float64) + 1.0
    popularity /= popularity.sum()
    # Popularity moves with time: each era's own counts (plus a share of the overall ones), and a
    # user chooses from the era of their median rating time.
    times = train.timestamps.astype(np.float64)
    edges = np.quantile(times, np.linspace(0.0, 1.0, n_eras + 1)[1:-1]) if len(times) else np.zeros(0)
    rating_era = np.searchsorted(edges, times, side="right")
    era_popularity = np.stack(
        [np.bincount(train.ratings.indices[rating_era == e], minlength=real.n_movies) for e in range(n_eras)]
    ).astype(np.float64)
    era_popularity = era_popularity / np.maximum(era_popularity.sum(axis=1, keepdims=True), 1.0)
    era_popularity = (1.0 - era_share) * popularity + era_share * era_popularity
    owner = np.repeat(np.arange(real.n_users), real.user_counts)
    median_time = np.array(
        [np.median(real.timestamps[owner == u]) if c else 0.0 for u, c in enumerate(real.user_counts)]
    )
    user_era = np.searchsorted(edges, median_time, side="right").astype(np.int64)
    # Release proxy: when the real users first rated a movie (never rated: after everything).
    first_seen = np.full(real.n_movies, np.inf)
    np.minimum.at(first_seen, real.ratings.indices, real.timestamps.astype(np.float64))
    order_by = np.argsort(np.argsort(first_seen, kind="stable"), kind="stable").astype(np.float64)
    order_by /= max(len(order_by) - 1, 1)
    indptr, indices, ranks = draw_histories(
        rng, counts, user_factors * scale, centroids, cluster, era_popularity, user_era, taste_strength,
        order_by * release_order,
    )  # fmt: skip
    users = np.repeat(np.arange(real.n_users), counts)
    # A twin rates on its real user's time line: its k-th rating at the real user's k-th timestamp.
    real_starts = real.ratings.indptr[:-1]
    in_time = np.empty(real.n_ratings, dtype=np.int64)
    in_time[real_starts[owner] + real.recency_rank] = real.timestamps
    last = np.maximum(real.user_counts - 1, 0)
    position = np.minimum(real_starts[users] + np.minimum(ranks, last[users]), real.n_ratings - 1)
    timestamps = in_time[position]
    latent = latent_ratings(user_factors, movie_factors, model.user_bias, model.item_bias, users, indices)
    # The noise is the model's out-of-sample error: fitted again on the train part's own temporal
    # split and scored on its held-out part (the in-sample error of a regularised fit is too small).
    inner = temporal_split(train)
    residual = RatingSimulator.fit(inner.train, n_factors=n_factors, seed=seed).rmse(inner.test)
    data = observed_ratings(rng, latent, model.global_mean, residual, max(0.5, whole_star_share(real)))
    world = SyntheticWorld(
        user_factors=user_factors,
        movie_factors=movie_factors,
        user_bias=model.user_bias.astype(np.float32),
        movie_bias=model.item_bias.astype(np.float32),
        global_mean=float(model.global_mean),
        popularity=popularity,
        movie_cluster=cluster,
        cluster_factors=centroids.astype(np.float32),
        taste_strength=float(taste_strength),
        rating_noise=residual,
        seed=seed,
    )
    return RatingsDataset(
        name=name or f"synthetic:like={real.name}",
        user_ids=real.user_ids.copy(),
        movie_ids=real.movie_ids.copy(),
        titles=real.titles.copy(),
        genres=real.genres.copy(),
        ratings=sp.csr_matrix((data, indices, indptr), shape=(real.n_users, real.n_movies)),
        timestamps=timestamps,
        truth=world,
    )
