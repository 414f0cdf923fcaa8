"""Load times of the MovieLens readers; with ``--scale ml-25m`` a synthetic 25M-rating release.

Usage::

    python benchmarks/bench_load.py                    # the two shared releases
    python benchmarks/bench_load.py --scale ml-25m     # + generate, write and load ml-25m size

Targets (from the data-layer issue): an ml-25m-sized ``ratings.csv`` loads in <= 60 s with a peak
RSS < 8 GB; ``make_synthetic`` at that size also takes about a minute at most. Peak RSS is the
process's high-water mark (``resource.getrusage``), so each figure includes the steps before it.
Not run by the tests.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from rlrec.data import data_home, load_movielens, make_synthetic, write_movielens_csv

#: (users, movies, ratings) of the GroupLens releases a synthetic stand-in can mimic.
SCALES = {
    "ml-latest-small": (610, 9_742, 100_836),
    "ml-10m": (69_878, 10_681, 10_000_054),
    "ml-20m": (138_493, 27_278, 20_000_263),
    "ml-25m": (162_541, 62_423, 25_000_095),
    "ml-32m": (200_948, 87_585, 32_000_204),
}


def peak_rss_gb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024**3 if sys.platform == "darwin" else 1024**2)


def timed(label: str, func, *args, **kwargs):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = func(*args, **kwargs)
    elapsed = time.perf_counter() - start
    print(f"{label:<42} {elapsed:8.2f} s   peak RSS {peak_rss_gb():5.2f} GB", flush=True)
    return result, elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default=None, help="also time a synthetic release")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-home", default=None, help="default: $RLREC_DATA, else ../shared/data")
    args = parser.parse_args(argv)

    home = data_home(args.data_home)
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    if args.data_home is None and not (home / "ml-latest-small").is_dir() and shared.is_dir():
        home = shared  # the project's shared copy, as the tests use it
    print(f"data home: {home}   cpus: {os.cpu_count()}")
    for name in ("ml-latest-small-2016", "ml-latest-small"):
        if (home / name).is_dir():
            dataset, _ = timed(f"load {name}", load_movielens, home / name)
            print(
                f"    {dataset.n_users:,} users, {dataset.n_movies:,} movies, {dataset.n_ratings:,} ratings"
            )
        else:
            print(f"load {name:<37} skipped (not in {home})")

    if args.scale:
        n_users, n_movies, n_ratings = SCALES[args.scale]
        world, t_gen = timed(
            f"make_synthetic {args.scale} size", make_synthetic, n_users, n_movies, n_ratings, args.seed
        )
        with tempfile.TemporaryDirectory(prefix="rlrec-bench-") as tmp:
            folder = Path(tmp) / f"synthetic-{args.scale}"
            _, t_write = timed("write_movielens_csv", write_movielens_csv, world, folder)
            size_mb = (folder / "ratings.csv").stat().st_size / 1e6
            print(f"    ratings.csv: {size_mb:,.0f} MB")
            del world  # the load below should not count the generator's arrays in its peak
            loaded, t_load = timed(f"load_movielens ({n_ratings:,} ratings)", load_movielens, folder)
            print(f"    {loaded.n_users:,} users, {loaded.n_movies:,} movies, {loaded.n_ratings:,} ratings")
            rate = n_ratings / t_load / 1e6
            print(f"    load: {rate:.2f} M ratings/s; target <= 60 s -> {'OK' if t_load <= 60 else 'SLOW'}")
            print(
                f"    generate / load time ratio: {t_gen / t_load:.2f}; write / load: {t_write / t_load:.2f}"
            )
    print(f"peak RSS overall: {peak_rss_gb():.2f} GB (target < 8 GB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
