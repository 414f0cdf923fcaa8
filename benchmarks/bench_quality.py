"""Quality of rlrec's headline RL agent against the strongest non-RL baselines, seeds and releases.

For each ml-latest-small release and each seed (0, 1, 2 by default) it runs the benchmark entry
``best`` (``rlrec benchmark --algos best``: today ``slateq-item-item-recent``, SlateQ with the
item-item Q-network on ``rlrec/MovieLensSlate-v0``, pages of 50, sessions that hide the latest
part of a history, refitted) exactly as
``rlrec benchmark`` does:
the agent trains from scratch on the fit part of the validation split carved from train,
by interaction only; its stopping step is the best of ``--evaluations`` validation rankings; that
model ranks the test part once. The baselines (popularity, ALS, EASE, EDLAE, ``ease-recent``) are
fitted on the train part, EASE's ``l2``, EDLAE's ``(l2, dropout)`` and ``ease-recent``'s
``(l2, half_life)`` chosen on the same validation split. The verdict compares the mean with the
strongest baseline.

Printed per release: every seed's NDCG@10, the mean and spread (min..max), the ratio to each
baseline, and time-to-EASE (training seconds until the validation NDCG@10 first reaches EASE's
validation NDCG@10 with its validation-chosen ``l2``; "-" when it never does). Each run goes to
its own process (``--jobs`` at a time, one torch thread each) and its folder under ``--out``.

    python benchmarks/bench_quality.py                       # both releases, seeds 0 1 2
    python benchmarks/bench_quality.py --releases ml-latest-small-2016 --seeds 0 --jobs 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RELEASES = ("ml-latest-small-2016", "ml-latest-small")
BASELINES = ("popularity", "als", "ease", "edlae", "ease-recent")


def data_home() -> Path:
    return Path(os.environ.get("RLREC_DATA") or REPO.parent / "shared" / "data")


def run_one(source: str, entry: str, seed: int, out: Path, evaluations: int, timesteps: int | None) -> dict:
    """One benchmark run of ``entry`` in a fresh process; its report's row for the agent."""
    report = out / "benchmark.json"
    if not report.is_file():
        code = (
            "import sys, json; from rlrec.experiments.benchmark import run_benchmark; "
            f"run_benchmark({source!r}, {str(out)!r}, timesteps={timesteps!r}, seed={seed}, "
            f"algos=[{entry!r}], baselines=(), n_evaluations={evaluations})"
        )
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{source} seed {seed}: {done.stderr.strip().splitlines()[-1:]}")
        print(f"  {Path(source).name} seed {seed}: done in {time.perf_counter() - started:.0f} s", flush=True)
    data = json.loads(report.read_text())
    (name,) = data["learners"]
    return data["results"][name]


def baselines_of(source: str) -> dict[str, dict]:
    """Test metrics of the baselines (EASE and EDLAE chosen on the validation split)."""
    from rlrec.data import load_movielens
    from rlrec.data.split import temporal_split
    from rlrec.evaluation.protocol import evaluate_baseline

    split = temporal_split(load_movielens(source))
    return {name: evaluate_baseline(name, split) for name in BASELINES}


def time_to(curve: list[dict], level: float) -> float | None:
    """Training seconds at the first validation evaluation reaching ``level``."""
    for point in curve:
        if point["ndcg@10"] >= level:
            return float(point["train_seconds"])
    return None


def report(release: str, rows: dict[int, dict], baselines: dict[str, dict], entry: str) -> str:
    scores = [rows[seed]["ndcg@10"] for seed in sorted(rows)]
    mean = sum(scores) / len(scores)
    lines = [
        f"## {release}: test NDCG@10 of `{entry}` over seeds {', '.join(map(str, sorted(rows)))}",
        "",
        f"| model | NDCG@10 | {' | '.join(f'x {name}' for name in BASELINES)} | train s | time-to-EASE s |",
        f"|---|---:|{'---:|' * len(BASELINES)}---:|---:|",
    ]

    def ratios(value: float) -> str:
        return " | ".join(f"{value / baselines[name]['ndcg@10']:.3f}" for name in BASELINES)

    for seed in sorted(rows):
        row = rows[seed]
        reach = time_to(row["validation_curve"], row["validation_references"]["ease"])
        reached = "-" if reach is None else f"{reach:.0f}"
        lines.append(
            f"| {entry} seed {seed} (best at {row['best_timesteps']:,} steps) | {row['ndcg@10']:.4f} | "
            f"{ratios(row['ndcg@10'])} | {row['train_seconds']:.0f} | {reached} |"
        )
    spread = f"{min(scores):.4f}..{max(scores):.4f}"
    lines.append(f"| **{entry} mean** ({spread}) | **{mean:.4f}** | {ratios(mean)} | | |")
    for name in BASELINES:
        row = baselines[name]
        chosen = ", ".join(f"{key}={value:g}" for key, value in (row.get("params") or {}).items())
        label = f"{name} ({chosen}, chosen on validation)" if chosen else name
        seconds = row["train_seconds"]
        lines.append(f"| {label} | {row['ndcg@10']:.4f} | {ratios(row['ndcg@10'])} | {seconds:.1f} | |")
    strongest = max(BASELINES, key=lambda name: baselines[name]["ndcg@10"])
    bar = baselines[strongest]["ndcg@10"]
    verdict = "meets" if mean >= bar else "misses"
    lines += ["", f"Mean {mean:.4f} {verdict} the bar (the strongest baseline, {strongest}: {bar:.4f}).", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--releases", nargs="*", default=list(RELEASES), help="folders under $RLREC_DATA")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--agent", default="best", help="a benchmark entry (default: the alias best)")
    parser.add_argument("--evaluations", type=int, default=20, help="validation rankings per run (20)")
    parser.add_argument("--timesteps", type=int, default=None, help="override the YAML's budget")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time, one core each (2)")
    parser.add_argument("--out", default="benchmark_out/quality", help="one folder per run, reused if done")
    args = parser.parse_args()

    from rlrec.experiments.benchmark import resolve_algos

    (entry,) = resolve_algos([args.agent])
    out = Path(args.out)
    jobs = [(release, seed) for release in args.releases for seed in args.seeds]
    sources = {release: str(data_home() / release) for release in args.releases}
    print(f"{len(jobs)} runs of {entry}, {args.jobs} at a time", flush=True)
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {
            (release, seed): pool.submit(
                run_one,
                sources[release],
                entry,
                seed,
                out / release / f"seed{seed}",
                args.evaluations,
                args.timesteps,
            )
            for release, seed in jobs
        }
        results = {job: future.result() for job, future in futures.items()}
    text = [f"# bench_quality: `{entry}` against {', '.join(BASELINES)}", ""]
    for release in args.releases:
        rows = {seed: results[(release, seed)] for seed in args.seeds}
        text.append(report(release, rows, baselines_of(sources[release]), entry))
    print("\n".join(text))
    out.mkdir(parents=True, exist_ok=True)
    (out / "quality.md").write_text("\n".join(text) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
