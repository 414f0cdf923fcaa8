"""Non-RL baselines that score every movie for a user from the TRAIN ratings only.

Every baseline follows one small interface: ``fit(train) -> self`` then
``score(user_indices) -> (B, n_movies) float32``, higher is better. The protocol masks the
user's train movies itself, so baselines do not.

* ``random``: seeded uniform scores (a user's scores do not depend on the batch they are in);
* ``popularity``: number of train ratings per movie;
* ``ease``: EASE (Steck, 2019, "Embarrassingly Shallow Autoencoders for Sparse Data"), a closed
  form item-item model on the binary train matrix;
* ``edlae``: EDLAE (Steck, 2020), EASE with a dropout-emphasis penalty growing with popularity;
* ``als``: implicit-feedback ALS (Hu, Koren & Volinsky, 2008) from the ``implicit`` library;
* ``itemknn``: item-based nearest neighbours, shrunk cosine (Sarwar et al., 2001);
* ``rp3beta``: RP3beta (Paudel et al., 2017), a popularity-discounted random walk item -> user ->
  item. ItemKNN and RP3beta are the cheap models reproducibility studies found hard to beat
  (Dacrema et al., RecSys 2019).
* ``sasrec``, ``gru4rec``: next-item models over each user's history in time order
  (:mod:`rlrec.evaluation.sequential`), epochs chosen on validation inside ``fit``.

Hyperparameters of every baseline with a :data:`GRIDS` entry are chosen on a validation split of the
train part (:func:`select_on_validation`) wherever rlrec reports them (``rlrec evaluate``,
``rlrec benchmark``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from rlrec.data.dataset import RatingsDataset, recency_weight
from rlrec.data.split import Split, validation_split
from rlrec.evaluation.metrics import evaluate_scores

__all__ = [
    "BASELINES",
    "GRIDS",
    "ALSBaseline",
    "Baseline",
    "EASEBaseline",
    "EDLAEBaseline",
    "GRU4RecBaseline",
    "ItemKNNBaseline",
    "PopularityBaseline",
    "RP3betaBaseline",
    "RandomBaseline",
    "RecentEASEBaseline",
    "SASRecBaseline",
    "Selection",
    "item_gram",
    "keep_top_neighbours",
    "make_baseline",
    "select_on_split",
    "select_on_validation",
]


class Baseline(Protocol):
    """What the protocol needs from a baseline."""

    name: str

    def fit(self, train: RatingsDataset) -> Baseline: ...

    def score(self, user_indices: np.ndarray) -> np.ndarray: ...


def _binary(train: RatingsDataset) -> sp.csr_matrix:
    """The train matrix with every rating replaced by 1 (who watched what)."""
    matrix = train.ratings.copy()
    matrix.data = np.ones_like(matrix.data, dtype=np.float32)
    return matrix


class _Fitted:
    """Shared guard: scoring before ``fit`` is a usage error with a clear message."""

    name = "baseline"
    n_movies: int | None = None

    def _require_fit(self) -> int:
        if self.n_movies is None:
            raise RuntimeError(f"{self.name}: call fit(train) before score()")
        return self.n_movies


class RandomBaseline(_Fitted):
    """Uniform random scores, seeded per (seed, user) so that batching does not change them.

    :param seed: base seed; default 0.
    """

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)

    def fit(self, train: RatingsDataset) -> RandomBaseline:
        self.n_movies = train.n_movies
        return self

    def score(self, user_indices: np.ndarray) -> np.ndarray:
        n_movies = self._require_fit()
        users = np.asarray(user_indices, dtype=np.int64)
        scores = np.empty((len(users), n_movies), dtype=np.float32)
        for row, user in enumerate(users):
            scores[row] = np.random.default_rng([self.seed, int(user)]).random(n_movies, dtype=np.float32)
        return scores


class PopularityBaseline(_Fitted):
    """Every user gets the same scores: the number of train ratings of each movie."""

    name = "popularity"

    def fit(self, train: RatingsDataset) -> PopularityBaseline:
        self.n_movies = train.n_movies
        self.counts = train.movie_counts.astype(np.float32)
        return self

    def score(self, user_indices: np.ndarray) -> np.ndarray:
        self._require_fit()
        return np.tile(self.counts, (len(np.asarray(user_indices)), 1))


def item_gram(
    train: RatingsDataset, max_items: int, name: str
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """``(X, X^T X, active)``: the binary train matrix over the movies with train ratings, its Gram
    matrix (float32, dense) and those movies' indices; the shared start of EASE and EDLAE."""
    active = np.flatnonzero(train.movie_counts > 0)
    if len(active) > max_items:
        gigabytes = 4 * len(active) ** 2 / 1e9
        raise ValueError(
            f"{name}: {len(active):,} movies with train ratings exceed max_items={max_items:,} "
            f"(the dense inverse would need {gigabytes:.1f} GB); raise max_items or use als"
        )
    x = _binary(train)[:, active]
    return x, (x.T @ x).toarray().astype(np.float32), active


class EASEBaseline(_Fitted):
    """EASE: ``B = I - P / diag(P)`` (column-wise) with ``P = (X^T X + l2 I)^-1``, ``diag(B) = 0``.

    ``X`` is the binary train matrix. Movies nobody rated in train have a zero column in ``X``, so
    their rows and columns of ``B`` are exactly zero: they are left out of the inverse, which
    changes no score and saves time on MovieLens' long tail.

    :param l2: ridge penalty lambda; default 500, the value the validation split of
        ml-latest-small-2016 chooses from :data:`GRIDS` (:func:`select_on_validation`).
    :param max_items: refuse to invert above this many movies with train ratings (the inverse is a
        dense float32 ``n x n`` matrix: 20,000 movies are 1.6 GB); default 20,000.
    """

    name = "ease"

    def __init__(self, l2: float = 500.0, max_items: int = 20_000) -> None:
        if l2 <= 0:
            raise ValueError(f"{self.name}: l2 must be > 0, got {l2}")
        self.l2 = float(l2)
        self.max_items = int(max_items)

    def _penalty(self, gram_diagonal: np.ndarray) -> np.ndarray:
        """What is added to the diagonal of ``X^T X``: ``l2`` for every movie."""
        return np.full_like(gram_diagonal, self.l2)

    def fit(self, train: RatingsDataset) -> EASEBaseline:
        return self.fit_gram(*item_gram(train, self.max_items, self.name), train.n_movies, train)

    def fit_gram(
        self,
        x: sp.csr_matrix,
        gram: np.ndarray,
        active: np.ndarray,
        n_movies: int,
        train: RatingsDataset | None = None,
    ) -> EASEBaseline:
        """Fit from :func:`item_gram`'s pieces (``gram`` is not modified): what a grid search over
        ``l2`` / ``dropout`` shares between its points. ``train`` (the data ``x`` came from) is
        read only by the variants that score from more than ``x``."""
        gram = gram.copy()
        gram[np.diag_indices_from(gram)] += self._penalty(np.diag(gram).copy())
        # Cholesky: the Gram matrix plus a ridge is symmetric positive definite, and potrf/potri
        # cost half of an LU inverse. potri fills one triangle; mirror it.
        factor, info = scipy.linalg.lapack.spotrf(gram, lower=False, overwrite_a=True)
        if info != 0:
            raise ValueError(f"{self.name}: Cholesky factorisation failed (info={info}); raise l2")
        precision, info = scipy.linalg.lapack.spotri(factor, lower=False, overwrite_c=True)
        if info != 0:
            raise ValueError(f"{self.name}: inverse failed (info={info}); raise l2")
        np.copyto(precision, precision.T, where=np.tri(len(active), k=-1, dtype=bool))
        weights = precision / (-np.diag(precision))
        weights[np.diag_indices_from(weights)] = 0.0
        self.active = active
        self.weights = weights.astype(np.float32)
        self.x = self._history(x, active, train)
        self.n_movies = n_movies
        return self

    def _history(self, x: sp.csr_matrix, active: np.ndarray, train: RatingsDataset | None) -> sp.csr_matrix:
        """The users' rows that scores multiply ``B`` by: the binary train matrix ``x``."""
        return x.astype(np.float32)

    def score(self, user_indices: np.ndarray) -> np.ndarray:
        n_movies = self._require_fit()
        users = np.asarray(user_indices, dtype=np.int64)
        scores = np.zeros((len(users), n_movies), dtype=np.float32)
        scores[:, self.active] = self.x[users] @ self.weights
        return scores


class EDLAEBaseline(EASEBaseline):
    """EDLAE (Steck, NeurIPS 2020, "Autoencoders that don't overfit towards the Identity"), full rank.

    The linear autoencoder trained with dropout ``p`` on its input and full emphasis on the
    dropped-out entries has the closed form of EASE with a penalty that grows with popularity:
    ``P = (X^T X + Lambda)^-1``, ``Lambda = l2 I + p / (1 - p) diagMat(diag(X^T X))``,
    ``B = I - P / diag(P)`` with ``diag(B) = 0``. ``dropout=0`` is EASE exactly.

    :param l2: ridge penalty; default 200, chosen with ``dropout`` on the validation split of
        ml-latest-small-2016 from :data:`GRIDS`.
    :param dropout: input dropout probability ``p`` in [0, 1); default 0.25 (see ``l2``).
    :param max_items: as :class:`EASEBaseline`.
    """

    name = "edlae"

    def __init__(self, l2: float = 200.0, dropout: float = 0.25, max_items: int = 20_000) -> None:
        super().__init__(l2=l2, max_items=max_items)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"{self.name}: dropout must be in [0, 1), got {dropout}")
        self.dropout = float(dropout)

    def _penalty(self, gram_diagonal: np.ndarray) -> np.ndarray:
        return self.l2 + self.dropout / (1.0 - self.dropout) * gram_diagonal


class RecentEASEBaseline(EASEBaseline):
    """EASE that reads a user's history by recency: the same ``B``, scored from ``x_u`` with each
    rating weighted ``0.5 ** (k / half_life)``, ``k`` = ratings made since (0 for the latest).

    Where popularity and taste move in time, a user's recent ratings say more about the next ones
    (on ml-latest-small-2016 this scores above plain EASE); without drift it stays close to EASE.

    :param l2: as :class:`EASEBaseline`; default 500.
    :param half_life: in ratings; default 10 (chosen with ``l2`` from :data:`GRIDS` on validation).
    :param max_items: as :class:`EASEBaseline`.
    """

    name = "ease-recent"

    def __init__(self, l2: float = 500.0, half_life: float = 10.0, max_items: int = 20_000) -> None:
        super().__init__(l2=l2, max_items=max_items)
        if not float(half_life) > 0:
            raise ValueError(f"{self.name}: half_life must be > 0, got {half_life}")
        self.half_life = float(half_life)

    def _history(self, x: sp.csr_matrix, active: np.ndarray, train: RatingsDataset | None) -> sp.csr_matrix:
        """The train matrix with each rating weighted by its recency in the user's time line."""
        if train is None:
            raise ValueError(f"{self.name}: fit_gram needs the train data (its timestamps)")
        weighted = train.ratings.copy().astype(np.float32)
        weighted.data = recency_weight(train.ratings_since, self.half_life)
        return weighted[:, active]


class ALSBaseline(_Fitted):
    """Implicit-feedback ALS, ``implicit.cpu.als.AlternatingLeastSquares`` on the binary train matrix.

    Defaults are implicit's own (``factors=100, regularization=0.01, alpha=1.0, iterations=15``)
    except ``factors=64``, which suits a few hundred users. implicit's docs ask for a single
    threaded BLAS while it runs its own threads; ``fit`` sets that with ``threadpoolctl`` (the
    same as ``OPENBLAS_NUM_THREADS=1`` in the environment).

    :param factors: latent dimension; default 64.
    :param regularization: L2 penalty on the factors; default 0.01 (implicit's).
    :param alpha: confidence weight of an observed rating (``c = alpha * 1``); default 1.0 (implicit's).
    :param iterations: ALS sweeps; default 15 (implicit's).
    :param seed: ``random_state`` of the initial factors; default 0.
    :param num_threads: implicit's threads; default 1 (shared machines; results do not depend on it).
    """

    name = "als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.01,
        alpha: float = 1.0,
        iterations: int = 15,
        seed: int = 0,
        num_threads: int = 1,
    ) -> None:
        self.factors = int(factors)
        self.regularization = float(regularization)
        self.alpha = float(alpha)
        self.iterations = int(iterations)
        self.seed = int(seed)
        self.num_threads = int(num_threads)

    def fit(self, train: RatingsDataset) -> ALSBaseline:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                random_state=self.seed,
                num_threads=self.num_threads,
            )
            model.fit(_binary(train), show_progress=False)
        self.user_factors = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.asarray(model.item_factors, dtype=np.float32)
        self.n_movies = train.n_movies
        return self

    def score(self, user_indices: np.ndarray) -> np.ndarray:
        self._require_fit()
        users = np.asarray(user_indices, dtype=np.int64)
        return self.user_factors[users] @ self.item_factors.T


def keep_top_neighbours(weights: np.ndarray, neighbours: int, axis: int) -> np.ndarray:
    """``weights`` with its diagonal zeroed and only the ``neighbours`` largest entries of each
    column (``axis=0``) or row (``axis=1``) kept, the rest 0 (ties: the lower index is kept).
    A new float32 array."""
    out = np.array(weights, dtype=np.float32)
    np.fill_diagonal(out, 0.0)
    if neighbours >= out.shape[axis]:
        return out
    # A stable sort of the negated weights: among equals the lower index comes first.
    order = np.argsort(-out, axis=axis, kind="stable")
    dropped = order[neighbours:] if axis == 0 else order[:, neighbours:]
    np.put_along_axis(out, dropped, 0.0, axis=axis)
    return out


class _NeighbourBaseline(_Fitted):
    """ItemKNN's and RP3beta's shared part: ``W`` from the Gram matrix, cut, and ``x_u @ W``."""

    name = "neighbours"
    #: Which neighbours ``W`` keeps: 0, each candidate's (a column); 1, each seen movie's (a row).
    cut_axis = 0

    def __init__(self, neighbours: int, max_items: int) -> None:
        if int(neighbours) < 1:
            raise ValueError(f"{self.name}: neighbours must be >= 1, got {neighbours}")
        self.neighbours = int(neighbours)
        self.max_items = int(max_items)

    def fit(self, train: RatingsDataset) -> _NeighbourBaseline:
        return self.fit_gram(*item_gram(train, self.max_items, self.name), train.n_movies, train)

    def _weights(self, x: sp.csr_matrix, gram: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def fit_gram(
        self,
        x: sp.csr_matrix,
        gram: np.ndarray,
        active: np.ndarray,
        n_movies: int,
        train: RatingsDataset | None = None,
    ) -> _NeighbourBaseline:
        """Fit from :func:`~rlrec.evaluation.baselines.item_gram`'s pieces (not modified)."""
        self.weights = keep_top_neighbours(self._weights(x, gram), self.neighbours, self.cut_axis)
        self.active = active
        self.x = x.astype(np.float32)
        self.n_movies = n_movies
        return self

    def score(self, user_indices: np.ndarray) -> np.ndarray:
        n_movies = self._require_fit()
        users = np.asarray(user_indices, dtype=np.int64)
        scores = np.zeros((len(users), n_movies), dtype=np.float32)
        scores[:, self.active] = self.x[users] @ self.weights
        return scores


class ItemKNNBaseline(_NeighbourBaseline):
    """Item-based k-nearest neighbours with shrunk cosine similarity (see the module doc).

    :param neighbours: entries kept per column of ``W``; default 100.
    :param shrink: added to the norms' product (down-weights pairs with few co-ratings); default 10.
    :param max_items: as ``EASEBaseline`` (``W`` is a dense movies x movies matrix); default 20,000.
    """

    name = "itemknn"

    def __init__(self, neighbours: int = 100, shrink: float = 10.0, max_items: int = 20_000) -> None:
        super().__init__(neighbours, max_items)
        if float(shrink) < 0:
            raise ValueError(f"{self.name}: shrink must be >= 0, got {shrink}")
        self.shrink = float(shrink)

    def _weights(self, x: sp.csr_matrix, gram: np.ndarray) -> np.ndarray:
        norms = np.sqrt(np.diag(gram)).astype(np.float64)
        return (gram / (np.outer(norms, norms) + self.shrink + 1e-12)).astype(np.float32)


class RP3betaBaseline(_NeighbourBaseline):
    """RP3beta: a popularity-discounted three-step random walk (see the module doc).

    :param alpha: exponent of the transition probabilities; default 1.0.
    :param beta: popularity discount of the destination movie; default 0.3.
    :param neighbours: entries kept per column of ``W``; default 100.
    :param max_items: as ``EASEBaseline``; default 20,000.
    """

    name = "rp3beta"
    cut_axis = 1  # Dacrema et al.'s RP3beta keeps each source movie's best destinations

    def __init__(
        self, alpha: float = 1.0, beta: float = 0.3, neighbours: int = 100, max_items: int = 20_000
    ) -> None:
        super().__init__(neighbours, max_items)
        if not float(alpha) > 0 or float(beta) < 0:
            raise ValueError(f"{self.name}: alpha must be > 0 and beta >= 0, got {alpha}, {beta}")
        self.alpha, self.beta = float(alpha), float(beta)

    def _weights(self, x: sp.csr_matrix, gram: np.ndarray) -> np.ndarray:
        user_degree = np.asarray(x.sum(axis=1), dtype=np.float64).ravel()
        movie_degree = np.asarray(x.sum(axis=0), dtype=np.float64).ravel()
        walk_from_users = sp.diags(np.power(np.maximum(user_degree, 1.0), -self.alpha)) @ x
        weights = (x.T @ walk_from_users).toarray()
        with np.errstate(divide="ignore"):
            weights *= np.power(movie_degree, -self.alpha)[:, None]
            weights *= np.power(movie_degree, -self.beta)[None, :]
        return weights.astype(np.float32)


class _SequentialBaseline:
    """A next-item model over each user's train history in time order (:mod:`rlrec.evaluation.sequential`).

    :param epochs: training epochs; default None: chosen on a validation split of train.
    :param max_length: the last movies read per user; default 50.
    :param seed: seeds the initialisation and the batches.
    :param options: ``dim``, ``lr``, ``batch_size``, ``dropout``, ``max_epochs``, ``eval_every``.
    """

    name = ""

    def __init__(
        self, epochs: int | None = None, max_length: int = 50, seed: int = 0, **options: Any
    ) -> None:
        self.epochs, self.max_length, self.seed, self.options = epochs, int(max_length), int(seed), options
        self.model: Any = None

    def fit(self, train: RatingsDataset) -> _SequentialBaseline:
        # Deferred: the module imports torch (a second), and the CLI reads these names at start-up.
        from rlrec.evaluation.sequential import fit_sequential

        self.model = fit_sequential(
            self.name, train, self.epochs, max_length=self.max_length, seed=self.seed, **self.options
        )
        return self

    def score(self, user_indices: np.ndarray) -> np.ndarray:
        if self.model is None:
            raise ValueError(f"{self.name}: call fit(train) before score()")
        return np.asarray(self.model.score(user_indices))

    @property
    def selection(self) -> Selection | None:
        """The epoch count :meth:`fit` chose on validation; None before ``fit`` or with ``epochs`` given."""
        if self.model is None or not self.model.curve:
            return None
        tried = [({"epochs": epochs}, score) for epochs, score in self.model.curve]
        score = dict(self.model.curve)[self.model.epochs]
        return Selection({"epochs": self.model.epochs}, score, tried)


class SASRecBaseline(_SequentialBaseline):
    """SASRec (Kang and McAuley, 2018): causal self-attention over the user's last movies."""

    name = "sasrec"


class GRU4RecBaseline(_SequentialBaseline):
    """GRU4Rec (Hidasi et al., 2016): a GRU over the user's last movies."""

    name = "gru4rec"


#: Baseline name -> class; the CLI's ``--baseline`` choices.
BASELINES: dict[str, type[Any]] = {
    "random": RandomBaseline,
    "popularity": PopularityBaseline,
    "ease": EASEBaseline,
    "edlae": EDLAEBaseline,
    "ease-recent": RecentEASEBaseline,
    "als": ALSBaseline,
    "itemknn": ItemKNNBaseline,
    "rp3beta": RP3betaBaseline,
    "sasrec": SASRecBaseline,
    "gru4rec": GRU4RecBaseline,
}


#: Hyperparameters :func:`select_on_validation` tries: Steck's ranges for MovieLens-sized data,
#: kept small because each point inverts an items x items matrix (~10 s at 10,000 movies).
GRIDS: dict[str, dict[str, tuple[float, ...]]] = {
    "ease": {"l2": (100.0, 200.0, 500.0, 1000.0, 2000.0)},
    "edlae": {"l2": (200.0, 500.0), "dropout": (0.25, 0.5, 0.67)},
    "ease-recent": {"l2": (200.0, 500.0, 1000.0), "half_life": (5.0, 10.0, 20.0, 40.0)},
    "itemknn": {"neighbours": (50, 100, 200, 500), "shrink": (0.0, 10.0, 50.0)},
    "rp3beta": {"alpha": (0.5, 1.0), "beta": (0.0, 0.2, 0.4, 0.6), "neighbours": (100, 200, 500)},
}


@dataclass(frozen=True)
class Selection:
    """What :func:`select_on_validation` chose.

    :param params: the baseline's parameters with the best validation score.
    :param score: that score (NDCG@k on the validation part).
    :param tried: every grid point with its score, in grid order.
    """

    params: dict[str, float]
    score: float
    tried: list[tuple[dict[str, float], float]]


def select_on_validation(name: str, train: RatingsDataset, k: int = 10) -> Selection:
    """Choose a baseline's hyperparameters from :data:`GRIDS` on a validation split of ``train``.

    The validation split is :func:`rlrec.data.split.validation_split` (``train``'s per-user
    temporal split, one level down), so the test part of the split ``train`` came from is never
    read; see :func:`select_on_split`.
    """
    return select_on_split(name, validation_split(train), k)


def select_on_split(name: str, split: Split, k: int = 10) -> Selection:
    """Fit every :data:`GRIDS` point of baseline ``name`` on ``split.train`` and score NDCG@k on
    ``split.test``; ties go to the first point in grid order. The Gram matrix is built once."""
    if name not in GRIDS:
        raise ValueError(f"{name}: nothing to select (grids exist for {', '.join(GRIDS)})")
    cls = BASELINES[name]
    x, gram, active = item_gram(split.train, cls().max_items, name)
    keys = list(GRIDS[name])
    tried: list[tuple[dict[str, float], float]] = []
    for values in itertools.product(*GRIDS[name].values()):
        params = dict(zip(keys, values))
        model = cls(**params).fit_gram(x, gram, active, split.train.n_movies, split.train)
        tried.append((params, float(evaluate_scores(model.score, split, k=k)[f"ndcg@{k}"])))
    best_params, best_score = max(tried, key=lambda item: item[1])  # max keeps the first of equals
    return Selection(best_params, best_score, tried)


def make_baseline(name: str, seed: int = 0, **kwargs: Any) -> Any:
    """An unfitted baseline by name.

    :param name: one of ``BASELINES``.
    :param seed: passed to the baselines that draw random numbers (``random``, ``als``).
    :param kwargs: the baseline's own parameters (``l2=...`` for EASE, ``factors=...`` for ALS).
    """
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    cls = BASELINES[name]
    if name in ("random", "als", "sasrec", "gru4rec"):
        kwargs = {"seed": seed, **kwargs}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f"{name}: {exc}") from exc
