"""The baselines' table on a real release and on its synthetic twin (and on the default world).

For each source it prints NDCG@10 of popularity, EASE (l2 chosen on validation), ALS and EASE read
by recency (``ease-recent``, l2 and half-life chosen on validation) under the usual protocol
(per-user temporal split, the last 20% held out), and the statistics of ``rlrec data compare``. A
twin should put popularity, EASE and ALS in the same order at similar levels, and recency should
pay where the release drifts.

    python benchmarks/bench_twin.py                                  # ml-latest-small-2016
    python benchmarks/bench_twin.py --release ml-latest-small --seed 1
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: The order the release and its twins are compared on; ``ease-recent`` shows whether recency pays.
ORDERED = ("popularity", "ease", "als")
BASELINES = (*ORDERED, "ease-recent")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--release", default="ml-latest-small-2016", help="a folder under $RLREC_DATA")
    parser.add_argument("--seed", type=int, default=0, help="the twin's seed")
    args = parser.parse_args()

    from rlrec.data import load_movielens
    from rlrec.data.split import temporal_split
    from rlrec.data.stats import SCALAR_STATISTICS
    from rlrec.evaluation.protocol import evaluate_baseline

    home = Path(os.environ.get("RLREC_DATA") or REPO.parent / "shared" / "data")
    real = str(home / args.release)
    sources = {
        args.release: real,
        f"twin (seed {args.seed})": f"synthetic:like={real},seed={args.seed}",
        "default synthetic": "synthetic",
    }
    rows = {}
    for label, source in sources.items():
        started = time.perf_counter()
        dataset = load_movielens(source)
        loaded = time.perf_counter() - started
        split = temporal_split(dataset)
        scores = {name: evaluate_baseline(name, split)["ndcg@10"] for name in BASELINES}
        stats = {name: fn(dataset) for name, fn in SCALAR_STATISTICS.items()}
        rows[label] = (scores, stats, loaded)
    header = "| source | " + " | ".join(f"{name} NDCG@10" for name in BASELINES) + " | order | built in s |"
    print(header)
    print("|---|" + "---:|" * len(BASELINES) + "---|---:|")
    for label, (scores, _, loaded) in rows.items():
        order = " > ".join(sorted(ORDERED, key=lambda name: -scores[name]))
        cells = " | ".join(f"{scores[name]:.4f}" for name in BASELINES)
        print(f"| {label} | {cells} | {order} | {loaded:.1f} |")
    print()
    print("| statistic | " + " | ".join(rows) + " |")
    print("|---|" + "---:|" * len(rows))
    for name in SCALAR_STATISTICS:
        print(f"| {name} | " + " | ".join(f"{stats[name]:.3f}" for _, stats, _ in rows.values()) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
